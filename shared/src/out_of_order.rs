//! The out-of-order rule, written once for every consumer that reacts to several events of one
//! order (loyalty, inventory, e-mail).
//!
//! Each consumer has its own queue, SQS does not keep order, and a retry or a DLQ redrive can
//! deliver an event days late: `order.cancelled` can reach a consumer before the
//! `order.placed` it cancels. So each consumer keeps, per order, an [`OrderRecord`]: which of
//! the order's lifecycle events it has applied, the cancellation being a tombstone. What to do
//! with an arriving event is a pure function of that record ([`OrderRecord::decide`]):
//! - its stage was applied before: a duplicate, skip it;
//! - the order's cancellation was applied and this event is one it supersedes (placed,
//!   shipped, delivered arriving after it): skip it, what it would do is void;
//! - otherwise apply it, knowing what was applied before: a cancellation after `placed`
//!   compensates what placed did; one before it compensates what placed *would* have done
//!   (and placed, arriving later, is skipped), so both orders of arrival end in the same state.
//!
//! The record is written together with the consumer's effect, in one DynamoDB transaction,
//! conditioned on the revision it was read at (optimistic concurrency): when a concurrent
//! delivery for the same order wrote first, the transaction is cancelled, nothing of it
//! applies, and the harness retries the delivery in place as a conflict (it reads the record
//! again and decides again). The record therefore also does the job of the per-event
//! processed marker for these consumers: an order has at most one event of each stage (the
//! domain allows each transition once), so "this stage was applied" is "this event was applied",
//! whatever envelope a replay gives it.
//!
//! An effect outside DynamoDB (an e-mail) cannot join a transaction: [`once_in_order`] holds a
//! lease on the record while it runs instead; its docs say what that leaves open.

use crate::consumer::{ConsumerError, Delivery, Outcome, MARKER_TTL_SECONDS};
use crate::domain::OrderId;
use crate::ports::StoreError;
use async_trait::async_trait;
use std::future::Future;

/// A lifecycle event of an order, as the rule sees it: one per event type of the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Placed,
    Shipped,
    Delivered,
    Cancelled,
}

impl Stage {
    pub const ALL: [Stage; 4] = [Stage::Placed, Stage::Shipped, Stage::Delivered, Stage::Cancelled];

    /// Its name in the stored record.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Placed => "placed",
            Stage::Shipped => "shipped",
            Stage::Delivered => "delivered",
            Stage::Cancelled => "cancelled",
        }
    }

    pub fn from_name(name: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Whether a cancellation applied before makes this event void. Only the cancellation
    /// itself survives its own tombstone (and it is then a duplicate).
    fn superseded_by_cancellation(self) -> bool {
        self != Stage::Cancelled
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of stages (small and `Copy`: four bits).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stages(u8);

impl Stages {
    pub const NONE: Stages = Stages(0);

    pub fn contains(self, stage: Stage) -> bool {
        self.0 & stage.bit() != 0
    }

    pub fn with(self, stage: Stage) -> Stages {
        Stages(self.0 | stage.bit())
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Stage> {
        Stage::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl FromIterator<Stage> for Stages {
    fn from_iter<I: IntoIterator<Item = Stage>>(stages: I) -> Self {
        stages.into_iter().fold(Stages::NONE, Stages::with)
    }
}

impl std::fmt::Debug for Stages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.iter().map(Stage::name)).finish()
    }
}

/// Why an event is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Its stage was applied before: at-least-once delivery, a replay.
    Duplicate,
    /// The order's cancellation was applied before it arrived: it is void.
    Superseded,
}

impl From<Skip> for Outcome {
    fn from(skip: Skip) -> Self {
        match skip {
            Skip::Duplicate => Outcome::DuplicateSkipped,
            Skip::Superseded => Outcome::Superseded,
        }
    }
}

/// What to do with an arriving event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Skip(Skip),
    /// Apply it; `before` are the stages applied earlier, so that a compensation knows whether
    /// there is an effect to undo or one to forestall.
    Apply {
        before: Stages,
    },
}

/// One consumer's record of one order. Stored in ProcessedEventsTable under
/// `<consumer>#ORDER#<orderId>` (see `adapters::dynamodb::order_records`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    pub consumer: &'static str,
    pub order_id: OrderId,
    /// The stages applied; `Cancelled` among them is the tombstone.
    pub applied: Stages,
    /// How many times it was written (0: never). A write of revision `r` succeeds only over
    /// the stored revision `r - 1` (over nothing when `r` is 1).
    pub revision: u64,
    /// While an effect outside DynamoDB runs for this order, until when (epoch ms) its
    /// delivery holds the order ([`once_in_order`]).
    pub lease_until_ms: Option<i64>,
    /// When the record may be forgotten (epoch s, the table's TTL), renewed on every write: it
    /// outlives EventBridge retries, DLQ retention and archive replays, as markers do.
    pub expires_at: i64,
}

/// The record's key: never equal to a processed-event marker's `<consumer>#<eventId>`.
pub fn record_key(consumer: &str, order_id: OrderId) -> String {
    format!("{consumer}#ORDER#{order_id}")
}

impl OrderRecord {
    /// The record of an order the consumer has seen nothing of.
    pub fn empty(consumer: &'static str, order_id: OrderId) -> Self {
        OrderRecord { consumer, order_id, applied: Stages::NONE, revision: 0, lease_until_ms: None, expires_at: 0 }
    }

    pub fn key(&self) -> String {
        record_key(self.consumer, self.order_id)
    }

    /// The rule (see the module docs).
    pub fn decide(&self, stage: Stage) -> Decision {
        if self.applied.contains(stage) {
            Decision::Skip(Skip::Duplicate)
        } else if self.applied.contains(Stage::Cancelled) && stage.superseded_by_cancellation() {
            Decision::Skip(Skip::Superseded)
        } else {
            Decision::Apply { before: self.applied }
        }
    }

    /// The record to write with the effect of `stage`: the stage added, any lease ended.
    pub fn applying(&self, stage: Stage, delivery: &Delivery) -> OrderRecord {
        OrderRecord { applied: self.applied.with(stage), lease_until_ms: None, ..self.next(delivery) }
    }

    /// The record that holds the order for `delivery` until its deadline.
    pub fn leased(&self, delivery: &Delivery) -> OrderRecord {
        OrderRecord { lease_until_ms: Some(delivery.deadline_ms), ..self.next(delivery) }
    }

    /// The record with its lease given back and nothing applied.
    pub fn released(&self, delivery: &Delivery) -> OrderRecord {
        OrderRecord { lease_until_ms: None, ..self.next(delivery) }
    }

    /// Whether another delivery holds the order at `now_ms`.
    pub fn is_leased(&self, now_ms: i64) -> bool {
        self.lease_until_ms.is_some_and(|until| until >= now_ms)
    }

    /// The revision the stored record must have for this one to be written over it.
    pub fn previous_revision(&self) -> u64 {
        self.revision.saturating_sub(1)
    }

    fn next(&self, delivery: &Delivery) -> OrderRecord {
        OrderRecord {
            revision: self.revision + 1,
            expires_at: delivery.now_ms / 1000 + MARKER_TTL_SECONDS,
            ..self.clone()
        }
    }
}

/// Order records on their own, for an effect outside DynamoDB ([`once_in_order`]). Consumers
/// whose effect is a DynamoDB write put the record into their own transaction instead.
#[async_trait]
pub trait OrderRecords: Send + Sync {
    /// The consumer's record of the order, read strongly consistent; empty when there is none.
    async fn load(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError>;
    /// Writes `record` if the stored one still has its previous revision; `Conflict` if not.
    async fn save(&self, record: &OrderRecord) -> Result<(), StoreError>;
}

/// The rule for an effect outside DynamoDB: decide, then hold the order (a lease on its record
/// until the invocation's deadline), run `effect` with what was applied before, and record the
/// stage; release the lease if the effect fails so that the retry runs it.
///
/// The lease serialises every effect of one order in this consumer, not only the deliveries
/// of one event: a cancellation notice and a receipt for one order are never sent at the same
/// time, and whichever comes second sees what the first recorded. Another delivery finding
/// the order held is told to come back ([`ConsumerError::HeldElsewhere`], redelivered after
/// the visibility timeout, which outlasts the lease).
///
/// What no lease can close without a transaction spanning the effect: if the effect happened
/// but its stage was not recorded (the invocation died after it, the recording write failed,
/// or the effect outlasted the lease), the lease lapses and the next delivery of that event
/// runs it again; and an event superseded by it that is delivered in that window is applied
/// (for e-mail: a second notice, or a receipt after the cancellation notice). At least once,
/// never lost.
pub async fn once_in_order<F, Fut>(
    records: &dyn OrderRecords,
    consumer: &'static str,
    order_id: OrderId,
    stage: Stage,
    delivery: &Delivery,
    effect: F,
) -> Result<Outcome, ConsumerError>
where
    F: FnOnce(Stages) -> Fut + Send,
    Fut: Future<Output = Result<(), ConsumerError>> + Send,
{
    let record = records.load(consumer, order_id).await?;
    let before = match record.decide(stage) {
        Decision::Skip(why) => return Ok(why.into()),
        Decision::Apply { before } => before,
    };
    if record.is_leased(delivery.now_ms) {
        return Err(ConsumerError::HeldElsewhere);
    }
    // A concurrent delivery that claimed first makes this a conflict: retried in place, it
    // then finds the order held (or the stage applied).
    let held = record.leased(delivery);
    records.save(&held).await?;
    match effect(before).await {
        Ok(()) => match records.save(&held.applying(stage, delivery)).await {
            Ok(()) => Ok(Outcome::Processed),
            // Someone wrote the record since the claim: the lease lapsed and another delivery
            // holds the order now. Not a conflict to retry at once (that would run the effect
            // again right away): redelivered later, this event is decided again on what that
            // delivery recorded.
            Err(StoreError::Conflict(_)) => Err(ConsumerError::HeldElsewhere),
            Err(e) => Err(e.into()),
        },
        Err(e) => {
            if let Err(release) = records.save(&held.released(delivery)).await {
                tracing::warn!(error = %release, "could not release the order; it frees when its lease lapses");
            }
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(now_ms: i64) -> Delivery {
        Delivery { message_id: "m".into(), receive_count: 1, now_ms, deadline_ms: now_ms + 10_000 }
    }

    fn given(applied: &[Stage]) -> OrderRecord {
        let mut record = OrderRecord::empty("test", OrderId::new());
        for stage in applied {
            record = record.applying(*stage, &delivery(0));
        }
        record
    }

    fn apply(before: &[Stage]) -> Decision {
        Decision::Apply { before: before.iter().copied().collect() }
    }

    #[test]
    fn the_first_event_of_an_order_is_applied_with_nothing_before_it() {
        for stage in Stage::ALL {
            assert_eq!(given(&[]).decide(stage), apply(&[]), "{stage:?}");
        }
    }

    #[test]
    fn a_stage_applied_before_is_a_duplicate() {
        for stage in Stage::ALL {
            assert_eq!(given(&[stage]).decide(stage), Decision::Skip(Skip::Duplicate), "{stage:?}");
        }
    }

    #[test]
    fn a_cancellation_after_placed_is_applied_knowing_placed_was() {
        assert_eq!(given(&[Stage::Placed]).decide(Stage::Cancelled), apply(&[Stage::Placed]));
    }

    #[test]
    fn placed_after_the_cancellation_is_superseded() {
        assert_eq!(given(&[Stage::Cancelled]).decide(Stage::Placed), Decision::Skip(Skip::Superseded));
    }

    #[test]
    fn shipped_or_delivered_after_the_cancellation_are_superseded() {
        for stage in [Stage::Shipped, Stage::Delivered] {
            let record = given(&[Stage::Placed, Stage::Cancelled]);
            assert_eq!(record.decide(stage), Decision::Skip(Skip::Superseded), "{stage:?}");
        }
    }

    #[test]
    fn later_stages_arriving_before_placed_are_applied_and_placed_still_is() {
        assert_eq!(given(&[]).decide(Stage::Shipped), apply(&[]));
        assert_eq!(given(&[Stage::Shipped]).decide(Stage::Placed), apply(&[Stage::Shipped]));
    }

    #[test]
    fn every_write_follows_the_revision_it_was_read_at_and_renews_the_ttl() {
        let read = given(&[Stage::Placed]);
        let next = read.applying(Stage::Cancelled, &delivery(1_000_000));
        assert_eq!((read.revision, next.revision, next.previous_revision()), (1, 2, 1));
        assert_eq!(next.expires_at, 1_000 + MARKER_TTL_SECONDS);
        assert_eq!(
            OrderRecord::empty("t", OrderId::new()).applying(Stage::Placed, &delivery(0)).previous_revision(),
            0
        );
    }

    #[test]
    fn a_lease_holds_the_order_until_the_deliverys_deadline_and_applying_ends_it() {
        let held = given(&[]).leased(&delivery(1_000));
        assert!(held.is_leased(11_000) && !held.is_leased(11_001));
        let (applied, released) = (held.applying(Stage::Placed, &delivery(2_000)), held.released(&delivery(2_000)));
        assert!(!applied.is_leased(2_000) && applied.applied.contains(Stage::Placed));
        assert!(!released.is_leased(2_000) && released.applied.is_empty());
        assert_eq!((held.revision, released.revision), (1, 2));
    }

    #[test]
    fn stage_names_round_trip_and_the_key_names_consumer_and_order() {
        for stage in Stage::ALL {
            assert_eq!(Stage::from_name(stage.name()), Some(stage));
        }
        assert_eq!(Stage::from_name("exploded"), None);
        let id = OrderId::new();
        assert_eq!(record_key("loyalty", id), format!("loyalty#ORDER#{id}"));
    }
}
