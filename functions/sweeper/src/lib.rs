//! The recovery sweeper: settles checkouts that stopped half-way and that no client retried,
//! and finishes refunds of customer-cancelled orders that stopped between "cancelled" and
//! "refunded".
//!
//! A crash, a timeout or a store fault between "charged" and "capture recorded" leaves an order
//! in `PENDING_PAYMENT` with its stock reserved. A retry with the same Idempotency-Key resumes
//! it; when none comes, this scheduled function does. It reads the open orders older than a
//! grace period from the order store's sparse index (never a table scan) and hands each one to
//! the checkout saga's own recovery step, [`checkout::saga::Saga::settle`], which asks the
//! gateway under the order's payment key: charged → the capture and `order.placed` are recorded
//! (through the outbox) and published; not charged → the key is closed at the gateway, the
//! stock released and the order cancelled as expired. The saga is safe against a late client
//! retry and against a second sweeper (one payment key per order, atomic void-or-report at the
//! gateway, one event per order version), so the sweeper itself holds no lock.
//!
//! A customer's cancellation is recorded before its refund (so that it can lose cleanly to a
//! concurrent shipment), and its `Cancelled` lists the order as open too. A crash between the
//! two leaves the order refund-pending; if no retry of the cancel comes, this function hands
//! it to [`checkout::refund::finish`], which refunds under the order's payment key (one refund
//! per charge at the gateway) and records `Refunded` and `payment.refunded`, under the
//! correlation ID of the cancel request that started it.
//!
//! Metrics (CloudWatch EMF, namespace `Shop`, dimension `service` = `sweeper`), every run, on
//! one line:
//! - `OrdersSettledPlaced`, `OrdersSettledExpired`: orders this run placed or cancelled;
//! - `OrdersSettledOther`: open orders found already settled (by a retry or another run) or
//!   ending with another answer;
//! - `OrdersRefunded`: customer-cancelled orders whose refund this run finished;
//! - `OrdersSettleFailed`: orders this run could not settle (retried next run);
//! - `OldestOpenOrderAgeSeconds`: age of the oldest open order found past the grace period, 0
//!   if none; `StuckOrdersAlarm` in template.yaml fires on it.

use checkout::saga::{Outcome, Saga};
use checkout::Ports;
use chrono::{DateTime, Utc};
use serde::Serialize;
use shared::deadline::Deadline;
use shared::domain::{Order, OrderEvent, OrderId, OrderStatus, Recorded};
use shared::events::{published, OrderPlacedV2, PaymentRefundedV1, Published};
use shared::ports::{OpenOrder, StoreError};
use shared::telemetry::{Metrics, Unit};
use std::collections::HashSet;
use std::time::Duration;
use tracing::Instrument;

/// Open orders read per query; the sweeper pages until none is left or the deadline is near.
pub const PAGE: usize = 100;

/// The default grace period. It must exceed the checkout function's timeout (10 s,
/// `Globals.Function.Timeout` in template.yaml), the longest an attempt that opened an order can
/// still be running: an order younger than that may still be charged and placed by its own
/// attempt, and voiding its payment key under it would turn a good order into a decline. Five
/// minutes also leaves the client time to retry by itself, which answers it sooner.
pub const DEFAULT_GRACE_SECONDS: i64 = 300;

/// No order is started with less than this left before the invocation's deadline. Settling one
/// order is a handful of calls (load, void, one commit, publish, clear), each bounded by the
/// SDK's operation timeout (`shared::config`, 5 s), so this covers all but the unluckiest one.
/// An order cut off half-way is not harmed: every step is a transition that happens once, and
/// the next run (or the relay, for a written-but-unpublished event) finishes it.
pub const MARGIN: Duration = Duration::from_secs(20);

/// What one run did. Counts are what this run saw: when two runs overlap (EventBridge can
/// invoke a schedule twice), both may count an order that was settled once.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// Charged at the gateway: the capture was recorded and `order.placed` published.
    pub placed: usize,
    /// Never charged: the payment key was closed, the stock released, the order cancelled.
    pub expired: usize,
    /// Cancelled by the customer and not yet refunded: refunded, `payment.refunded` published.
    pub refunded: usize,
    /// Found open but settled by someone else before this run got to it, or ending with
    /// another final answer.
    pub other: usize,
    /// Could not be settled (a dependency failed); left open for the next run.
    pub failed: usize,
    /// Age of the oldest open order found past the grace period, 0 if none.
    pub oldest_open_age_seconds: i64,
    /// The run stopped for its deadline (or an index read failed): orders may be left.
    pub stopped_early: bool,
}

impl SweepReport {
    /// The run's metrics, every one every run, zeros included: a sweeper that stops running
    /// shows as missing data (which `StuckOrdersAlarm` treats as breaching), not as "all fine".
    pub fn metrics(&self) -> Metrics {
        let mut metrics = Metrics::new("sweeper");
        for (name, count) in [
            ("OrdersSettledPlaced", self.placed),
            ("OrdersSettledExpired", self.expired),
            ("OrdersRefunded", self.refunded),
            ("OrdersSettledOther", self.other),
            ("OrdersSettleFailed", self.failed),
        ] {
            metrics.count(name, count as f64);
        }
        metrics.value("OldestOpenOrderAgeSeconds", Unit::Seconds, self.oldest_open_age_seconds as f64);
        metrics
    }
}

/// The sweeper's dependencies: the checkout's own ports, so that settling an order is the very
/// code a retry runs.
pub struct Sweeper {
    pub ports: Ports,
    /// Orders opened less than this ago are left to their own checkout attempt.
    pub grace: chrono::Duration,
    /// Open orders read per query.
    pub limit: usize,
}

impl Sweeper {
    /// What `SweeperFunction` puts on the bus: through the checkout's own saga, an order it
    /// settles as placed, and the refund of one cancelled after its charge (checked by
    /// tests/contracts.rs).
    pub const PUBLISHES: &[Published] = &[published::<OrderPlacedV2>(), published::<PaymentRefundedV1>()];

    pub fn new(ports: Ports, grace: chrono::Duration) -> Sweeper {
        Sweeper { ports, grace, limit: PAGE }
    }

    /// The sweeper wired to AWS from its environment: the same for Lambda and the local runner.
    pub fn from_env(
        env: &shared::config::Env,
        aws: &aws_config::SdkConfig,
    ) -> Result<Sweeper, shared::config::MissingEnv> {
        // The checkout's own ports: the gateway the checkout charged through, the same ledger.
        let ports = checkout::ports_from_env(env, aws)?;
        let default = DEFAULT_GRACE_SECONDS.to_string();
        let grace = env.get_or("SWEEPER_GRACE_SECONDS", &default).parse().unwrap_or(DEFAULT_GRACE_SECONDS);
        Ok(Sweeper::new(ports, chrono::Duration::seconds(grace)))
    }

    /// One scheduled pass at `now`: settles every order opened before `now - grace` that is
    /// still open, starting none with less than [`MARGIN`] left before `deadline` (the
    /// Lambda deadline). Fails only when the first read of
    /// the index fails (nothing was done); one order failing is counted and the rest go on.
    pub async fn run_once(&self, now: DateTime<Utc>, deadline: &Deadline) -> Result<SweepReport, StoreError> {
        let report = self.sweep(now, deadline).await?;
        tracing::info!(
            placed = report.placed,
            expired = report.expired,
            refunded = report.refunded,
            other = report.other,
            failed = report.failed,
            oldest_open_age_seconds = report.oldest_open_age_seconds,
            stopped_early = report.stopped_early,
            "sweeper pass"
        );
        report.metrics().emit();
        Ok(report)
    }

    async fn sweep(&self, now: DateTime<Utc>, deadline: &Deadline) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        let before = now - self.grace;
        // The index is eventually consistent: an order settled a moment ago can still be
        // listed. Each is looked at once per run; a page with nothing new ends the run.
        let mut seen: HashSet<OrderId> = HashSet::new();
        let mut first_page = true;
        loop {
            if deadline.remaining() < MARGIN {
                report.stopped_early = true;
                break;
            }
            let page = match self.ports.orders.open_before(before, self.limit).await {
                Ok(page) => page,
                Err(e) if first_page => return Err(e),
                Err(e) => {
                    tracing::error!(error = %e, "could not read the open orders; the rest waits for the next run");
                    report.stopped_early = true;
                    break;
                }
            };
            if first_page {
                // Oldest first: the head of the first page is the oldest open order.
                report.oldest_open_age_seconds = page.first().map_or(0, |o| (now - o.opened_at).num_seconds().max(0));
                first_page = false;
            }
            let last_page = page.len() < self.limit;
            let fresh: Vec<OpenOrder> = page.into_iter().filter(|o| seen.insert(o.order_id)).collect();
            if fresh.is_empty() {
                break;
            }
            // One order at a time. Stuck orders are rare (only interrupted checkouts), each takes
            // a few calls of tens of milliseconds, and a run every minute drains any backlog
            // within its deadline; in sequence the sweeper adds one order's load at a time to
            // the tables and the gateway, and stops cleanly between two orders.
            for open in fresh {
                if deadline.remaining() < MARGIN {
                    report.stopped_early = true;
                    tracing::warn!("sweeper stopped before its deadline; the rest waits for the next run");
                    return Ok(report);
                }
                self.settle_one(open, &mut report).await;
            }
            if last_page {
                break;
            }
        }
        Ok(report)
    }

    /// Settles one open order and counts the result; a failure is logged and counted, never
    /// raised, so that one order cannot hold up the others.
    async fn settle_one(&self, open: OpenOrder, report: &mut SweepReport) {
        let order_id = open.order_id;
        let history = match self.ports.orders.history(order_id).await {
            Ok(history) => history,
            Err(e) => {
                tracing::error!(order_id = %order_id, error = %e, "could not load an open order; retried next run");
                report.failed += 1;
                return;
            }
        };
        let order = match Order::replay(order_id, history.iter().map(|r| &r.event)) {
            Ok(Some(order)) => order,
            Ok(None) => {
                tracing::error!(order_id = %order_id, "the open-orders index lists an order with no events");
                report.failed += 1;
                return;
            }
            Err(e) => {
                tracing::error!(order_id = %order_id, error = %e, "an open order's history does not fold");
                report.failed += 1;
                return;
            }
        };
        if order.refund_pending() {
            return self.refund_one(order, &history, report).await;
        }
        let correlation_id = order.correlation_id.clone();
        if order.status != OrderStatus::PendingPayment {
            tracing::info!(
                order_id = %order_id,
                correlation_id,
                status = order.status.as_str(),
                "open order already settled elsewhere (a retry or another sweep)"
            );
            report.other += 1;
            return;
        }
        let age_seconds = (Utc::now() - open.opened_at).num_seconds();
        let span = tracing::info_span!("settle", order_id = %order_id, correlation_id = %correlation_id);
        let saga = Saga::new(&self.ports, &correlation_id);
        match saga.settle(order).instrument(span).await {
            Ok(outcome) => {
                let settled = match &outcome {
                    Outcome::Placed(_) => {
                        report.placed += 1;
                        "placed"
                    }
                    Outcome::Expired => {
                        report.expired += 1;
                        "expired"
                    }
                    _ => {
                        report.other += 1;
                        "other"
                    }
                };
                tracing::info!(order_id = %order_id, correlation_id, settled, age_seconds, "sweeper settled an order");
            }
            Err(e) => {
                tracing::error!(
                    order_id = %order_id,
                    correlation_id,
                    error = %e,
                    "sweeper could not settle an order; it stays open for the next run"
                );
                report.failed += 1;
            }
        }
    }
}

impl Sweeper {
    /// Finishes the refund of a customer-cancelled order, under the correlation ID of the
    /// cancel request that started it, so the audit trail ties the refund to that request.
    async fn refund_one(&self, order: Order, history: &[Recorded], report: &mut SweepReport) {
        let order_id = order.id;
        let cancelled_by = history.iter().rev().find(|r| matches!(r.event, OrderEvent::Cancelled { .. }));
        let correlation_id = cancelled_by.map_or_else(|| order.correlation_id.clone(), |r| r.correlation_id.clone());
        let span = tracing::info_span!("refund", order_id = %order_id, correlation_id = %correlation_id);
        let journal = self.ports.journal(&correlation_id);
        match checkout::refund::finish(&journal, self.ports.payments.as_ref(), order).instrument(span).await {
            Ok(order) => {
                report.refunded += 1;
                let refund_id = order.refund.map(|r| r.refund_id).unwrap_or_default();
                tracing::info!(order_id = %order_id, correlation_id, refund_id, "sweeper finished a refund");
            }
            Err(e) => {
                tracing::error!(
                    order_id = %order_id,
                    correlation_id,
                    error = %e,
                    "sweeper could not refund a cancelled order; it stays open for the next run"
                );
                report.failed += 1;
            }
        }
    }
}

#[cfg(test)]
mod sample_event {
    #[test]
    fn the_schedule_sample_is_a_scheduled_eventbridge_event() {
        let text = include_str!("../../../events/sweeper-scheduled.json");
        let event: aws_lambda_events::event::eventbridge::EventBridgeEvent = serde_json::from_str(text).unwrap();
        assert_eq!((event.source.as_str(), event.detail_type.as_str()), ("aws.events", "Scheduled Event"));
    }
}
