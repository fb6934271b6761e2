//! The projector: the orders table's stream in, one view per order out.
//!
//! Per event, against the stored view's version `v`:
//! - version <= v: already applied (a duplicate, a redelivery, a replay): skipped;
//! - version == v + 1: applied with `Order::apply` and written on condition that the view is
//!   still at `v` (`attribute_not_exists(orderId)` when there is none);
//! - version > v + 1: events are missing (a record given up on, an arrival out of order): the
//!   order's history is read from the event store and every event from `v + 1` up to this one
//!   is applied, under the same condition.
//!
//! A failed condition means someone else moved the view meanwhile: read it again and decide
//! again. So duplicates, redelivery and any arrival order converge on the fold of the history.
//!
//! Outcomes, logged once per record with its order ID, version and sequence number: `applied`,
//! `caught-up`, `skipped-old`, `ignored` (not an order event) and `failed` (with its
//! `error_kind`).
//!
//! Metrics, one EMF line per batch (service `order-projector`), the names every consumer's
//! batch has ([`shared::consumer::BatchMetrics`]): `EventsProcessed` (applied and caught up),
//! `EventsDuplicate` (skipped as old), `EventsPoison` (a record that is no readable event item),
//! `EventsFailed` by `errorKind`, `EventAgeMilliseconds` (now − the event's own time, per order
//! event), and the projector's own `ViewsCaughtUp` (a catch-up from the event store: an event
//! arrived before the ones it follows, or one was given up on). Records left after the first
//! failure are not counted: they come again.

use crate::dynamo::DynamoViews;
use crate::ports::{Saved, ViewStore};
use crate::record::{self, Change};
use crate::view::View;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use chrono::{DateTime, Utc};
use shared::adapters::dynamodb::{DynamoShop, ShopTables};
use shared::config::{Env, MissingEnv};
use shared::consumer::BatchMetrics;
use shared::domain::{Order, OrderId, Recorded, TransitionError};
use shared::ports::{ErrorKind, Kind, OrderStore, StoreError};

pub const SERVICE: &str = "order-projector";

/// How often one record re-reads a view that keeps moving under it before it gives up (the
/// record fails and Lambda retries it). One shard's records reach one invocation at a time, so
/// a race needs two writers of one order (a resharding, a replay): one retry settles it.
pub const MAX_ATTEMPTS: u32 = 5;

pub struct Projector<V = DynamoViews, E = DynamoShop> {
    pub views: V,
    /// Read only for catch-up: an order's history.
    pub events: E,
}

impl Projector {
    /// ORDER_VIEWS_TABLE, and ORDERS_TABLE for the catch-up reads. The order store's other
    /// tables are never touched here, so they are not required.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        let tables = ShopTables {
            orders: env.get("ORDERS_TABLE")?,
            products: env.get_or("PRODUCTS_TABLE", ""),
            outbox: env.get_or("OUTBOX_TABLE", ""),
        };
        Ok(Projector {
            views: DynamoViews::from_env(env, aws)?,
            events: DynamoShop::new(shared::config::dynamodb(aws), tables),
        })
    }
}

/// What projecting one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// Events `from..=to` were applied from the history, this record's the last.
    CaughtUp {
        from: u32,
        to: u32,
    },
    SkippedOld,
    Ignored(&'static str),
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::CaughtUp { .. } => "caught-up",
            Outcome::SkippedOld => "skipped-old",
            Outcome::Ignored(_) => "ignored",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProjectError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The event cannot follow the view's state: the view or the event store is corrupt.
    #[error("version {version} cannot be applied: {error}")]
    Fold { version: u32, error: TransitionError },
    /// A committed event implies every earlier version: their absence is a corrupt store.
    #[error("the event store lacks versions {from}..={to} of the order")]
    HistoryIncomplete { from: u32, to: u32 },
    #[error("the view kept moving during {MAX_ATTEMPTS} attempts")]
    Contended,
}

impl Kind for ProjectError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProjectError::Store(e) => e.kind(),
            ProjectError::Fold { .. } | ProjectError::HistoryIncomplete { .. } => ErrorKind::Permanent,
            ProjectError::Contended => ErrorKind::Conflict,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decision {
    Old,
    Next,
    Gap,
}

fn decide(stored: u32, incoming: u32) -> Decision {
    match incoming {
        v if v <= stored => Decision::Old,
        v if v == stored + 1 => Decision::Next,
        _ => Decision::Gap,
    }
}

/// `events` applied to `state` (none yet: the first must open the order), by the domain's fold.
fn fold(id: OrderId, mut state: Option<Order>, events: &[Recorded]) -> Result<Option<Order>, ProjectError> {
    for r in events {
        let next = match state {
            None => Order::open(id, &r.event),
            Some(order) => order.apply(&r.event),
        };
        state = Some(next.map_err(|error| ProjectError::Fold { version: r.version, error })?);
    }
    Ok(state)
}

impl<V: ViewStore, E: OrderStore> Projector<V, E> {
    /// Brings the order's view to `recorded` if it is not there yet.
    pub async fn project(&self, id: OrderId, recorded: &Recorded) -> Result<Outcome, ProjectError> {
        for attempt in 1..=MAX_ATTEMPTS {
            let stored = self.views.get(id).await?;
            let at = stored.as_ref().map_or(0, |v| v.version);
            let (events, outcome) = match decide(at, recorded.version) {
                Decision::Old => return Ok(Outcome::SkippedOld),
                Decision::Next => (vec![recorded.clone()], Outcome::Applied),
                Decision::Gap => (
                    self.missing(id, at, recorded.version).await?,
                    Outcome::CaughtUp { from: at + 1, to: recorded.version },
                ),
            };
            let next = fold(id, stored.map(|v| v.state), &events)?
                .ok_or(ProjectError::HistoryIncomplete { from: at + 1, to: recorded.version })?;
            let next = View::of(next);
            match self.views.put_if(&next, at).await? {
                Saved::Written => return Ok(outcome),
                Saved::Moved => {
                    tracing::info!(order_id = %id, version = recorded.version, attempt, "view moved; deciding again")
                }
            }
        }
        Err(ProjectError::Contended)
    }

    /// Versions `after + 1 ..= to` from the event store (read strongly consistent: every one
    /// of them was committed before the record of `to` was written to the stream).
    async fn missing(&self, id: OrderId, after: u32, to: u32) -> Result<Vec<Recorded>, ProjectError> {
        let events: Vec<Recorded> =
            self.events.history(id).await?.into_iter().filter(|r| r.version > after && r.version <= to).collect();
        let complete = events.iter().map(|r| r.version).eq(after + 1..=to);
        if complete {
            Ok(events)
        } else {
            Err(ProjectError::HistoryIncomplete { from: after + 1, to })
        }
    }
}

/// What projecting one record came to.
enum Projected {
    Done {
        outcome: Outcome,
        subject: Option<(OrderId, u32)>,
    },
    /// The record is no event item the projector can read.
    Unreadable(StoreError),
    Failed(ProjectError),
}

impl<V: ViewStore, E: OrderStore> Projector<V, E> {
    async fn record(&self, record: &EventRecord, counted: &mut Tally) -> Projected {
        let change = match record::change(record) {
            Ok(change) => change,
            Err(unreadable) => return Projected::Unreadable(unreadable),
        };
        match change {
            Change::Ignored(why) => Projected::Done { outcome: Outcome::Ignored(why), subject: None },
            Change::Event { order_id, recorded } => {
                counted.batch.age(counted.now_ms, recorded.event.at());
                match self.project(order_id, &recorded).await {
                    Ok(outcome) => Projected::Done { outcome, subject: Some((order_id, recorded.version)) },
                    Err(error) => Projected::Failed(error),
                }
            }
        }
    }
}

/// The batch's counts, in the consumers' names, and the catch-ups.
struct Tally {
    batch: BatchMetrics,
    caught_up: u32,
    now_ms: i64,
}

impl Tally {
    fn count(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Applied => self.batch.processed(),
            Outcome::CaughtUp { .. } => {
                self.batch.processed();
                self.caught_up += 1;
            }
            Outcome::SkippedOld => self.batch.duplicate(),
            Outcome::Ignored(_) => {}
        }
    }

    /// Every count every batch, zeros included, so that an alarm on failures sees data.
    fn emit(&self) {
        let mut metrics = self.batch.metrics(SERVICE);
        metrics.count("ViewsCaughtUp", f64::from(self.caught_up));
        metrics.emit();
    }
}

/// Projects a batch of the orders stream and answers which records Lambda must deliver again.
///
/// Records go one at a time, in the batch's order: they come from one shard, where an order's
/// events are in version order, and applying them in that order is what keeps catch-ups rare.
/// At the first failure the rest is left alone: the answer names that record's sequence number,
/// and Lambda delivers it and everything after it again (checkpointing the records before it),
/// so the rest would be done twice. A failure that retrying cannot cure (a corrupt record) is
/// reported too: the event source retries it, then describes the batch on its on-failure
/// destination; the event itself stays in the event store, and the next event of that order
/// catches up past it.
pub async fn handle<V: ViewStore, E: OrderStore>(projector: &Projector<V, E>, event: &Event) -> DynamoDbEventResponse {
    handle_at(projector, event, Utc::now()).await
}

/// [`handle`] at `now`: the time each event's age is measured at.
pub async fn handle_at<V: ViewStore, E: OrderStore>(
    projector: &Projector<V, E>,
    event: &Event,
    now: DateTime<Utc>,
) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    let mut tally = Tally { batch: BatchMetrics::default(), caught_up: 0, now_ms: now.timestamp_millis() };
    for record in &event.records {
        let sequence_number = record.change.sequence_number.as_deref().unwrap_or_default();
        let error = match projector.record(record, &mut tally).await {
            Projected::Done { outcome, subject } => {
                tally.count(outcome);
                log_outcome(outcome, subject, sequence_number);
                continue;
            }
            Projected::Unreadable(unreadable) => {
                tally.batch.poison();
                ProjectError::from(unreadable)
            }
            Projected::Failed(error) => {
                tally.batch.failed(error.kind());
                error
            }
        };
        tracing::warn!(
            outcome = "failed",
            error_kind = error.kind().name(),
            %error,
            order_id = record_key(record, "orderId"),
            version = record_key(record, "version"),
            sequence_number,
            "order event not projected"
        );
        // An empty identifier makes Lambda retry the whole batch: the safe answer for
        // a record without a sequence number, which Lambda never sends.
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(sequence_number.to_owned());
        response.batch_item_failures.push(failure);
        break;
    }
    tally.emit();
    response
}

fn log_outcome(outcome: Outcome, subject: Option<(OrderId, u32)>, sequence_number: &str) {
    let (order_id, version) = subject.map_or((None, None), |(id, v)| (Some(id.to_string()), Some(v)));
    match outcome {
        Outcome::CaughtUp { from, to } => tracing::info!(
            outcome = outcome.name(),
            order_id,
            version,
            from,
            to,
            sequence_number,
            "order view caught up from the event store"
        ),
        Outcome::Ignored(why) => tracing::debug!(outcome = outcome.name(), why, sequence_number, "not an order event"),
        _ => tracing::info!(outcome = outcome.name(), order_id, version, sequence_number, "order event projected"),
    }
}

/// A key attribute of the record, for the log of a record that could not be read.
fn record_key(record: &EventRecord, name: &str) -> Option<String> {
    let keys: shared::adapters::dynamodb::Item = record.change.keys.clone().into();
    keys.get(name).and_then(|v| v.as_s().or_else(|_| v.as_n()).ok()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_old_up_to_the_stored_version_next_right_after_and_a_gap_beyond() {
        assert_eq!(decide(3, 2), Decision::Old);
        assert_eq!(decide(3, 3), Decision::Old);
        assert_eq!(decide(3, 4), Decision::Next);
        assert_eq!(decide(3, 6), Decision::Gap);
        assert_eq!(decide(0, 1), Decision::Next);
        assert_eq!(decide(0, 2), Decision::Gap);
    }

    #[test]
    fn a_corrupt_store_is_permanent_and_a_contended_view_is_a_conflict() {
        assert_eq!(ProjectError::HistoryIncomplete { from: 1, to: 2 }.kind(), ErrorKind::Permanent);
        assert_eq!(ProjectError::Contended.kind(), ErrorKind::Conflict);
        assert_eq!(ProjectError::Store(StoreError::Unavailable("x".into())).kind(), ErrorKind::Transient);
    }
}
