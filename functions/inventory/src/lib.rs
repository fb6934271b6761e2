//! Inventory: turns an order's reservation into a committed decrement and warns when an ordered
//! SKU runs low.
//!
//! At checkout the order's quantities moved from `available` to `reserved`; once the order is
//! placed they leave the shop, so each line's `reserved` drops by its quantity, in one
//! transaction with the processed-event marker. Every SKU of the order whose `available` is
//! below its `lowStockThreshold` is announced as `inventory.low-stock`.
//!
//! The effect is a DynamoDB write *and* a publish, and no transaction spans both. The order is:
//! 1. marker present → duplicate, nothing to do;
//! 2. read the SKUs' available stock and thresholds;
//! 3. publish the low-stock events, with ids derived from (order.placed eventId, SKU);
//! 4. commit the decrement with the marker.
//!
//! No low-stock event is ever lost: the marker is written only after the bus accepted every
//! warning, so a failure or crash anywhere before it leaves no marker and the retry publishes
//! again. The retry's events carry the same ids, so consumers that dedupe on `eventId` see one
//! event. The price is at-least-once publication (retries and concurrent duplicates may put the
//! same event on the bus twice), which every consumer of the bus must tolerate anyway. A retry
//! reads fresh levels, so it may find a SKU no longer low and not repeat that warning; the
//! warning the first attempt published stands, which is correct: it was low when we looked.

pub mod dynamo;
pub mod low_stock;
pub mod memory;

use async_trait::async_trait;
use shared::config::{Env, MissingEnv};
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{MoneyError, Sku};
use shared::events::{Envelope, OrderPlacedV1};
use shared::ports::{Applied, EventPublisher, Marker, PublishError, StoreError};
use shared::publishing::{publish_all, Backoff};
use std::collections::HashMap;
use std::time::Duration;

/// A function has 10 s for a batch of up to ten records; the queue's redelivery is the long
/// backoff, so a publish gives up after a second or so.
pub const PUBLISH_BACKOFF: Backoff =
    Backoff { attempts: 3, base: Duration::from_millis(50), max: Duration::from_millis(400) };

/// A transaction takes 100 actions; one is the marker.
pub const MAX_SKUS_PER_ORDER: usize = 99;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub available: i64,
    /// Products without one are never reported low.
    pub threshold: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// Less is reserved than the order takes (or the product is gone): stock records and
    /// orders disagree, and no retry will change that.
    #[error("no reservation covers the order's quantity of {0:?}")]
    NotReserved(Vec<Sku>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stock levels and this consumer's markers.
#[async_trait]
pub trait Stock: Send + Sync {
    async fn is_processed(&self, marker: &Marker) -> Result<bool, StoreError>;
    /// The levels of those `skus` that exist.
    async fn levels(&self, skus: &[Sku]) -> Result<HashMap<Sku, Level>, StoreError>;
    /// `reserved -= quantity` for every line, all or none, atomically with `marker`.
    async fn commit(&self, marker: &Marker, lines: &[(Sku, u64)]) -> Result<Applied, CommitError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("order has {0} SKUs; at most {MAX_SKUS_PER_ORDER} fit one transaction")]
    TooManySkus(usize),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error("no reservation covers the order's quantity of {0:?}")]
    NotReserved(Vec<Sku>),
    #[error("low-stock events not published: {0}")]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InventoryError {
    /// Retrying cannot help: the record goes to the dead-letter queue at once.
    pub fn is_permanent(&self) -> bool {
        matches!(self, InventoryError::TooManySkus(_) | InventoryError::Money(_) | InventoryError::NotReserved(_))
    }
}

impl From<CommitError> for InventoryError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::NotReserved(skus) => InventoryError::NotReserved(skus),
            CommitError::Store(store) => InventoryError::Store(store),
        }
    }
}

impl From<InventoryError> for ConsumerError {
    fn from(e: InventoryError) -> Self {
        match e {
            InventoryError::Store(store) => ConsumerError::Store(store),
            permanent if permanent.is_permanent() => ConsumerError::Permanent(permanent.to_string()),
            other => ConsumerError::Effect(other.to_string()),
        }
    }
}

pub struct Inventory<S, B> {
    pub stock: S,
    pub bus: B,
}

impl<S: Stock, B: EventPublisher> Inventory<S, B> {
    async fn apply(&self, event: &Envelope<OrderPlacedV1>, marker: &Marker) -> Result<Outcome, InventoryError> {
        if self.stock.is_processed(marker).await? {
            return Ok(Outcome::DuplicateSkipped);
        }
        let lines: Vec<(Sku, u64)> = event.data.per_sku()?.into_iter().map(|t| (t.sku, t.quantity)).collect();
        if lines.len() > MAX_SKUS_PER_ORDER {
            return Err(InventoryError::TooManySkus(lines.len()));
        }
        let skus: Vec<Sku> = lines.iter().map(|(sku, _)| sku.clone()).collect();
        let levels = self.stock.levels(&skus).await?;
        let warnings: Vec<_> = low_stock::warnings(event, &skus, &levels).iter().map(Envelope::to_outbound).collect();
        if !warnings.is_empty() {
            publish_all(&self.bus, &warnings, PUBLISH_BACKOFF).await?;
        }
        Ok(self.stock.commit(marker, &lines).await?.into())
    }
}

#[async_trait]
impl<S: Stock, B: EventPublisher> Consumer for Inventory<S, B> {
    type Event = OrderPlacedV1;
    const NAME: &'static str = "inventory";

    async fn handle(&self, event: &Envelope<OrderPlacedV1>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        // A permanent error (no reservation, too many SKUs) goes to the DLQ at once.
        self.apply(event, &delivery.marker(Self::NAME, event.event_id)).await.map_err(ConsumerError::from)
    }
}

impl Inventory<dynamo::DynamoStock, shared::adapters::eventbridge::EventBridgePublisher> {
    /// Wired to AWS from its environment: the same for Lambda and the local runner.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        use shared::config;
        Ok(Inventory {
            stock: dynamo::DynamoStock {
                client: config::dynamodb(aws),
                products_table: env.get("PRODUCTS_TABLE")?,
                processed_table: env.get("PROCESSED_EVENTS_TABLE")?,
            },
            bus: shared::adapters::eventbridge::EventBridgePublisher::new(
                config::eventbridge(aws),
                env.get("EVENT_BUS_NAME")?,
            ),
        })
    }
}
