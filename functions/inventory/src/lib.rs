//! Inventory: moves an order's stock as its lifecycle events arrive, in whatever order they
//! arrive, and warns when an ordered SKU runs low.
//!
//! At checkout the order's quantities moved from `available` to `reserved`. Then:
//! - `order.placed`: they leave the shop: `reserved -= q` (a [`Movement::Commit`]);
//! - `order.cancelled` after placed: they come back: `available += q` ([`Movement::Restock`]);
//! - `order.cancelled` before placed: the reservation is given back, `reserved -= q,
//!   available += q` ([`Movement::Release`]), and the order's record keeps the tombstone, so
//!   that placed, arriving later, is skipped.
//!
//! Both orders of arrival end with the same stock (`reserved - q`, `available + q`). Which
//! movement an event makes is the out-of-order rule's decision ([`shared::out_of_order`]) from
//! this consumer's record of the order, written in one transaction with the movement.
//!
//! An order placed also announces every SKU of it whose `available` is below its
//! `lowStockThreshold` as `inventory.low-stock`. That effect is a DynamoDB write *and* a
//! publish, and no transaction spans both. The order is:
//! 1. the order's record says placed was applied, or the order was cancelled → skip;
//! 2. read the SKUs' available stock and thresholds;
//! 3. publish the low-stock events, with ids derived from (order.placed eventId, SKU);
//! 4. commit the decrement with the record.
//!
//! No low-stock event is ever lost: the record is written only after the bus accepted every
//! warning, so a failure or crash anywhere before it leaves the record as it was and the retry
//! publishes again. The retry's events carry the same ids, so consumers that dedupe on
//! `eventId` see one event. The price is at-least-once publication (retries and concurrent
//! duplicates may put the same event on the bus twice), which every consumer of the bus must
//! tolerate anyway. A retry reads fresh levels, so it may find a SKU no longer low and not
//! repeat that warning; the warning the first attempt published stands, which is correct: it
//! was low when we looked. So does a warning of an order whose cancellation won the race to
//! the record (the placed delivery then finds itself superseded and commits nothing).

pub mod dynamo;
pub mod low_stock;
pub mod memory;

use async_trait::async_trait;
use shared::config::{Env, MissingEnv};
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{MoneyError, OrderId, Sku};
use shared::events::{published, Envelope, LowStockV1, OrderCancelledV1, OrderPlacedV2, Published};
use shared::out_of_order::{Decision, OrderRecord, Stage, Stages};
use shared::ports::{EventPublisher, PublishError, StoreError};
use shared::publishing::{publish_all, Backoff};
use std::collections::HashMap;
use std::time::Duration;

/// A function has 10 s for a batch of up to ten records; the queue's redelivery is the long
/// backoff, so a publish gives up after a second or so.
pub const PUBLISH_BACKOFF: Backoff =
    Backoff { attempts: 3, base: Duration::from_millis(50), max: Duration::from_millis(400) };

/// What `InventoryFunction` puts on the bus: a SKU's stock fell below its threshold
/// (checked by tests/contracts.rs).
pub const PUBLISHES: &[Published] = &[published::<LowStockV1>()];

/// A transaction takes 100 actions; one is the order's record.
pub const MAX_SKUS_PER_ORDER: usize = 99;

shared::event_set! {
    /// What inventory reacts to: the order that takes its reservation, and its cancellation.
    pub enum InventoryEvents {
        Placed(OrderPlacedV2),
        Cancelled(OrderCancelledV1),
    }
}

impl InventoryEvents {
    pub fn stage(&self) -> Stage {
        match self {
            InventoryEvents::Placed(_) => Stage::Placed,
            InventoryEvents::Cancelled(_) => Stage::Cancelled,
        }
    }

    /// The order's quantity per SKU, its lines combined.
    pub fn lines(&self) -> Result<Vec<(Sku, u64)>, MoneyError> {
        let per_sku = match self {
            InventoryEvents::Placed(placed) => placed.per_sku()?,
            // The cancellation carries the placed order's lines: combined the same way.
            InventoryEvents::Cancelled(c) => c.per_sku()?,
        };
        Ok(per_sku.into_iter().map(|t| (t.sku, t.quantity)).collect())
    }
}

/// What one event does to the stock of each of its lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Movement {
    /// `reserved -= q`: the order is placed and its goods leave the shop.
    Commit,
    /// `available += q`: a placed order was cancelled; what it committed comes back.
    Restock,
    /// `reserved -= q, available += q`: the order was cancelled before placed arrived; the
    /// reservation is given back (what placed would have committed, restocked at once).
    Release,
}

/// The movement of `event`, given the stages applied `before` it (the rule decided to apply it).
pub fn movement_for(event: &InventoryEvents, before: Stages) -> Movement {
    match event {
        InventoryEvents::Placed(_) => Movement::Commit,
        InventoryEvents::Cancelled(_) if before.contains(Stage::Placed) => Movement::Restock,
        InventoryEvents::Cancelled(_) => Movement::Release,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    pub available: i64,
    /// Products without one are never reported low.
    pub threshold: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    /// Less is reserved than the order takes or gives back (or the product is gone): stock
    /// records and orders disagree, and no retry will change that.
    #[error("no reservation covers the order's quantity of {0:?}")]
    NotReserved(Vec<Sku>),
    /// A restock for products that no longer exist.
    #[error("no such products to restock: {0:?}")]
    UnknownProducts(Vec<Sku>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Stock levels and this consumer's records of orders.
#[async_trait]
pub trait Stock: Send + Sync {
    /// The consumer's record of the order (empty when it has seen nothing of it).
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError>;
    /// The levels of those `skus` that exist.
    async fn levels(&self, skus: &[Sku]) -> Result<HashMap<Sku, Level>, StoreError>;
    /// Moves every line, all or none, atomically with `record`; a `Conflict` (nothing moved)
    /// if the record is no longer at the revision `record` follows.
    async fn apply(&self, record: &OrderRecord, movement: Movement, lines: &[(Sku, u64)]) -> Result<(), CommitError>;
}

#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("order has {0} SKUs; at most {MAX_SKUS_PER_ORDER} fit one transaction")]
    TooManySkus(usize),
    #[error(transparent)]
    Money(#[from] MoneyError),
    #[error(transparent)]
    Commit(CommitError),
    #[error("low-stock events not published: {0}")]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl InventoryError {
    /// Retrying cannot help: the record goes to the dead-letter queue at once.
    pub fn is_permanent(&self) -> bool {
        matches!(
            self,
            InventoryError::TooManySkus(_)
                | InventoryError::Money(_)
                | InventoryError::Commit(CommitError::NotReserved(_) | CommitError::UnknownProducts(_))
        )
    }
}

impl From<CommitError> for InventoryError {
    fn from(e: CommitError) -> Self {
        match e {
            CommitError::Store(store) => InventoryError::Store(store),
            refused => InventoryError::Commit(refused),
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
    async fn apply(&self, event: &Envelope<InventoryEvents>, delivery: &Delivery) -> Result<Outcome, InventoryError> {
        let stage = event.data.stage();
        let record = self.stock.record(<Self as Consumer>::NAME, event.order_id).await?;
        let before = match record.decide(stage) {
            Decision::Skip(why) => return Ok(why.into()),
            Decision::Apply { before } => before,
        };
        let lines = event.data.lines()?;
        if lines.len() > MAX_SKUS_PER_ORDER {
            return Err(InventoryError::TooManySkus(lines.len()));
        }
        let movement = movement_for(&event.data, before);
        if movement == Movement::Commit {
            self.warn_of_low_stock(event, &lines).await?;
        }
        self.stock.apply(&record.applying(stage, delivery), movement, &lines).await?;
        Ok(Outcome::Processed)
    }

    /// Publishes a warning for every SKU of the order below its threshold (steps 2 and 3).
    async fn warn_of_low_stock(
        &self,
        event: &Envelope<InventoryEvents>,
        lines: &[(Sku, u64)],
    ) -> Result<(), InventoryError> {
        let skus: Vec<Sku> = lines.iter().map(|(sku, _)| sku.clone()).collect();
        let levels = self.stock.levels(&skus).await?;
        let warnings: Vec<_> = low_stock::warnings(event, &skus, &levels).iter().map(Envelope::to_outbound).collect();
        if !warnings.is_empty() {
            publish_all(&self.bus, &warnings, PUBLISH_BACKOFF).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Stock, B: EventPublisher> Consumer for Inventory<S, B> {
    type Event = InventoryEvents;
    const NAME: &'static str = "inventory";

    async fn handle(&self, event: &Envelope<InventoryEvents>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        // A permanent error (no reservation, too many SKUs) goes to the DLQ at once.
        self.apply(event, delivery).await.map_err(ConsumerError::from)
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
