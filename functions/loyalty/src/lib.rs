//! Loyalty: one point per whole currency unit of an order's total (45.99 EUR → 45 points),
//! credited to the customer's balance with a ledger entry per order. Exactly once is the point:
//! a duplicate delivery must never double a credit.

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{CustomerId, Money, OrderId};
use shared::events::{Envelope, OrderPlacedV1};
use shared::ports::{Applied, Marker, StoreError};

pub const POINTS_PER_WHOLE_UNIT: i64 = 1;

pub fn points_for(total: Money) -> i64 {
    total.whole_units().max(0) * POINTS_PER_WHOLE_UNIT
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    pub points: i64,
}

/// Balances and their ledger.
#[async_trait]
pub trait LoyaltyLedger: Send + Sync {
    /// Adds the credit to the balance and writes its ledger entry, atomically with `marker`:
    /// if the marker exists, nothing changes.
    async fn credit(&self, marker: &Marker, credit: &Credit) -> Result<Applied, StoreError>;
}

pub struct Loyalty<L> {
    pub ledger: L,
}

#[async_trait]
impl<L: LoyaltyLedger> Consumer for Loyalty<L> {
    type Event = OrderPlacedV1;
    const NAME: &'static str = "loyalty";

    async fn handle(&self, event: &Envelope<OrderPlacedV1>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        let credit = Credit {
            customer_id: event.data.customer_id.clone(),
            order_id: event.order_id,
            points: points_for(event.data.total_money()),
        };
        let applied = self.ledger.credit(&delivery.marker(Self::NAME, event.event_id), &credit).await?;
        Ok(applied.into())
    }
}

impl Loyalty<dynamo::DynamoLedger> {
    pub fn from_env(
        env: &shared::config::Env,
        aws: &aws_config::SdkConfig,
    ) -> Result<Self, shared::config::MissingEnv> {
        Ok(Loyalty {
            ledger: dynamo::DynamoLedger {
                client: shared::config::dynamodb(aws),
                loyalty_table: env.get("LOYALTY_TABLE")?,
                processed_table: env.get("PROCESSED_EVENTS_TABLE")?,
            },
        })
    }
}
