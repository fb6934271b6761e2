//! The outbox relay: publishes events that were committed with their order but did not reach
//! the bus (the checkout crashed, or the bus was down), then clears them. Runs on a schedule.
//!
//! Publishing twice is harmless (consumers dedupe on `eventId`); losing an event is not, so
//! an entry is cleared only after the bus accepted it.
//!
//! Metrics (CloudWatch EMF, namespace `Shop`, dimension `service` = `outbox-relay`), every run,
//! on one line ([`RelayReport::metrics`]):
//! - `OutboxRelayed`: entries published and cleared by this run (each one an event the request
//!   path could not publish: a failed PutEvents, or a crash before it);
//! - `OutboxRetried`: entries the bus refused at least once in this run, and so were sent again
//!   (within the run, or left for the next);
//! - `OutboxStuck`: entries the bus refused on every attempt of this run, kept in the outbox;
//! - `OldestOutboxEntryAgeSeconds`: age of the oldest entry found past the grace period, 0 if
//!   none. Emitted every run, so that a relay that stops running shows as missing data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::domain::EventId;
use shared::events::Outbound;
use shared::ports::{EventPublisher, Outbox, PublishError, Rejected, StoreError};
use shared::publishing::{publish_all, Backoff};
use shared::telemetry::{Metrics, Unit};
use std::collections::HashSet;
use std::sync::Mutex;
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
    /// Entries the bus refused at least once in this run (published later in it, or not).
    pub retried: usize,
    /// Entries the bus refused on every attempt of this run: still in the outbox.
    pub failed: usize,
    /// The run stopped for the deadline: entries may be left for the next run.
    pub stopped_early: bool,
    /// When the oldest entry found past the grace period was written (none found: `None`).
    pub oldest_pending_at: Option<DateTime<Utc>>,
}

impl RelayReport {
    /// The run's metrics at `now`, every one every run, zeros included.
    pub fn metrics(&self, now: DateTime<Utc>) -> Metrics {
        let oldest_age = self.oldest_pending_at.map_or(0, |at| (now - at).num_seconds().max(0));
        let mut metrics = Metrics::new("outbox-relay");
        metrics
            .count("OutboxRelayed", self.published as f64)
            .count("OutboxRetried", self.retried as f64)
            .count("OutboxStuck", self.failed as f64)
            .value("OldestOutboxEntryAgeSeconds", Unit::Seconds, oldest_age as f64);
        metrics
    }
}

/// The bus as the relay sees it: remembers every entry refused, to count the retried ones.
struct Refusals<'a> {
    bus: &'a dyn EventPublisher,
    refused: Mutex<HashSet<EventId>>,
}

impl Refusals<'_> {
    fn note(&self, ids: impl IntoIterator<Item = EventId>) {
        self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(ids);
    }

    fn count(&self) -> usize {
        self.refused.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

type Put<'f> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Vec<Rejected>, PublishError>> + Send + 'f>>;

// The desugared form of `#[async_trait]`, which this crate does not depend on.
impl EventPublisher for Refusals<'_> {
    fn put<'a, 'b, 'f>(&'a self, events: &'b [Outbound]) -> Put<'f>
    where
        'a: 'f,
        'b: 'f,
    {
        Box::pin(async move {
            let answer = self.bus.put(events).await;
            match &answer {
                Ok(rejected) => self.note(rejected.iter().map(|r| r.event_id)),
                Err(_) => self.note(events.iter().map(|e| e.event_id)),
            }
            answer
        })
    }
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
    let refusals = Refusals { bus: publisher, refused: Mutex::new(HashSet::new()) };
    let report = drain(outbox, &refusals, before, deadline, backoff).await?;
    Ok(RelayReport { retried: refusals.count(), ..report })
}

async fn drain(
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
        // Oldest first: the head of the first page is the oldest entry past the grace period.
        if done.is_empty() && report.oldest_pending_at.is_none() {
            report.oldest_pending_at = page.first().map(|p| p.created_at);
        }
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
        let now = Utc::now();
        let before = now - self.grace;
        let report = relay(&self.outbox, &self.publisher, before, deadline, Backoff::BACKGROUND).await?;
        tracing::info!(
            published = report.published,
            retried = report.retried,
            failed = report.failed,
            stopped_early = report.stopped_early,
            "outbox relay pass"
        );
        report.metrics(now).emit();
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::adapters::memory::{MemoryBus, MemoryShop};
    use shared::domain::pricing::Product;
    use shared::domain::{Currency, LineItem, Money, OrderEvent, OrderId};
    use shared::events::{Envelope, OrderPlacedV2};
    use shared::ports::{OrderChange, OrderStore, Pending, StockEffect};
    use std::time::SystemTime;

    const FAST: Backoff = Backoff { attempts: 2, base: Duration::from_millis(1), max: Duration::from_millis(1) };

    /// A report's counts, without the time of its oldest entry.
    #[derive(Debug, PartialEq, Eq)]
    struct Counts {
        published: usize,
        retried: usize,
        failed: usize,
        stopped_early: bool,
    }

    fn counts(report: &RelayReport) -> Counts {
        Counts {
            published: report.published,
            retried: report.retried,
            failed: report.failed,
            stopped_early: report.stopped_early,
        }
    }

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
                Envelope::new(id, 2, "corr", Utc::now(), OrderPlacedV2::new("c".into(), &lines, total)).to_outbound();
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
        assert_eq!(counts(&report), Counts { published: 3, retried: 0, failed: 0, stopped_early: false });
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
        assert_eq!(counts(&report), Counts { published: 0, retried: 2, failed: 2, stopped_early: false });
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
        assert_eq!(counts(&report), Counts { published: 0, retried: 0, failed: 0, stopped_early: true });
        assert_eq!((bus.put_calls(), shop.outbox_len()), (0, 3), "not even a read: the entries wait");
    }

    #[tokio::test]
    async fn a_run_stops_starting_pages_once_less_than_the_margin_is_left() {
        let shop = given_stranded_events(3 * PAGE).await;
        let bus = MemoryBus::default();
        // Pages start at 0 s (12 s left), 4 s (8 s left); at 8 s only 4 s are left.
        let deadline = pages_taking(Duration::from_secs(4), Duration::from_secs(12));
        let report = relay(&shop, &bus, later(), &deadline, FAST).await.unwrap();
        assert_eq!(counts(&report), Counts { published: 2 * PAGE, retried: 0, failed: 0, stopped_early: true });
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
        assert_eq!(counts(&report), Counts { published: PAGE + 5, retried: 0, failed: 0, stopped_early: false });
    }

    #[tokio::test]
    async fn an_entry_the_index_still_shows_after_it_was_cleared_is_not_published_twice() {
        let index = LaggingIndex { shop: given_stranded_events(3).await, stale: Default::default() };
        let bus = MemoryBus::default();
        let report = relay(&index, &bus, later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(counts(&report), Counts { published: 3, retried: 0, failed: 0, stopped_early: false });
        assert_eq!(bus.published().len(), 3, "each event once");
        assert_eq!(index.shop.outbox_len(), 0);
    }

    #[tokio::test]
    async fn an_entry_refused_once_and_then_accepted_counts_as_retried_and_relayed() {
        let shop = given_stranded_events(3).await;
        let first = shop.pending(later(), 1).await.unwrap().remove(0);
        let bus = MemoryBus::default();
        bus.refuse_next(first.event.event_id, 1);
        let report = relay(&shop, &bus, later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(counts(&report), Counts { published: 3, retried: 1, failed: 0, stopped_early: false });
        assert_eq!(shop.outbox_len(), 0);
    }

    #[tokio::test]
    async fn the_report_names_when_the_oldest_waiting_entry_was_written() {
        let shop = given_stranded_events(3).await;
        let oldest = shop.pending(later(), 1).await.unwrap().remove(0).created_at;
        let report = relay(&shop, &MemoryBus::default(), later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(report.oldest_pending_at, Some(oldest));
        let empty = relay(&shop, &MemoryBus::default(), later(), &plenty_of_time(), FAST).await.unwrap();
        assert_eq!(empty.oldest_pending_at, None, "nothing waits");
    }

    fn of_the_relay(lines: &[String], name: &str) -> f64 {
        shared::telemetry::sum(lines, name, &[("service", "outbox-relay")])
    }

    #[test]
    fn a_run_is_one_metric_line_with_every_count_and_the_oldest_entry_age() {
        let written = Utc::now();
        let report =
            RelayReport { published: 4, retried: 2, failed: 1, stopped_early: false, oldest_pending_at: Some(written) };
        let lines = report.metrics(written + chrono::Duration::seconds(90)).lines(0);
        assert_eq!(lines.len(), 1);
        let values: Vec<f64> = ["OutboxRelayed", "OutboxRetried", "OutboxStuck", "OldestOutboxEntryAgeSeconds"]
            .iter()
            .map(|name| of_the_relay(&lines, name))
            .collect();
        assert_eq!(values, vec![4.0, 2.0, 1.0, 90.0]);
    }

    #[test]
    fn a_run_that_found_nothing_still_reports_zeros_so_a_silent_relay_shows_as_missing_data() {
        let lines = RelayReport::default().metrics(Utc::now()).lines(0);
        let points = shared::telemetry::datapoints(&lines[0]);
        let names: Vec<&str> = points.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, vec!["OutboxRelayed", "OutboxRetried", "OutboxStuck", "OldestOutboxEntryAgeSeconds"]);
        assert!(points.iter().all(|p| p.values == [0.0]));
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
