//! The outbox relay: publishes events that were committed with their order but did not reach
//! the bus (the checkout crashed, or the bus was down), then clears them. Runs on a schedule.
//!
//! Publishing twice is harmless (consumers dedupe on `eventId`); losing an event is not, so
//! an entry is cleared only after the bus accepted it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::EventId;
use shared::ports::{EventPublisher, Outbox, PublishError, StoreError};
use shared::publishing::{publish_all, Backoff};
use std::collections::HashSet;
use std::time::Duration;

/// Entries read per page; the relay pages until the outbox is drained, a page fails, or the
/// deadline is near.
pub const PAGE: usize = 100;

/// No page is started with less than this left before the invocation's deadline. A page is a
/// query, up to ten PutEvents with backoff and a few BatchWriteItems, each bounded by the SDK's
/// operation timeout (`shared::config`); a page cut off by the timeout is not lost (its entries
/// stay and are published again next run) but it wastes that work and logs as a failure.
pub const MARGIN: Duration = Duration::from_secs(5);

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    pub published: usize,
    pub failed: usize,
    /// The run stopped for the deadline: entries may be left for the next run.
    pub stopped_early: bool,
}

pub use shared::deadline::Deadline;

/// Publishes every entry written before `before`, page by page, until none is left or less
/// than `MARGIN` remains before `deadline`.
pub async fn relay(
    outbox: &dyn Outbox,
    publisher: &dyn EventPublisher,
    before: DateTime<Utc>,
    deadline: &Deadline,
    backoff: Backoff,
) -> Result<RelayReport, StoreError> {
    let mut report = RelayReport::default();
    // What this run already published and cleared. The outbox's index is eventually
    // consistent, so a cleared entry can show up in the next page again: skip it rather than
    // publish it twice, and stop when a page holds nothing new rather than re-read it in a loop.
    let mut done: HashSet<EventId> = HashSet::new();
    loop {
        if deadline.remaining() < MARGIN {
            report.stopped_early = true;
            tracing::warn!(
                published = report.published,
                "outbox relay stopped before its deadline; the rest waits for the next run"
            );
            return Ok(report);
        }
        let page = outbox.pending(before, PAGE).await?;
        let events: Vec<_> = page.into_iter().map(|p| p.event).filter(|e| !done.contains(&e.event_id)).collect();
        if events.is_empty() {
            return Ok(report);
        }
        let refused = match publish_all(publisher, &events, backoff).await {
            Ok(()) => Vec::new(),
            Err(PublishError::Exhausted(rejected)) => rejected.into_iter().map(|r| r.event_id).collect(),
            Err(PublishError::Unavailable(_)) => events.iter().map(|e| e.event_id).collect(),
        };
        let published: Vec<_> = events.iter().map(|e| e.event_id).filter(|id| !refused.contains(id)).collect();
        outbox.clear(&published).await?;
        report.published += published.len();
        report.failed += refused.len();
        done.extend(published);
        if !refused.is_empty() {
            // Leave them for the next run rather than spin on a bus that refuses them.
            tracing::error!(refused = refused.len(), "events still not accepted by the bus; kept in the outbox");
            return Ok(report);
        }
    }
}

/// The relay's dependencies, wired from its environment.
pub struct Relay {
    pub outbox: shared::adapters::dynamodb::DynamoOutbox,
    pub publisher: shared::adapters::eventbridge::EventBridgePublisher,
    pub grace: chrono::Duration,
}

impl Relay {
    pub fn from_env(
        env: &shared::config::Env,
        aws: &aws_config::SdkConfig,
    ) -> Result<Relay, shared::config::MissingEnv> {
        use shared::config;
        let grace = env.get_or("OUTBOX_GRACE_SECONDS", "30").parse().unwrap_or(30);
        Ok(Relay {
            outbox: shared::adapters::dynamodb::DynamoOutbox::new(config::dynamodb(aws), env.get("OUTBOX_TABLE")?),
            publisher: shared::adapters::eventbridge::EventBridgePublisher::new(
                config::eventbridge(aws),
                env.get("EVENT_BUS_NAME")?,
            ),
            grace: chrono::Duration::seconds(grace),
        })
    }

    /// One scheduled pass: publish what has waited longer than the grace period, within the
    /// invocation's `deadline`.
    pub async fn run_once(&self, deadline: &Deadline) -> Result<RelayReport, StoreError> {
        let before = Utc::now() - self.grace;
        let report = relay(&self.outbox, &self.publisher, before, deadline, Backoff::BACKGROUND).await?;
        tracing::info!(
            published = report.published,
            failed = report.failed,
            stopped_early = report.stopped_early,
            "outbox relay pass"
        );
        shared::telemetry::metric(
            "outbox-relay",
            "OutboxRelayed",
            shared::telemetry::Unit::Count,
            report.published as f64,
        );
        shared::telemetry::metric("outbox-relay", "OutboxStuck", shared::telemetry::Unit::Count, report.failed as f64);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::adapters::memory::{MemoryBus, MemoryShop};
    use shared::domain::pricing::Product;
    use shared::domain::{Currency, LineItem, Money, OrderEvent, OrderId};
    use shared::events::{Envelope, OrderPlacedV1};
    use shared::ports::{OrderChange, OrderStore, Pending, StockEffect};
    use std::time::SystemTime;

    const FAST: Backoff = Backoff { attempts: 2, base: Duration::from_millis(1), max: Duration::from_millis(1) };

    /// A shop whose outbox holds `n` order.placed events that never reached the bus.
    async fn given_stranded_events(n: usize) -> MemoryShop {
        let shop = MemoryShop::default().with_product(
            Product { sku: "MUG".into(), name: "Mug".into(), unit_price: Money::new(1250, Currency::EUR) },
            1000,
        );
        for _ in 0..n {
            let id = OrderId::new();
            let lines = vec![LineItem { sku: "MUG".into(), quantity: 1, unit_price: Money::new(1250, Currency::EUR) }];
            let total = Money::new(1250, Currency::EUR);
            let opened = OrderEvent::Opened {
                customer_id: "c".into(),
                lines: lines.clone(),
                total,
                at: Utc::now(),
                correlation_id: "corr".into(),
            };
            let event =
                Envelope::new(id, 2, "corr", Utc::now(), OrderPlacedV1::new("c".into(), &lines, total)).to_outbound();
            let change = OrderChange {
                order_id: id,
                version: 1,
                event: &opened,
                stock: StockEffect::None,
                outbox: Some(&event),
                correlation_id: "corr",
            };
            shop.commit(change).await.unwrap();
        }
        shop
    }

    fn later() -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(1)
    }

    /// A deadline as far off as the template's 10 s function timeout.
    fn plenty_of_time() -> Deadline {
        Deadline::at(SystemTime::now() + Duration::from_secs(10))
    }

    /// A deadline `left` away from the first look at the clock, on a clock that moves
    /// `per_page` forward at each later look: the relay looks once before each page, so
    /// each page seems to take `per_page`.
    fn pages_taking(per_page: Duration, left: Duration) -> Deadline {
        let start = SystemTime::UNIX_EPOCH;
        let looks = std::sync::atomic::AtomicU32::new(0);
        Deadline::with_clock(start + left, move || {
            start + per_page * looks.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
        })
    }

    #[tokio::test]
    async fn stranded_events_are_published_and_cleared() {
        let shop = given_stranded_events(3).await;
        let bus = MemoryBus::default();
        let report = relay(&shop, &bus, later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 3, failed: 0, stopped_early: false });
        assert_eq!(bus.published().len(), 3);
        assert_eq!(shop.outbox_len(), 0);
    }

    #[tokio::test]
    async fn entries_younger_than_the_grace_period_are_left_to_the_checkout() {
        let shop = given_stranded_events(2).await;
        let bus = MemoryBus::default();
        let before = Utc::now() - chrono::Duration::seconds(30);
        assert_eq!(relay(&shop, &bus, before, &plenty_of_time(), FAST).await.unwrap().published, 0);
        assert_eq!(shop.outbox_len(), 2);
    }

    #[tokio::test]
    async fn an_entry_the_bus_keeps_refusing_stays_in_the_outbox() {
        let shop = given_stranded_events(2).await;
        let bus = MemoryBus::default();
        bus.refuse_next_entries(u32::MAX);
        let report = relay(&shop, &bus, later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 0, failed: 2, stopped_early: false });
        assert_eq!(shop.outbox_len(), 2, "nothing is lost");
    }

    #[tokio::test]
    async fn more_than_a_page_is_drained_in_one_run() {
        let shop = given_stranded_events(PAGE + 5).await;
        let bus = MemoryBus::default();
        assert_eq!(relay(&shop, &bus, later(), &plenty_of_time(), FAST).await.unwrap().published, PAGE + 5);
        assert_eq!(shop.outbox_len(), 0);
    }

    #[tokio::test]
    async fn a_run_that_starts_within_the_margin_of_its_deadline_starts_no_page() {
        let shop = given_stranded_events(3).await;
        let bus = MemoryBus::default();
        let deadline = Deadline::at(SystemTime::now() + MARGIN - Duration::from_millis(1));
        let report = relay(&shop, &bus, later(), &deadline, FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 0, failed: 0, stopped_early: true });
        assert_eq!((bus.put_calls(), shop.outbox_len()), (0, 3), "not even a read: the entries wait");
    }

    #[tokio::test]
    async fn a_run_stops_starting_pages_once_less_than_the_margin_is_left() {
        let shop = given_stranded_events(3 * PAGE).await;
        let bus = MemoryBus::default();
        // Pages start at 0 s (12 s left), 4 s (8 s left); at 8 s only 4 s are left.
        let deadline = pages_taking(Duration::from_secs(4), Duration::from_secs(12));
        let report = relay(&shop, &bus, later(), &deadline, FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 2 * PAGE, failed: 0, stopped_early: true });
        assert_eq!(shop.outbox_len(), PAGE, "the last page waits for the next run");
        assert_eq!(bus.published().len(), 2 * PAGE);
    }

    #[tokio::test]
    async fn a_run_that_drains_the_outbox_in_time_did_not_stop_early() {
        let shop = given_stranded_events(PAGE + 5).await;
        let bus = MemoryBus::default();
        // Three looks: two pages and the empty read that ends the run, the last with 6 s left.
        let deadline = pages_taking(Duration::from_secs(2), Duration::from_secs(10));
        let report = relay(&shop, &bus, later(), &deadline, FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: PAGE + 5, failed: 0, stopped_early: false });
    }

    #[tokio::test]
    async fn an_entry_the_index_still_shows_after_it_was_cleared_is_not_published_twice() {
        let index = LaggingIndex { shop: given_stranded_events(3).await, stale: Default::default() };
        let bus = MemoryBus::default();
        let report = relay(&index, &bus, later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 3, failed: 0, stopped_early: false });
        assert_eq!(bus.published().len(), 3, "each event once");
        assert_eq!(index.shop.outbox_len(), 0);
    }

    /// The outbox as an eventually consistent index shows it: entries cleared by the last
    /// `clear` are still listed by the next `pending`.
    struct LaggingIndex {
        shop: MemoryShop,
        stale: std::sync::Mutex<Vec<Pending>>,
    }

    type Answer<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

    // The desugared form of `#[async_trait]`, which this crate does not depend on.
    impl Outbox for LaggingIndex {
        fn pending<'a, 'f>(&'a self, before: DateTime<Utc>, limit: usize) -> Answer<'f, Vec<Pending>>
        where
            'a: 'f,
        {
            Box::pin(async move {
                let mut listed = self.shop.pending(before, limit).await?;
                listed.extend(self.stale.lock().unwrap().iter().filter(|p| p.created_at < before).cloned());
                listed.sort_by_key(|p| (p.created_at, p.event.event_id));
                listed.truncate(limit);
                Ok(listed)
            })
        }

        fn clear<'a, 'b, 'f>(&'a self, ids: &'b [shared::domain::EventId]) -> Answer<'f, ()>
        where
            'a: 'f,
            'b: 'f,
        {
            Box::pin(async move {
                let cleared = self.shop.pending(later(), usize::MAX).await?;
                *self.stale.lock().unwrap() = cleared.into_iter().filter(|p| ids.contains(&p.event.event_id)).collect();
                self.shop.clear(ids).await
            })
        }
    }
}

#[cfg(test)]
mod sample_event {
    #[test]
    fn the_schedule_sample_is_a_scheduled_eventbridge_event() {
        let text = include_str!("../../../events/outbox-relay-schedule.json");
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent = serde_json::from_str(text).unwrap();
        assert_eq!((event.source.as_str(), event.detail_type.as_str()), ("aws.events", "Scheduled Event"));
    }
}
