//! Structured JSON logs, correlation IDs and CloudWatch embedded-metric-format (EMF) lines.
//!
//! Metrics are EMF documents printed as log lines: CloudWatch Logs turns each into metric data
//! points, with no API call on the request path. A function gathers what one invocation (a
//! request, a batch, a scheduled run) has to say in one [`Metrics`] and emits it once, so a
//! batch costs one line, not one per record. Every metric is in the namespace [`NAMESPACE`]
//! and carries the dimension `service`; a metric may also be broken down by one more
//! dimension (`reason`, `errorKind`, `step`). The catalogue is in README.md, "Observability".
//!
//! Every line leaves through [`emit`]: to stdout (Lambda sends stdout to CloudWatch Logs), or
//! to the log when a host prints to a terminal ([`metrics_to_log`]), and to the sink of
//! [`collect_metrics`] (the local runner's collector, which reads them as CloudWatch would).
//! [`datapoints`] reads a line back into the data points CloudWatch extracts from it.
//!
//! CloudWatch's rules for one document (the EMF specification,
//! <https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>,
//! and the limits AWS's own EMF libraries enforce) are kept by construction: at most
//! [`MAX_METRICS_PER_DOCUMENT`] metrics, at most [`MAX_VALUES_PER_METRIC`] values per metric,
//! at most [`MAX_DIMENSIONS_PER_SET`] dimensions per set (ours have one or two), and one value
//! per dimension and per metric name. What does not fit one document goes on to the next:
//! more values (a large batch's event ages), a second breakdown value (two error kinds in one
//! batch: the `errorKind` member can hold only one).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

/// The CloudWatch namespace of every metric of the shop.
pub const NAMESPACE: &str = "Shop";
/// The dimension every metric carries: the function (or consumer) that emitted it.
pub const SERVICE: &str = "service";
/// A MetricDirective's `Metrics` may hold at most 100 definitions (the EMF specification).
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// A dimension set may hold at most 30 dimension keys (the EMF specification).
pub const MAX_DIMENSIONS_PER_SET: usize = 30;
/// A metric's value array may hold at most 100 values (the EMF specification).
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// The `level` every EMF line carries, so that Lambda never filters it out.
///
/// The functions run with `LoggingConfig: LogFormat: JSON, ApplicationLogLevel: <LogLevel>`
/// (template.yaml). For a runtime without built-in JSON logging (ours, `provided.al2023`),
/// Lambda reads the level of each stdout line from its JSON key `"level"`, and "if the `level`
/// value field is invalid or missing, Lambda assigns the log output the level INFO"; with
/// application log level WARN "Lambda doesn't send log outputs at INFO and DEBUG level"
/// (Lambda developer guide, "Log-level filtering",
/// <https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-log-level.html>).
/// So a bare EMF line counts as INFO, and at `LogLevel` WARN or above every metric was dropped
/// before CloudWatch Logs could extract it. "Lambda only sends application logs at the selected
/// level of detail and lower, where TRACE is the highest level and FATAL is the lowest"
/// (Lambda API reference, `LoggingConfig.ApplicationLogLevel`,
/// <https://docs.aws.amazon.com/lambda/latest/api/API_LoggingConfig.html>): a line at FATAL is
/// sent at every level. The same page asks for a valid RFC 3339 `timestamp` for Lambda to use
/// the line's own fields, so every line has one too ([`TIMESTAMP`]). Lambda does not re-encode
/// a line that is already JSON ("Configuring JSON and plain text log formats"), and the EMF
/// specification lets the root hold members it does not define, so the document stays valid.
/// To read only real fatal logs, filter on `not ispresent(_aws)`.
pub const LEVEL: &str = "FATAL";
/// The RFC 3339 time of the line, the same instant as `_aws.Timestamp` (see [`LEVEL`]).
pub const TIMESTAMP: &str = "timestamp";

/// Members of the root that are not metrics or dimensions: no metric or dimension may be named so.
const RESERVED: [&str; 4] = ["_aws", "level", TIMESTAMP, SERVICE];

/// JSON logs to stdout, level from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default INFO).
/// Safe to call more than once (the local runner hosts several functions in one process).
///
/// Each line carries `timestamp` (RFC 3339) and `level`: with the JSON log format Lambda
/// filters application logs by their `level`, and takes a line without a valid timestamp as
/// INFO ("Log-level filtering", Lambda developer guide), so a WARN line without one would be
/// dropped at `LogLevel: WARN`.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
        }
    }
}

/// One metric as recorded: its values and the dimension sets it is published under.
#[derive(Debug, Clone, PartialEq)]
struct Datum {
    name: String,
    unit: Unit,
    values: Vec<f64>,
    /// The dimension besides `service`, with its value, when the metric is broken down.
    by: Option<(String, String)>,
    /// Also published under `[service]` alone (always, when not broken down).
    total: bool,
}

impl Datum {
    fn sets(&self) -> Vec<Vec<&str>> {
        match (&self.by, self.total) {
            (None, _) => vec![vec![SERVICE]],
            (Some((key, _)), true) => vec![vec![SERVICE], vec![SERVICE, key.as_str()]],
            (Some((key, _)), false) => vec![vec![SERVICE, key.as_str()]],
        }
    }
}

/// Part of a datum's values that goes into one document.
struct Piece<'a> {
    datum: &'a Datum,
    values: &'a [f64],
}

/// What one document holds: one value per dimension key and per metric name.
#[derive(Default)]
struct Document<'a> {
    dimensions: BTreeMap<&'a str, &'a str>,
    pieces: Vec<Piece<'a>>,
}

impl<'a> Document<'a> {
    fn fits(&self, piece: &Piece<'a>) -> bool {
        let name = piece.datum.name.as_str();
        self.pieces.len() < MAX_METRICS_PER_DOCUMENT
            && !self.pieces.iter().any(|p| p.datum.name == name)
            && !self.dimensions.contains_key(name)
            && piece.datum.by.as_ref().is_none_or(|(key, value)| {
                self.dimensions.get(key.as_str()).is_none_or(|v| v == value)
                    && !self.pieces.iter().any(|p| p.datum.name == *key)
            })
    }

    fn add(&mut self, piece: Piece<'a>) {
        if let Some((key, value)) = &piece.datum.by {
            self.dimensions.insert(key, value);
        }
        self.pieces.push(piece);
    }
}

/// The metrics one invocation of one service has to say, emitted together in as few EMF
/// documents as CloudWatch's rules allow (usually one line).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    namespace: String,
    service: String,
    data: Vec<Datum>,
}

impl Metrics {
    /// Metrics of `service`, in the namespace [`NAMESPACE`].
    pub fn new(service: impl Into<String>) -> Metrics {
        Metrics::in_namespace(NAMESPACE, service)
    }

    pub fn in_namespace(namespace: impl Into<String>, service: impl Into<String>) -> Metrics {
        Metrics { namespace: namespace.into(), service: service.into(), data: Vec::new() }
    }

    /// Nothing recorded yet.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// A count under `[service]`.
    pub fn count(&mut self, name: &str, count: f64) -> &mut Metrics {
        self.record(name, Unit::Count, vec![count], None, true)
    }

    /// One value under `[service]`.
    pub fn value(&mut self, name: &str, unit: Unit, value: f64) -> &mut Metrics {
        self.record(name, unit, vec![value], None, true)
    }

    /// Several values of one metric under `[service]` (as an EMF value array: CloudWatch keeps
    /// each, so percentiles and maxima are right). No values, no data.
    pub fn values(&mut self, name: &str, unit: Unit, values: impl IntoIterator<Item = f64>) -> &mut Metrics {
        self.record(name, unit, values.into_iter().collect(), None, true)
    }

    /// A count under `[service]` and under `[service, key]` with `key` = `value`: the total and
    /// the breakdown in one data point. Counts of several values of `key` add up, in CloudWatch's
    /// `Sum`, to the total under `[service]`.
    pub fn count_by(&mut self, name: &str, key: &str, value: &str, count: f64) -> &mut Metrics {
        self.record(name, Unit::Count, vec![count], Some((key, value)), true)
    }

    /// One value under `[service, key]` only, with `key` = `value` (a latency per step).
    pub fn value_per(&mut self, name: &str, unit: Unit, key: &str, value: &str, measured: f64) -> &mut Metrics {
        self.record(name, unit, vec![measured], Some((key, value)), false)
    }

    fn record(
        &mut self,
        name: &str,
        unit: Unit,
        mut values: Vec<f64>,
        by: Option<(&str, &str)>,
        total: bool,
    ) -> &mut Metrics {
        // A name that collides with a member of the root would corrupt the document; a
        // non-finite value is no JSON number. Both are bugs of the caller: logged, and the
        // rest of the metrics still go out rather than none.
        let clash = |n: &str| n.is_empty() || RESERVED.contains(&n);
        if clash(name) || by.is_some_and(|(key, value)| clash(key) || key == name || value.is_empty()) {
            tracing::error!(metric = name, ?by, "metric not recorded: its name or dimension is reserved or empty");
            return self;
        }
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return self;
        }
        let by = by.map(|(k, v)| (k.to_owned(), v.to_owned()));
        self.data.push(Datum { name: name.to_owned(), unit, values, by, total });
        self
    }

    /// The EMF documents, at `timestamp_ms` (milliseconds since the epoch): the first holds
    /// every metric that fits, the next what did not, and so on.
    pub fn documents(&self, timestamp_ms: i64) -> Vec<Value> {
        let mut documents: Vec<Document> = Vec::new();
        let pieces = self
            .data
            .iter()
            .flat_map(|datum| datum.values.chunks(MAX_VALUES_PER_METRIC).map(move |values| Piece { datum, values }));
        for piece in pieces {
            match documents.iter_mut().find(|d| d.fits(&piece)) {
                Some(document) => document.add(piece),
                None => {
                    let mut document = Document::default();
                    document.add(piece);
                    documents.push(document);
                }
            }
        }
        documents.iter().map(|d| self.render(d, timestamp_ms)).collect()
    }

    /// The documents as log lines.
    pub fn lines(&self, timestamp_ms: i64) -> Vec<String> {
        self.documents(timestamp_ms).iter().map(Value::to_string).collect()
    }

    /// Emits every line, timestamped now, through [`emit`].
    pub fn emit(&self) {
        for line in self.lines(Utc::now().timestamp_millis()) {
            emit(line);
        }
    }

    fn render(&self, document: &Document, timestamp_ms: i64) -> Value {
        // One directive per distinct list of dimension sets, in the order first met.
        let mut directives: Vec<(Vec<Vec<&str>>, Vec<Value>)> = Vec::new();
        for piece in &document.pieces {
            let sets = piece.datum.sets();
            let definition = json!({"Name": piece.datum.name, "Unit": piece.datum.unit.as_str()});
            match directives.iter_mut().find(|(s, _)| *s == sets) {
                Some((_, metrics)) => metrics.push(definition),
                None => directives.push((sets, vec![definition])),
            }
        }
        let directives: Vec<Value> = directives
            .into_iter()
            .map(|(sets, metrics)| json!({"Namespace": self.namespace, "Dimensions": sets, "Metrics": metrics}))
            .collect();
        let mut root = Map::new();
        root.insert("_aws".into(), json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}));
        root.insert("level".into(), LEVEL.into());
        root.insert(TIMESTAMP.into(), rfc3339(timestamp_ms).into());
        root.insert(SERVICE.into(), self.service.clone().into());
        for (key, value) in &document.dimensions {
            root.insert((*key).to_owned(), (*value).into());
        }
        for piece in &document.pieces {
            let value = match piece.values {
                [one] => json!(one),
                many => json!(many),
            };
            root.insert(piece.datum.name.clone(), value);
        }
        Value::Object(root)
    }
}

fn rfc3339(timestamp_ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(timestamp_ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// One EMF document of one metric and one value under `[service]`.
pub fn emf_line(namespace: &str, service: &str, name: &str, unit: Unit, value: f64) -> String {
    let mut metrics = Metrics::in_namespace(namespace, service);
    metrics.value(name, unit, value);
    metrics.lines(Utc::now().timestamp_millis()).concat()
}

/// Emits one metric with one value under `[service]`, on a line of its own. Where an
/// invocation has more to say, gather it in one [`Metrics`] instead.
pub fn metric(service: &str, name: &str, unit: Unit, value: f64) {
    let mut metrics = Metrics::new(service);
    metrics.value(name, unit, value);
    metrics.emit();
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

tokio::task_local! {
    /// The lines emitted inside [`capture`]: a test's own, whatever runs beside it.
    static CAPTURED: Arc<Mutex<Vec<String>>>;
}

/// Every EMF line goes out through here: to stdout (or the log, locally) and to the sink.
/// Inside [`capture`] it goes to the capture only, so a test reads exactly its own lines.
pub fn emit(line: String) {
    let line = match CAPTURED.try_with(|captured| lock(captured).push(line.clone())) {
        Ok(()) => return,
        Err(_) => line,
    };
    if let Some(sink) = SINK.get() {
        sink(&line);
    }
    if METRICS_TO_LOG.load(std::sync::atomic::Ordering::Relaxed) {
        tracing::info!(target: "emf", emf = %line);
    } else {
        println!("{line}");
    }
}

fn lock(lines: &Mutex<Vec<String>>) -> std::sync::MutexGuard<'_, Vec<String>> {
    lines.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs `future` and returns, with its output, the metric lines it emitted (for tests: they
/// go nowhere else). Lines of tasks it spawns are not its own and are not captured.
pub async fn capture<F: Future>(future: F) -> (F::Output, Vec<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let output = CAPTURED.scope(lines.clone(), future).await;
    let captured = std::mem::take(&mut *lock(&lines));
    (output, captured)
}

/// [`capture`] for code that does not await.
pub fn capture_sync<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let output = CAPTURED.sync_scope(lines.clone(), f);
    let captured = std::mem::take(&mut *lock(&lines));
    (output, captured)
}

/// One data point CloudWatch extracts from an EMF line: a metric under one dimension set.
#[derive(Debug, Clone, PartialEq)]
pub struct Datapoint {
    pub namespace: String,
    pub name: String,
    pub unit: String,
    /// The set's dimensions with their values (`service` included).
    pub dimensions: BTreeMap<String, String>,
    pub values: Vec<f64>,
}

/// The data points of an EMF line, as CloudWatch reads them: one per metric and dimension set
/// of each directive. Empty for a line that is not an EMF document; a metric whose value or a
/// dimension whose value is missing or of the wrong type is skipped, as CloudWatch rejects it.
pub fn datapoints(line: &str) -> Vec<Datapoint> {
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(line) else { return Vec::new() };
    let directives = root.get("_aws").and_then(|aws| aws.get("CloudWatchMetrics")).and_then(Value::as_array);
    let mut points = Vec::new();
    for directive in directives.into_iter().flatten() {
        let namespace = directive["Namespace"].as_str().unwrap_or_default();
        let sets = directive["Dimensions"].as_array().map(Vec::as_slice).unwrap_or_default();
        let metrics = directive["Metrics"].as_array().map(Vec::as_slice).unwrap_or_default();
        for set in sets {
            let keys = set.as_array().map(Vec::as_slice).unwrap_or_default();
            let dimensions: Option<BTreeMap<String, String>> = keys
                .iter()
                .map(|k| {
                    let key = k.as_str()?;
                    Some((key.to_owned(), root.get(key)?.as_str()?.to_owned()))
                })
                .collect();
            let Some(dimensions) = dimensions else { continue };
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap_or_default();
                let values: Option<Vec<f64>> = match root.get(name) {
                    Some(Value::Array(many)) => many.iter().map(Value::as_f64).collect(),
                    Some(one) => one.as_f64().map(|v| vec![v]),
                    None => None,
                };
                let Some(values) = values else { continue };
                points.push(Datapoint {
                    namespace: namespace.to_owned(),
                    name: name.to_owned(),
                    unit: metric["Unit"].as_str().unwrap_or("None").to_owned(),
                    dimensions: dimensions.clone(),
                    values,
                });
            }
        }
    }
    points
}

/// The sum of every value of metric `name` under exactly the dimension set `dimensions` (with
/// `service`) in `lines`: CloudWatch's `Sum` over them. 0 when there is none.
pub fn sum(lines: &[String], name: &str, dimensions: &[(&str, &str)]) -> f64 {
    let wanted: BTreeMap<String, String> = dimensions.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    lines
        .iter()
        .flat_map(|line| datapoints(line))
        .filter(|p| p.name == name && p.dimensions == wanted)
        .flat_map(|p| p.values)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: i64 = 1_800_000_000_123;

    /// Checks a document against the EMF specification's rules and CloudWatch's limits.
    fn assert_valid_emf(document: &Value) {
        let root = document.as_object().expect("a document is a JSON object");
        assert_eq!(root["_aws"]["Timestamp"].as_i64(), Some(AT));
        let directives = root["_aws"]["CloudWatchMetrics"].as_array().expect("CloudWatchMetrics is an array");
        let mut names = Vec::new();
        for directive in directives {
            assert!(directive["Namespace"].is_string());
            for set in directive["Dimensions"].as_array().expect("Dimensions is an array") {
                let keys = set.as_array().expect("a dimension set is an array");
                assert!(!keys.is_empty() && keys.len() <= MAX_DIMENSIONS_PER_SET, "{set}");
                for key in keys {
                    assert!(root[key.as_str().unwrap()].is_string(), "dimension {key} has a string value");
                }
            }
            let metrics = directive["Metrics"].as_array().expect("Metrics is an array");
            assert!(metrics.len() <= MAX_METRICS_PER_DOCUMENT);
            for metric in metrics {
                let name = metric["Name"].as_str().unwrap();
                names.push(name.to_owned());
                match &root[name] {
                    Value::Number(_) => {}
                    Value::Array(values) => {
                        assert!(!values.is_empty() && values.len() <= MAX_VALUES_PER_METRIC, "{name}");
                        assert!(values.iter().all(Value::is_number));
                    }
                    other => panic!("{name} is {other}"),
                }
            }
        }
        assert!(names.len() <= MAX_METRICS_PER_DOCUMENT);
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "a metric is defined once per document");
    }

    fn lines_of(metrics: &Metrics) -> Vec<String> {
        let documents = metrics.documents(AT);
        documents.iter().for_each(assert_valid_emf);
        documents.iter().map(Value::to_string).collect()
    }

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
    fn given_one_count_then_the_line_is_exactly_the_emf_document_lambda_never_filters() {
        let mut metrics = Metrics::new("checkout");
        metrics.count("OrdersPlaced", 1.0);
        let lines = metrics.lines(AT);
        assert_eq!(lines.len(), 1);
        assert!(!lines[0].contains('\n'), "one log event is one line");
        // Members in any order: JSON objects are unordered, and so is serde_json's output
        // depending on the features the build unifies.
        let line: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            line,
            json!({
                "_aws": {
                    "Timestamp": 1_800_000_000_123_i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Shop",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": "OrdersPlaced", "Unit": "Count"}],
                    }],
                },
                "level": "FATAL",
                "timestamp": "2027-01-15T08:00:00.123Z",
                "service": "checkout",
                "OrdersPlaced": 1.0,
            })
        );
    }

    #[test]
    fn every_line_is_at_the_level_no_application_log_level_filters_and_has_its_rfc3339_time() {
        let mut metrics = Metrics::new("email");
        metrics.count("EventsProcessed", 3.0).count_by("EventsFailed", "errorKind", "transient", 1.0);
        metrics.count_by("EventsFailed", "errorKind", "conflict", 1.0);
        let documents = metrics.documents(AT);
        assert_eq!(documents.len(), 2);
        for document in documents {
            assert_eq!(document["level"], "FATAL");
            let time = DateTime::parse_from_rfc3339(document["timestamp"].as_str().unwrap()).unwrap();
            assert_eq!(time.timestamp_millis(), document["_aws"]["Timestamp"].as_i64().unwrap());
        }
    }

    #[test]
    fn the_legacy_emf_line_declares_its_metric_and_carries_the_value() {
        let line: Value =
            serde_json::from_str(&emf_line("Shop", "checkout", "OrdersPlaced", Unit::Count, 1.0)).unwrap();
        assert_eq!(line["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"], "OrdersPlaced");
        assert_eq!(line["OrdersPlaced"], 1.0);
        assert_eq!(line["service"], "checkout");
        assert_eq!(line["level"], "FATAL");
    }

    #[test]
    fn given_several_metrics_and_a_breakdown_then_one_document_carries_them_all() {
        let mut metrics = Metrics::new("inventory");
        metrics
            .count("EventsProcessed", 7.0)
            .count("EventsDuplicate", 2.0)
            .count_by("EventsFailed", "errorKind", "transient", 1.0)
            .values("EventAgeMilliseconds", Unit::Milliseconds, [120.0, 80.0, 95.0]);
        let lines = lines_of(&metrics);
        assert_eq!(lines.len(), 1);
        let document: Value = serde_json::from_str(&lines[0]).unwrap();
        let directives = document["_aws"]["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 2, "one directive per list of dimension sets: {document}");
        assert_eq!(directives[1]["Dimensions"], json!([["service"], ["service", "errorKind"]]));
        assert_eq!(document["EventAgeMilliseconds"], json!([120.0, 80.0, 95.0]));
        assert_eq!(sum(&lines, "EventsProcessed", &[("service", "inventory")]), 7.0);
        assert_eq!(sum(&lines, "EventsFailed", &[("service", "inventory")]), 1.0);
        assert_eq!(sum(&lines, "EventsFailed", &[("service", "inventory"), ("errorKind", "transient")]), 1.0);
        assert_eq!(sum(&lines, "EventAgeMilliseconds", &[("service", "inventory")]), 295.0);
    }

    #[test]
    fn given_two_values_of_one_breakdown_then_each_has_its_document_and_the_totals_add_up() {
        let mut metrics = Metrics::new("loyalty");
        metrics.count("EventsProcessed", 5.0);
        metrics.count_by("EventsFailed", "errorKind", "transient", 2.0);
        metrics.count_by("EventsFailed", "errorKind", "conflict", 1.0);
        let lines = lines_of(&metrics);
        assert_eq!(lines.len(), 2, "the errorKind member holds one value per document");
        assert_eq!(sum(&lines, "EventsFailed", &[("service", "loyalty")]), 3.0);
        assert_eq!(sum(&lines, "EventsFailed", &[("service", "loyalty"), ("errorKind", "conflict")]), 1.0);
        assert_eq!(sum(&lines, "EventsProcessed", &[("service", "loyalty")]), 5.0, "counted once");
    }

    #[test]
    fn given_more_than_a_hundred_values_then_they_are_split_into_arrays_of_a_hundred() {
        let ages: Vec<f64> = (0..250).map(f64::from).collect();
        let mut metrics = Metrics::new("analytics");
        metrics.count("EventsProcessed", 250.0).values("EventAgeMilliseconds", Unit::Milliseconds, ages.clone());
        let documents = metrics.documents(AT);
        documents.iter().for_each(assert_valid_emf);
        let sizes: Vec<usize> =
            documents.iter().map(|d| d["EventAgeMilliseconds"].as_array().map_or(1, Vec::len)).collect();
        assert_eq!(sizes, vec![100, 100, 50]);
        let kept: Vec<f64> = documents
            .iter()
            .flat_map(|d| datapoints(&d.to_string()))
            .flat_map(|p| if p.name == "EventAgeMilliseconds" { p.values } else { Vec::new() })
            .collect();
        assert_eq!(kept, ages, "every value, once, in order");
        assert_eq!(documents.iter().filter(|d| d.get("EventsProcessed").is_some()).count(), 1);
    }

    #[test]
    fn given_more_than_a_hundred_metrics_then_the_rest_go_to_the_next_document() {
        let mut metrics = Metrics::new("sweeper");
        for i in 0..150 {
            metrics.count(&format!("Metric{i}"), 1.0);
        }
        let documents = metrics.documents(AT);
        documents.iter().for_each(assert_valid_emf);
        let per_document: Vec<usize> =
            documents.iter().map(|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap().len()).collect();
        assert_eq!(per_document, vec![100, 50]);
    }

    #[test]
    fn a_value_per_step_is_published_under_service_and_step_only() {
        let mut metrics = Metrics::new("checkout");
        metrics.value_per("SagaStepMilliseconds", Unit::Milliseconds, "step", "price", 12.0);
        metrics.value_per("SagaStepMilliseconds", Unit::Milliseconds, "step", "charge", 40.0);
        let lines = lines_of(&metrics);
        assert_eq!(lines.len(), 2);
        assert_eq!(sum(&lines, "SagaStepMilliseconds", &[("service", "checkout")]), 0.0);
        assert_eq!(sum(&lines, "SagaStepMilliseconds", &[("service", "checkout"), ("step", "charge")]), 40.0);
    }

    #[test]
    fn a_breakdown_and_a_step_share_a_document_as_their_keys_differ() {
        let mut metrics = Metrics::new("checkout");
        metrics.count_by("OrdersRejected", "reason", "insufficient-stock", 1.0);
        metrics.value_per("SagaStepMilliseconds", Unit::Milliseconds, "step", "reserve", 9.0);
        let lines = lines_of(&metrics);
        assert_eq!(lines.len(), 1);
        let point = |name: &str, key: &str, value: &str| sum(&lines, name, &[("service", "checkout"), (key, value)]);
        assert_eq!(point("OrdersRejected", "reason", "insufficient-stock"), 1.0);
        assert_eq!(point("SagaStepMilliseconds", "step", "reserve"), 9.0);
    }

    #[test]
    fn reserved_names_and_values_that_are_no_number_are_dropped_and_the_rest_kept() {
        let mut metrics = Metrics::new("checkout");
        metrics
            .count("service", 1.0)
            .count("level", 1.0)
            .count_by("OrdersRejected", "timestamp", "x", 1.0)
            .count_by("OrdersRejected", "reason", "", 1.0)
            .value("Latency", Unit::Milliseconds, f64::NAN)
            .values("Ages", Unit::Milliseconds, [1.0, f64::INFINITY, 2.0])
            .count("OrdersPlaced", 1.0);
        let lines = lines_of(&metrics);
        let names: Vec<String> = lines.iter().flat_map(|l| datapoints(l)).map(|p| p.name).collect();
        assert_eq!(names, vec!["Ages", "OrdersPlaced"]);
        assert_eq!(sum(&lines, "Ages", &[("service", "checkout")]), 3.0);
    }

    #[test]
    fn nothing_recorded_is_no_line() {
        let mut metrics = Metrics::new("email");
        metrics.values("EventAgeMilliseconds", Unit::Milliseconds, []);
        assert!(metrics.is_empty());
        assert!(metrics.lines(AT).is_empty());
    }

    #[test]
    fn a_line_that_is_not_emf_has_no_data_points() {
        assert!(datapoints("not json").is_empty());
        assert!(datapoints(r#"{"level":"INFO","fields":{"message":"hello"}}"#).is_empty());
        let missing_value = r#"{"_aws":{"Timestamp":1,"CloudWatchMetrics":[{"Namespace":"Shop","Dimensions":[["service"]],"Metrics":[{"Name":"X"}]}]},"service":"s"}"#;
        assert!(datapoints(missing_value).is_empty());
    }

    #[test]
    fn captured_lines_go_to_the_capture_only() {
        let ((), lines) = capture_sync(|| metric("sweeper", "OrdersSettleFailed", Unit::Count, 2.0));
        assert_eq!(lines.len(), 1);
        assert_eq!(sum(&lines, "OrdersSettleFailed", &[("service", "sweeper")]), 2.0);
    }

    #[tokio::test]
    async fn an_awaited_capture_holds_the_lines_of_its_own_future() {
        let (answer, lines) = capture(async {
            tokio::task::yield_now().await;
            Metrics::new("outbox-relay").count("OutboxRelayed", 4.0).emit();
            42
        })
        .await;
        assert_eq!(answer, 42);
        assert_eq!(sum(&lines, "OutboxRelayed", &[("service", "outbox-relay")]), 4.0);
    }
}
