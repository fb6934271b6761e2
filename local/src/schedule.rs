//! EventBridge schedules: `rate(N minute[s] | hour[s] | day[s])` invoking a function with the
//! scheduled event EventBridge sends.

use crate::invoke::Invoker;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
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

/// The event EventBridge Scheduler sends for a schedule, as `aws_lambda_events`' own type.
pub fn scheduled_event(at: chrono::DateTime<chrono::Utc>) -> EventBridgeEvent {
    let mut event = EventBridgeEvent::default();
    event.version = Some("0".into());
    event.id = Some(ulid::Ulid::new().to_string());
    event.detail_type = "Scheduled Event".into();
    event.source = "aws.events".into();
    event.account = Some("123456789012".into());
    event.time = Some(at);
    event.region = Some("us-east-1".into());
    event.resources = Some(Vec::new());
    event.detail = serde_json::json!({});
    event
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
        let event = match serde_json::to_value(scheduled_event(chrono::Utc::now())) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "a scheduled event that does not serialise");
                continue;
            }
        };
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
    fn the_scheduled_event_reads_as_the_sample_an_eventbridge_schedule_sends() {
        let event = serde_json::to_value(super::scheduled_event(chrono::Utc::now())).unwrap();
        assert_eq!(event["detail-type"], "Scheduled Event");
        assert_eq!(event["source"], "aws.events");
        assert_eq!(event["detail"], serde_json::json!({}));
        let sample: serde_json::Value =
            serde_json::from_str(include_str!("../../events/sweeper-scheduled.json")).unwrap();
        let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&event), keys(&sample));
    }

    #[test]
    fn cron_and_nonsense_are_refused() {
        assert_eq!(period("cron(0 12 * * ? *)"), None);
        assert_eq!(period("rate(0 minutes)"), None);
        assert_eq!(period("rate(fast)"), None);
    }
}
