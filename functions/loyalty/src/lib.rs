//! Loyalty: one point per whole currency unit of an order's total (45.99 EUR → 45 points),
//! credited to the customer's balance with a ledger entry per order when the order is placed,
//! and taken back when its customer cancels it.
//!
//! Exactly once is the point, and so is arrival order: the cancellation may arrive before the
//! order.placed it cancels. The out-of-order rule ([`shared::out_of_order`]) decides, from this
//! consumer's record of the order, what each event does ([`change_for`]):
//! - placed → credit (unless the cancellation came first: then placed is skipped);
//! - cancelled after placed → reverse the credit: balance down, ledger entry removed;
//! - cancelled first → nothing but the tombstone: there is no credit to take back, and none
//!   will be made.
//!
//! Either way an order credited and cancelled leaves no points and no entry, a credit never
//! outlives its order's cancellation, and a reversal never touches a credit that was not made
//! (nor, guarded by the balance's own condition, ever takes it below zero).

pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::{CustomerId, Money, OrderId};
use shared::events::{Envelope, OrderCancelledV1, OrderPlacedV2};
use shared::out_of_order::{Decision, OrderRecord, Stage, Stages};
use shared::ports::StoreError;

pub const POINTS_PER_WHOLE_UNIT: i64 = 1;

pub fn points_for(total: Money) -> i64 {
    total.whole_units().max(0) * POINTS_PER_WHOLE_UNIT
}

shared::event_set! {
    /// What loyalty reacts to: the order that earns points, and its cancellation.
    pub enum LoyaltyEvents {
        Placed(OrderPlacedV2),
        Cancelled(OrderCancelledV1),
    }
}

impl LoyaltyEvents {
    pub fn stage(&self) -> Stage {
        match self {
            LoyaltyEvents::Placed(_) => Stage::Placed,
            LoyaltyEvents::Cancelled(_) => Stage::Cancelled,
        }
    }
}

/// The points one order earns, and its ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credit {
    pub customer_id: CustomerId,
    pub order_id: OrderId,
    pub points: i64,
}

/// What one event does to the ledger, written with the order's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The points added to the balance and the entry written.
    Credit(Credit),
    /// The credit taken back: the points off the balance and the entry removed.
    Reverse(Credit),
    /// Only the record changes (a cancellation before the order was credited).
    Nothing,
}

/// What `event` does, given the stages applied `before` it (the rule decided to apply it).
pub fn change_for(event: &Envelope<LoyaltyEvents>, before: Stages) -> Change {
    let credit = |customer_id: &CustomerId, total: Money| Credit {
        customer_id: customer_id.clone(),
        order_id: event.order_id,
        points: points_for(total),
    };
    match &event.data {
        LoyaltyEvents::Placed(placed) => Change::Credit(credit(&placed.customer_id, placed.total)),
        // The cancellation carries the placed order's total: the same points as the credit.
        LoyaltyEvents::Cancelled(c) if before.contains(Stage::Placed) => {
            Change::Reverse(credit(&c.customer_id, c.total_money()))
        }
        LoyaltyEvents::Cancelled(_) => Change::Nothing,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The balance holds fewer points than the credit being reversed: the ledger and the
    /// records disagree, and no retry changes that.
    #[error("reversing {points} points would take the balance of {customer} below zero")]
    Overdrawn { customer: CustomerId, points: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<LedgerError> for ConsumerError {
    fn from(e: LedgerError) -> Self {
        match e {
            LedgerError::Store(store) => ConsumerError::Store(store),
            overdrawn @ LedgerError::Overdrawn { .. } => ConsumerError::Permanent(overdrawn.to_string()),
        }
    }
}

/// Balances, their ledger, and this consumer's records of orders.
#[async_trait]
pub trait LoyaltyLedger: Send + Sync {
    /// The consumer's record of the order (empty when it has seen nothing of it).
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError>;
    /// Writes `record` and `change` atomically; a `Conflict` (nothing written) if the record
    /// is no longer at the revision `record` follows.
    async fn apply(&self, record: &OrderRecord, change: &Change) -> Result<(), LedgerError>;
}

pub struct Loyalty<L> {
    pub ledger: L,
}

#[async_trait]
impl<L: LoyaltyLedger> Consumer for Loyalty<L> {
    type Event = LoyaltyEvents;
    const NAME: &'static str = "loyalty";

    async fn handle(&self, event: &Envelope<LoyaltyEvents>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        let stage = event.data.stage();
        let record = self.ledger.record(Self::NAME, event.order_id).await?;
        let before = match record.decide(stage) {
            Decision::Skip(why) => return Ok(why.into()),
            Decision::Apply { before } => before,
        };
        self.ledger.apply(&record.applying(stage, delivery), &change_for(event, before)).await?;
        Ok(Outcome::Processed)
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
