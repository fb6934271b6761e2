//! Analytics: sales counters per day (per currency) and per SKU and day, the read model a
//! dashboard needs without scanning orders. Counters only ever grow by atomic `ADD`s, written
//! in one transaction with the processed-event marker, so an order counts exactly once.
//! Amounts are minor units and never mixed across currencies.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use chrono::NaiveDate;
use shared::config::{Env, MissingEnv};
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{Currency, MoneyError};
use shared::events::{Envelope, OrderPlacedV1, SkuTotal};
use shared::ports::{Applied, Marker, StoreError};

/// A transaction takes 100 actions: the marker, the day's counters and one per SKU.
pub const MAX_SKUS_PER_ORDER: usize = 98;

/// What one order adds to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// The UTC date the order was placed.
    pub day: NaiveDate,
    pub currency: Currency,
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

pub fn tally(order: &Envelope<OrderPlacedV1>) -> Result<Tally, TallyError> {
    let skus = order.data.per_sku()?;
    if skus.len() > MAX_SKUS_PER_ORDER {
        return Err(TallyError::TooManySkus(skus.len()));
    }
    let units = skus.iter().try_fold(0u64, |sum, s| sum.checked_add(s.quantity)).ok_or(MoneyError::Overflow)?;
    Ok(Tally {
        day: order.occurred_at.date_naive(),
        currency: order.data.currency,
        revenue: order.data.total,
        units,
        skus,
    })
}

/// The counters.
#[async_trait]
pub trait Counters: Send + Sync {
    /// Adds `tally` to its day's and its SKUs' counters, atomically with `marker`: if the
    /// marker exists, nothing changes.
    async fn add(&self, marker: &Marker, tally: &Tally) -> Result<Applied, StoreError>;
}

pub struct Analytics<C> {
    pub counters: C,
}

#[async_trait]
impl<C: Counters> Consumer for Analytics<C> {
    type Event = OrderPlacedV1;
    const NAME: &'static str = "analytics";

    async fn handle(&self, event: &Envelope<OrderPlacedV1>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        let tally = tally(event).map_err(|e| {
            tracing::error!(permanent = true, error = %e, "order cannot be counted; the message will reach the dead-letter queue");
            ConsumerError::Effect(e.to_string())
        })?;
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
