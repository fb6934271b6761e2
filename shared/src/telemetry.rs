//! Structured JSON logs, correlation IDs and CloudWatch embedded-metric-format (EMF) lines.

use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

/// JSON logs to stdout, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default INFO).
/// Safe to call more than once (the local runner hosts several functions in one process).
pub fn init() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned());
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level.to_lowercase()))
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .try_init();
}

/// The correlation ID for a request: the caller's `x-correlation-id` if it sent a sane one,
/// otherwise a new one.
pub fn correlation_id(from_header: Option<&str>) -> String {
    from_header
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(|| ulid::Ulid::new().to_string())
}

/// A CloudWatch metric unit, as EMF names it.
#[derive(Debug, Clone, Copy)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One EMF document: CloudWatch turns this log line into a metric, with no API call on the
/// request path. Written straight to stdout so it is a line of its own, not inside a log record.
pub fn emf_line(namespace: &str, service: &str, name: &str, unit: Unit, value: f64) -> String {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default();
    json!({
        "_aws": {
            "Timestamp": millis,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["service"]],
                "Metrics": [{"Name": name, "Unit": unit.as_str()}],
            }],
        },
        "service": service,
        name: value,
    })
    .to_string()
}

static METRICS_TO_LOG: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Sends metric lines to the log instead of stdout: for hosts that print to the terminal
/// (the local demo), where Lambda's stdout capture does not exist.
pub fn metrics_to_log() {
    METRICS_TO_LOG.store(true, std::sync::atomic::Ordering::Relaxed);
}

type Sink = Box<dyn Fn(&str) + Send + Sync>;
static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();

/// Also hands every metric line to `sink`, once installed (the first call wins; false after
/// that): the local runner collects the lines its functions print, as CloudWatch would.
pub fn collect_metrics(sink: impl Fn(&str) + Send + Sync + 'static) -> bool {
    SINK.set(Box::new(sink)).is_ok()
}

pub fn metric(service: &str, name: &str, unit: Unit, value: f64) {
    emit(emf_line("Shop", service, name, unit, value));
}

/// Every EMF line goes out through here: to stdout (or the log, locally) and to the sink.
pub fn emit(line: String) {
    if let Some(sink) = SINK.get() {
        sink(&line);
    }
    if METRICS_TO_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(target: "emf", emf = %line);
    } else {
        println!("{line}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sane_incoming_correlation_id_is_kept() {
        assert_eq!(correlation_id(Some("req-42")), "req-42");
    }

    #[test]
    fn a_missing_or_hostile_correlation_id_is_replaced() {
        assert_eq!(correlation_id(None).len(), 26);
        assert_eq!(correlation_id(Some("a\nb")).len(), 26);
        assert_eq!(correlation_id(Some(&"x".repeat(500))).len(), 26);
    }

    #[test]
    fn an_emf_line_declares_its_metric_and_carries_the_value() {
        let line: serde_json::Value =
            serde_json::from_str(&emf_line("Shop", "checkout", "OrdersPlaced", Unit::Count, 1.0)).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "OrdersPlaced");
        assert_eq!(line["OrdersPlaced"], 1.0);
        assert_eq!(line["service"], "checkout");
    }
}
