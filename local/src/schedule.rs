//! EventBridge schedules: `rate(N minute[s] | hour[s] | day[s])` invoking a function with the
//! scheduled event EventBridge sends.

use crate::invoke::Invoker;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// The period of a `rate(...)` expression; `cron(...)` is not supported locally.
pub fn period(expression: &str) -> Option<Duration> {
    let inner = expression.strip_prefix("rate(")?.strip_suffix(')')?;
    let (count, unit) = inner.trim().split_once(' ')?;
    let count: u64 = count.parse().ok()?;
    let seconds = match unit.trim_end_matches('s') {
        "minute" => 60,
        "hour" => 3600,
        "day" => 86_400,
        _ => return None,
    };
    (count > 0).then(|| Duration::from_secs(count * seconds))
}

pub async fn run(
    binary: String,
    every: Duration,
    timeout: Duration,
    invoker: Arc<Invoker>,
    mut stop: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            _ = stop.changed() => return,
        }
        let event = json!({
            "version": "0",
            "id": ulid::Ulid::new().to_string(),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": chrono::Utc::now(),
            "region": "us-east-1",
            "resources": [],
            "detail": {},
        });
        if let Err(error) = invoker.invoke(&binary, event, timeout).await {
            tracing::warn!(function = binary, %error, "scheduled invocation failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::period;
    use std::time::Duration;

    #[test]
    fn rate_expressions_become_periods() {
        assert_eq!(period("rate(1 minute)"), Some(Duration::from_secs(60)));
        assert_eq!(period("rate(5 minutes)"), Some(Duration::from_secs(300)));
        assert_eq!(period("rate(2 hours)"), Some(Duration::from_secs(7200)));
    }

    #[test]
    fn cron_and_nonsense_are_refused() {
        assert_eq!(period("cron(0 12 * * ? *)"), None);
        assert_eq!(period("rate(0 minutes)"), None);
        assert_eq!(period("rate(fast)"), None);
    }
}
