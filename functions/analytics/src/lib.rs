//! Analytics: sales counters per day (per currency) and per SKU and day, the read model a
//! dashboard needs without scanning orders. Counters only ever grow by atomic `ADD`s, written
//! in one transaction with the processed-event marker, so an order counts exactly once.
//! Amounts are minor units and never mixed across currencies.
//!
//! The day's counters are sharded: each order adds to one of [`DAY_SHARDS`] items of its day
//! and currency, chosen by its event ID, and a reader sums the shards ([`DayTotals::sum`]).
//! Every order of a day would otherwise update the same item inside its marker transaction,
//! and DynamoDB serialises transactions on one item (and a partition takes about 500
//! transactional writes a second): with up to 5 pollers writing concurrently, one hot item
//! turns into `TransactionConflict` cancellations, and a conflict cancels the whole
//! transaction, marker included. Spreading the orders over shards makes two concurrent orders
//! collide only when they pick the same shard, and the harness retries those few conflicts in
//! process. (A redelivery of one event always picks the same shard, which does not matter: the
//! marker in the same transaction is what makes it count once.)

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use chrono::NaiveDate;
use shared::config::{Env, MissingEnv};
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{Currency, EventId, MoneyError};
use shared::events::{Envelope, OrderPlacedV2, SkuTotal};
use shared::ports::{Applied, Marker, StoreError};

/// A transaction takes 100 actions: the marker, the day's counters and one per SKU.
pub const MAX_SKUS_PER_ORDER: usize = 98;

/// How many items a day's counters of one currency are spread over.
pub const DAY_SHARDS: u8 = 8;

/// The shard of the day's counters an event adds to: from the random part of its ULID, so
/// concurrent orders spread evenly, and the same event always picks the same shard.
pub fn day_shard(event_id: EventId) -> u8 {
    (event_id.0.random() % u128::from(DAY_SHARDS)) as u8
}

/// A day's totals in one currency, summed over its shards.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayTotals {
    pub revenue: i64,
    pub orders: u64,
    pub units: u64,
}

impl DayTotals {
    /// The day's totals: the sum of its shards.
    pub fn sum(shards: impl IntoIterator<Item = DayTotals>) -> DayTotals {
        shards.into_iter().fold(DayTotals::default(), |total, shard| DayTotals {
            revenue: total.revenue + shard.revenue,
            orders: total.orders + shard.orders,
            units: total.units + shard.units,
        })
    }
}

/// What one order adds to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The UTC date the order was placed.
    pub day: NaiveDate,
    pub currency: Currency,
    /// Which of the day's [`DAY_SHARDS`] counter items it adds to.
    pub shard: u8,
    /// The order's total as charged, minor units.
    pub revenue: i64,
    pub units: u64,
    pub skus: Vec<SkuTotal>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TallyError {
    #[error("order has {0} SKUs; at most {MAX_SKUS_PER_ORDER} fit one transaction")]
    TooManySkus(usize),
    #[error(transparent)]
    Money(#[from] MoneyError),
}

impl From<TallyError> for ConsumerError {
    /// Retrying cannot help: the order itself cannot be counted.
    fn from(e: TallyError) -> Self {
        ConsumerError::Permanent(e.to_string())
    }
}

pub fn tally(order: &Envelope<OrderPlacedV2>) -> Result<Tally, TallyError> {
    let skus = order.data.per_sku()?;
    if skus.len() > MAX_SKUS_PER_ORDER {
        return Err(TallyError::TooManySkus(skus.len()));
    }
    let units = skus.iter().try_fold(0u64, |sum, s| sum.checked_add(s.quantity)).ok_or(MoneyError::Overflow)?;
    Ok(Tally {
        day: order.occurred_at.date_naive(),
        currency: order.data.total.currency,
        shard: day_shard(order.event_id),
        revenue: order.data.total.amount,
        units,
        skus,
    })
}

/// The counters.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds `tally` to its day's shard and its SKUs' counters, atomically with `marker`: if
    /// the marker exists, nothing changes.
    async fn add(&self, marker: &Marker, tally: &Tally) -> Result<Applied, StoreError>;
}

pub struct Analytics<C> {
    pub counters: C,
}

#[async_trait]
impl<C: Counters> Consumer for Analytics<C> {
    type Event = OrderPlacedV2;
    const NAME: &'static str = "analytics";

    async fn handle(&self, event: &Envelope<OrderPlacedV2>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        // An order that can never be tallied goes to the dead-letter queue at once.
        let tally = tally(event).map_err(ConsumerError::from)?;
        Ok(self.counters.add(&delivery.marker(Self::NAME, event.event_id), &tally).await?.into())
    }
}

impl Analytics<dynamo::DynamoCounters> {
    /// Wired to AWS from its environment: the same for Lambda and the local runner.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        Ok(Analytics {
            counters: dynamo::DynamoCounters {
                client: shared::config::dynamodb(aws),
                analytics_table: env.get("ANALYTICS_TABLE")?,
                processed_table: env.get("PROCESSED_EVENTS_TABLE")?,
            },
        })
    }
}
