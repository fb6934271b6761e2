//! Getting events onto the bus despite partial failures: `PutEvents` can answer 200 with some
//! entries refused, so refused entries are sent again with exponential backoff and jitter.

use crate::events::Outbound;
use crate::ports::{EventPublisher, PublishError, Rejected};

/// PutEvents takes at most 10 entries per call.
pub const MAX_ENTRIES_PER_PUT: usize = 10;

pub use crate::retry::Backoff;

/// Publishes every event, resending refused ones, and returns those still refused at the end.
pub async fn publish_all(
    publisher: &dyn EventPublisher,
    events: &[Outbound],
    backoff: Backoff,
) -> Result<(), PublishError> {
    let mut remaining: Vec<Outbound> = events.to_vec();
    let mut last_rejections: Vec<Rejected> = Vec::new();
    for attempt in 0..backoff.attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff.delay(attempt)).await;
        }
        let mut refused = Vec::new();
        for chunk in remaining.chunks(MAX_ENTRIES_PER_PUT) {
            match publisher.put(chunk).await {
                Ok(rejected) => refused.extend(rejected),
                Err(e) => {
                    refused.extend(chunk.iter().map(|ev| Rejected { event_id: ev.event_id, code: e.to_string() }))
                }
            }
        }
        if refused.is_empty() {
            return Ok(());
        }
        tracing::warn!(attempt, refused = refused.len(), "event bus refused entries; retrying them");
        remaining.retain(|ev| refused.iter().any(|r| r.event_id == ev.event_id));
        last_rejections = refused;
    }
    Err(PublishError::Exhausted(last_rejections))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapters::memory::MemoryBus;
    use crate::domain::EventId;
    use std::time::Duration;

    const FAST: Backoff = Backoff { attempts: 3, base: Duration::from_millis(1), max: Duration::from_millis(2) };

    fn outbound(n: usize) -> Vec<Outbound> {
        (0..n)
            .map(|i| Outbound {
                event_id: EventId::new(),
                source: "shop.test".into(),
                detail_type: "test".into(),
                detail: format!("{{\"n\":{i}}}"),
            })
            .collect()
    }

    #[tokio::test]
    async fn entries_refused_once_are_sent_again_and_land() {
        let bus = MemoryBus::default();
        let events = outbound(3);
        bus.refuse_next(events[1].event_id, 1);
        publish_all(&bus, &events, FAST).await.unwrap();
        assert_eq!(bus.published().len(), 3);
        assert_eq!(bus.put_calls(), 2, "the second call carries only the refused entry");
    }

    #[tokio::test]
    async fn more_than_ten_events_are_split_into_calls_of_ten() {
        let bus = MemoryBus::default();
        publish_all(&bus, &outbound(23), FAST).await.unwrap();
        assert_eq!(bus.put_calls(), 3);
        assert_eq!(bus.published().len(), 23);
    }

    #[tokio::test]
    async fn an_entry_refused_on_every_attempt_is_reported() {
        let bus = MemoryBus::default();
        let events = outbound(2);
        bus.refuse_next(events[0].event_id, u32::MAX);
        let err = publish_all(&bus, &events, FAST).await.unwrap_err();
        assert!(matches!(err, PublishError::Exhausted(ref r) if r.len() == 1 && r[0].event_id == events[0].event_id));
        assert_eq!(bus.published().len(), 1);
    }

    #[tokio::test]
    async fn an_unavailable_bus_is_retried() {
        let bus = MemoryBus::default();
        bus.fail_next_calls(1);
        publish_all(&bus, &outbound(1), FAST).await.unwrap();
        assert_eq!(bus.published().len(), 1);
    }
}
