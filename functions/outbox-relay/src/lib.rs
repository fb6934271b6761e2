//! The outbox relay: publishes events that were committed with their order but did not reach
//! the bus (the checkout crashed, or the bus was down), then clears them. Runs on a schedule.
//!
//! Publishing twice is harmless (consumers dedupe on `eventId`); losing an event is not, so
//! an entry is cleared only after the bus accepted it.

use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::ports::{EventPublisher, Outbox, PublishError, StoreError};
use shared::publishing::{publish_all, Backoff};

/// Entries read per pass; the relay loops until the outbox is drained or a pass fails.
pub const PAGE: usize = 100;

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct RelayReport {
    pub published: usize,
    pub failed: usize,
}

/// Publishes every entry written before `before`.
pub async fn relay(
    outbox: &dyn Outbox,
    publisher: &dyn EventPublisher,
    before: DateTime<Utc>,
    backoff: Backoff,
) -> Result<RelayReport, StoreError> {
    let mut report = RelayReport::default();
    loop {
        let pending = outbox.pending(before, PAGE).await?;
        if pending.is_empty() {
            return Ok(report);
        }
        let events: Vec<_> = pending.into_iter().map(|p| p.event).collect();
        let refused = match publish_all(publisher, &events, backoff).await {
            Ok(()) => Vec::new(),
            Err(PublishError::Exhausted(rejected)) => rejected.into_iter().map(|r| r.event_id).collect(),
            Err(PublishError::Unavailable(_)) => events.iter().map(|e| e.event_id).collect(),
        };
        let published: Vec<_> = events.iter().map(|e| e.event_id).filter(|id| !refused.contains(id)).collect();
        outbox.clear(&published).await?;
        report.published += published.len();
        report.failed += refused.len();
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

    /// One scheduled pass: publish what has waited longer than the grace period.
    pub async fn run_once(&self) -> Result<RelayReport, StoreError> {
        let report = relay(&self.outbox, &self.publisher, Utc::now() - self.grace, Backoff::BACKGROUND).await?;
        tracing::info!(published = report.published, failed = report.failed, "outbox relay pass");
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
    use shared::ports::{OrderChange, OrderStore, StockEffect};
    use std::time::Duration;

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
            let opened = OrderEvent::Opened { customer_id: "c".into(), lines: lines.clone(), total, at: Utc::now() };
            let event =
                Envelope::new(id, "corr", Utc::now(), OrderPlacedV1::new("c".into(), &lines, total)).to_outbound();
            let change = OrderChange {
                order_id: id,
                version: 1,
                event: &opened,
                stock: StockEffect::None,
                outbox: Some(&event),
            };
            shop.commit(change).await.unwrap();
        }
        shop
    }

    fn later() -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(1)
    }

    #[tokio::test]
    async fn stranded_events_are_published_and_cleared() {
        let shop = given_stranded_events(3).await;
        let bus = MemoryBus::default();
        let report = relay(&shop, &bus, later(), FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 3, failed: 0 });
        assert_eq!(bus.published().len(), 3);
        assert_eq!(shop.outbox_len(), 0);
    }

    #[tokio::test]
    async fn entries_younger_than_the_grace_period_are_left_to_the_checkout() {
        let shop = given_stranded_events(2).await;
        let bus = MemoryBus::default();
        let before = Utc::now() - chrono::Duration::seconds(30);
        assert_eq!(relay(&shop, &bus, before, FAST).await.unwrap().published, 0);
        assert_eq!(shop.outbox_len(), 2);
    }

    #[tokio::test]
    async fn an_entry_the_bus_keeps_refusing_stays_in_the_outbox() {
        let shop = given_stranded_events(2).await;
        let bus = MemoryBus::default();
        bus.refuse_next_entries(u32::MAX);
        let report = relay(&shop, &bus, later(), FAST).await.unwrap();
        assert_eq!(report, RelayReport { published: 0, failed: 2 });
        assert_eq!(shop.outbox_len(), 2, "nothing is lost");
    }

    #[tokio::test]
    async fn more_than_a_page_is_drained_in_one_run() {
        let shop = given_stranded_events(PAGE + 5).await;
        let bus = MemoryBus::default();
        assert_eq!(relay(&shop, &bus, later(), FAST).await.unwrap().published, PAGE + 5);
        assert_eq!(shop.outbox_len(), 0);
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
