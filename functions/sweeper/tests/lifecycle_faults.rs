//! The customer's cancel under every fault, proven by exploring them (as explorer/ does for
//! the checkout): record the calls of one clean cancel, then re-run it once per fault at each
//! call (fail before, fail after, crash after, a refused publish, a transaction conflict),
//! recover as production does (the client retries with its key, or with a new one, or never
//! comes back and the sweeper finds the order), and check the world:
//!
//! - a customer-cancelled order is refunded exactly once (one refund at the gateway, one
//!   `Refunded`, equal to each other and to the order's total), and nothing else is refunded;
//! - every appended event's integration event is in the outbox or on the bus, under one event
//!   ID and the event's own version, and nothing is announced that was not appended;
//! - every 200 the client got is the same answer: cancelled, refunded.
//!
//! Then the races: a late retry against the sweeper, a cancel against a shipment, and two
//! cancels, each interleaved at every pair of their calls.
//!
//! This lives with the sweeper because it needs it, and the sweeper depends on the checkout.

use async_trait::async_trait;
use checkout::commands::Command;
use checkout::service::{PostOrder, Reply};
use checkout::{Checkout, Fulfilment, Ports};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::sandbox_payments::{LedgerEntry, SandboxGateway};
use shared::auth::{Access, Caller};
use shared::deadline::Deadline;
use shared::domain::pricing::Product;
use shared::domain::{Currency, CustomerId, EventId, Money, OrderEvent, OrderId, OrderStatus, Refund};
use shared::faults::{interleave, Fault, Faults, Faulty};
use shared::ports::*;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// The customer who places and cancels the order.
fn customer() -> Caller {
    Caller { subject: CustomerId("cust-1".into()), staff: false }
}

const T0: i64 = 1_800_000_000_000;
/// Longer than a cancel's lease: a retry this much later takes its key over.
const LEASE_MS: i64 = 10_000;
const GRACE_SECONDS: i64 = 300;

/// The gateway, recording every refund that reached it, by payment key.
#[derive(Default)]
struct Gateway {
    inner: SandboxGateway,
    refunds_asked: Mutex<Vec<String>>,
}

#[async_trait]
impl PaymentGateway for Gateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        self.inner.charge(request).await
    }

    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError> {
        self.inner.void(idempotency_key).await
    }

    async fn refund(&self, payment_key: &str, amount: Money) -> Result<Refund, PaymentError> {
        self.refunds_asked.lock().unwrap().push(payment_key.to_owned());
        self.inner.refund(payment_key, amount).await
    }
}

/// What an attempt came to.
#[derive(Debug, Clone)]
enum Ran {
    Answered(Reply),
    Crashed,
}

impl Ran {
    fn reply(&self) -> Option<&Reply> {
        match self {
            Ran::Answered(r) => Some(r),
            Ran::Crashed => None,
        }
    }
}

/// An answer the client stops at: neither a 5xx nor "in progress" nor "not ready yet".
fn is_final(reply: &Reply) -> bool {
    reply.status < 500 && !reply.body.contains("request-in-progress") && !reply.body.contains("order-not-ready")
}

struct World {
    shop: Arc<MemoryShop>,
    bus: Arc<MemoryBus>,
    gateway: Arc<Gateway>,
    keys: Arc<MemoryIdempotency>,
    /// The order the customer cancels, and one nobody touches.
    order: OrderId,
    bystander: OrderId,
}

impl World {
    /// A shop with two placed orders.
    async fn new() -> World {
        let product = Product { sku: "MUG".into(), name: "A mug".into(), unit_price: Money::new(1250, Currency::EUR) };
        let mut w = World {
            shop: Arc::new(MemoryShop::default().with_product(product, 10)),
            bus: Arc::default(),
            gateway: Arc::default(),
            keys: Arc::default(),
            order: OrderId::new(),
            bystander: OrderId::new(),
        };
        w.order = w.place("place-1").await;
        w.bystander = w.place("place-2").await;
        w
    }

    fn ports(&self, faults: &Arc<Faults>) -> Ports {
        let shop = Faulty::new(faults, self.shop.clone());
        Ports {
            catalogue: shop.clone(),
            orders: shop.clone(),
            outbox: shop,
            publisher: Faulty::new(faults, self.bus.clone()),
            payments: Faulty::new(faults, self.gateway.clone()),
        }
    }

    fn checkout(&self, faults: &Arc<Faults>) -> Checkout {
        Checkout::new(self.ports(faults), Faulty::new(faults, self.keys.clone()))
    }

    async fn place(&self, key: &str) -> OrderId {
        let body = json!({"items": [{"sku": "MUG", "quantity": 1}], "paymentToken": "tok_visa", "currency": "EUR"});
        let body = body.to_string();
        let request = PostOrder {
            caller: &customer(),
            content_type: Some("application/json"),
            idempotency_key: Some(key),
            body: body.as_bytes(),
            correlation_id: "corr-checkout",
            now_ms: T0,
            deadline_ms: T0 + LEASE_MS,
        };
        let reply = self.checkout(&Faults::new()).post_order(request).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        serde_json::from_str::<Value>(&reply.body).unwrap()["orderId"].as_str().unwrap().parse().unwrap()
    }

    /// One `POST /orders/{id}/cancel` of the order, run until it answers or crashes.
    async fn cancel(&self, faults: &Arc<Faults>, key: &str, now_ms: i64) -> Ran {
        let id = self.order.to_string();
        let customer = customer();
        let request = Command {
            caller: &customer,
            order_id: &id,
            idempotency_key: Some(key),
            content_type: None,
            body: b"",
            correlation_id: "corr-cancel",
            now_ms,
            deadline_ms: now_ms + LEASE_MS,
        };
        let checkout = self.checkout(faults);
        tokio::select! {
            biased;
            reply = checkout.cancel(request) => Ran::Answered(reply),
            _ = faults.crashed() => Ran::Crashed,
        }
    }

    /// One `POST /orders/{id}/shipments` of the order, run until it answers or crashes.
    async fn ship(&self, faults: &Arc<Faults>) -> Ran {
        let (id, body) = (self.order.to_string(), br#"{"carrier":"UPS","trackingId":"1Z999"}"#);
        let ports = self.ports(faults);
        let fulfilment = Fulfilment {
            orders: ports.orders,
            outbox: ports.outbox,
            publisher: ports.publisher,
            idempotency: Faulty::new(faults, self.keys.clone()),
            access: Access::default(),
        };
        let staff = Caller { subject: CustomerId("staff-sam".into()), staff: true };
        let request = Command {
            caller: &staff,
            order_id: &id,
            idempotency_key: Some("ship-1"),
            content_type: Some("application/json"),
            body,
            correlation_id: "corr-warehouse",
            now_ms: T0,
            deadline_ms: T0 + LEASE_MS,
        };
        tokio::select! {
            biased;
            reply = fulfilment.ship(request) => Ran::Answered(reply),
            _ = faults.crashed() => Ran::Crashed,
        }
    }

    /// One pass of the sweeper after the grace period, until it ends or crashes.
    async fn sweep(&self, faults: &Arc<Faults>) -> Option<sweeper::SweepReport> {
        let sweeper = sweeper::Sweeper::new(self.ports(faults), chrono::Duration::seconds(GRACE_SECONDS));
        let later = chrono::Utc::now() + chrono::Duration::seconds(GRACE_SECONDS + 1);
        let deadline = Deadline::at(SystemTime::now() + Duration::from_secs(60));
        tokio::select! {
            biased;
            report = sweeper.run_once(later, &deadline) => report.ok(),
            _ = faults.crashed() => None,
        }
    }

    /// The client retries with `key`, each time after the last lease lapsed, until final.
    async fn retry_until_final(&self, key: &str, from_ms: i64, answers: &mut Vec<Ran>) {
        for n in 0..6 {
            let ran = self.cancel(&Faults::new(), key, from_ms + (n + 1) * 2 * LEASE_MS).await;
            let done = ran.reply().is_some_and(is_final);
            answers.push(ran);
            if done {
                return;
            }
        }
    }

    /// The invariants, each broken one described.
    async fn check(&self, answers: &[Ran]) -> Vec<String> {
        let mut broken = Vec::new();
        let mut expect = |holds: bool, what: String| {
            if !holds {
                broken.push(what)
            }
        };
        for id in [self.order, self.bystander] {
            let history = self.shop.history(id).await.unwrap();
            let order = self.shop.load(id).await.unwrap().unwrap();
            let refunds: Vec<&Refund> = history
                .iter()
                .filter_map(|r| match &r.event {
                    OrderEvent::Refunded { refund, .. } => Some(refund),
                    _ => None,
                })
                .collect();
            let at_gateway = self.gateway.inner.ledger().entry(&format!("{}#refund", order.payment_key()));
            let customer_cancelled = order.cancel_reason.as_ref().is_some_and(|r| r.after_placement());
            expect(!order.refund_pending(), format!("{id} is still waiting for its refund"));
            expect(
                refunds.len() == usize::from(customer_cancelled),
                format!("{id}: {} Refunded events", refunds.len()),
            );
            match (refunds.first(), &at_gateway) {
                (Some(r), Some(LedgerEntry::Refunded { refund_id, amount })) => expect(
                    r.refund_id == *refund_id && r.amount == *amount && *amount == order.total,
                    format!("{id}: recorded {r:?}, gateway {at_gateway:?}, total {:?}", order.total),
                ),
                (None, None) => {}
                (recorded, gateway) => expect(false, format!("{id}: recorded {recorded:?} but gateway {gateway:?}")),
            }
            // Announced once each: every announcing event has one integration event ID, in
            // the outbox or published, carrying its version; nothing else names the order.
            let mut announced: Vec<(String, u64, EventId)> = Vec::new();
            let pending = self.shop.pending(chrono::Utc::now() + chrono::Duration::days(1), 10_000).await.unwrap();
            for event in self.bus.published().into_iter().chain(pending.into_iter().map(|p| p.event)) {
                let detail: Value = serde_json::from_str(&event.detail).unwrap();
                if detail["orderId"] == id.to_string() {
                    announced.push((event.detail_type, detail["orderVersion"].as_u64().unwrap(), event.event_id));
                }
            }
            let distinct: BTreeSet<(String, u64, EventId)> = announced.into_iter().collect();
            let expected: BTreeSet<(String, u64)> = history
                .iter()
                .filter_map(|r| {
                    let name = match &r.event {
                        OrderEvent::PaymentCaptured { .. } => "order.placed",
                        OrderEvent::Cancelled { reason, .. } if reason.after_placement() => "order.cancelled",
                        OrderEvent::Refunded { .. } => "payment.refunded",
                        OrderEvent::Shipped { .. } => "order.shipped",
                        _ => return None,
                    };
                    Some((name.to_owned(), u64::from(r.version)))
                })
                .collect();
            let got: Vec<(String, u64)> = distinct.iter().map(|(t, v, _)| (t.clone(), *v)).collect();
            expect(
                got.len() == expected.len() && got.iter().all(|e| expected.contains(e)),
                format!("{id}: announced {got:?}, appended {expected:?}"),
            );
        }
        let bystander_key = format!("order-{}", self.bystander);
        let asked = self.gateway.refunds_asked.lock().unwrap().clone();
        expect(!asked.contains(&bystander_key), "the untouched order was asked a refund".into());
        let oks: BTreeSet<&str> =
            answers.iter().filter_map(Ran::reply).filter(|r| r.status == 200).map(|r| r.body.as_str()).collect();
        expect(oks.len() <= 1, format!("{} different 200 answers", oks.len()));
        for ok in oks {
            let view: Value = serde_json::from_str(ok).unwrap();
            expect(
                view["status"] == "CANCELLED" && view["refund"]["amount"] == 1250,
                format!("a 200 that is not cancelled-and-refunded: {ok}"),
            );
        }
        broken
    }
}

/// How the world recovers from a cancel that did not answer cleanly.
#[derive(Debug, Clone, Copy)]
enum Recovery {
    /// The client retries with the same key.
    SameKey,
    /// The client retries at once with a new key (a double click, another device).
    NewKey,
    /// The client never comes back until much later: the sweeper comes by first.
    Sweeper,
}

async fn calls_of_a_clean_cancel() -> Vec<&'static str> {
    let w = World::new().await;
    let faults = Faults::new();
    let ran = w.cancel(&faults, "cancel-1", T0).await;
    assert_eq!(ran.reply().map(|r| r.status), Some(200));
    faults.calls()
}

#[tokio::test]
async fn given_any_fault_at_any_step_of_a_cancel_when_the_world_recovers_then_it_is_refunded_exactly_once() {
    let calls = calls_of_a_clean_cancel().await;
    assert!(calls.iter().filter(|c| **c == "orders.commit").count() == 2, "Cancelled, then Refunded: {calls:?}");
    let (mut schedules, mut violations) = (0, Vec::new());
    for (i, call) in calls.iter().enumerate() {
        for fault in Fault::at(call) {
            for recovery in [Recovery::SameKey, Recovery::NewKey, Recovery::Sweeper] {
                let w = World::new().await;
                let mut answers = vec![w.cancel(&Faults::new().plan(i, fault), "cancel-1", T0).await];
                if !answers[0].reply().is_some_and(is_final) {
                    match recovery {
                        Recovery::SameKey => w.retry_until_final("cancel-1", T0, &mut answers).await,
                        Recovery::NewKey => w.retry_until_final("cancel-2", T0 - 2 * LEASE_MS, &mut answers).await,
                        Recovery::Sweeper => {
                            w.sweep(&Faults::new()).await;
                            // The sweeper alone finishes what the cancel started.
                            let order = w.shop.load(w.order).await.unwrap().unwrap();
                            if order.refund_pending() {
                                violations
                                    .push(format!("{fault:?} at call {i} ({call}): the sweeper left it unrefunded"));
                            }
                            w.retry_until_final("cancel-1", T0 + 3_600_000, &mut answers).await;
                        }
                    }
                }
                let last = answers.iter().rev().find_map(Ran::reply);
                let mut broken = w.check(&answers).await;
                if last.is_none_or(|r| r.status != 200) {
                    broken.push(format!("the client's last answer is {last:?}"));
                }
                schedules += 1;
                violations
                    .extend(broken.into_iter().map(|b| format!("{fault:?} at call {i} ({call}), {recovery:?}: {b}")));
            }
        }
    }
    assert!(schedules >= 90, "{schedules} schedules");
    assert!(
        violations.is_empty(),
        "{} violations in {schedules} schedules:\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[tokio::test]
async fn given_a_cancel_that_crashed_before_its_refund_when_the_sweeper_runs_then_it_refunds_and_says_so() {
    let calls = calls_of_a_clean_cancel().await;
    let cancelled = calls.iter().position(|c| *c == "orders.commit").unwrap();
    let w = World::new().await;
    let ran = w.cancel(&Faults::new().plan(cancelled, Fault::CrashAfter), "cancel-1", T0).await;
    assert!(matches!(ran, Ran::Crashed));
    assert!(w.shop.load(w.order).await.unwrap().unwrap().refund_pending());
    let report = w.sweep(&Faults::new()).await.unwrap();
    assert_eq!((report.refunded, report.placed, report.expired, report.failed), (1, 0, 0, 0), "{report:?}");
    let history = w.shop.history(w.order).await.unwrap();
    let refunded = history.last().unwrap();
    assert!(matches!(refunded.event, OrderEvent::Refunded { .. }));
    assert_eq!(refunded.correlation_id, "corr-cancel", "under the cancel request that started the refund");
    assert_eq!(w.sweep(&Faults::new()).await.unwrap(), sweeper::SweepReport::default(), "and it is no longer open");
    assert!(w.check(&[ran]).await.is_empty());
    // What the sweeper published is an instance of its contract, and one it declares.
    let published = w.bus.published();
    let refund = published.iter().find(|e| e.detail_type == "payment.refunded").expect("the refund is announced");
    contracts::check_published(sweeper::Sweeper::PUBLISHES, refund).unwrap();
}

#[tokio::test]
async fn given_a_refund_the_gateway_keeps_failing_when_the_sweeper_runs_then_it_counts_a_failure_and_tries_next_run() {
    let calls = calls_of_a_clean_cancel().await;
    let cancelled = calls.iter().position(|c| *c == "orders.commit").unwrap();
    let w = World::new().await;
    w.cancel(&Faults::new().plan(cancelled, Fault::CrashAfter), "cancel-1", T0).await;
    let sweep_calls = Faults::new();
    w.sweep(&sweep_calls).await;
    let refund_call = sweep_calls.calls().iter().position(|c| *c == "payments.refund").unwrap();
    let w = World::new().await;
    w.cancel(&Faults::new().plan(cancelled, Fault::CrashAfter), "cancel-1", T0).await;
    let report = w.sweep(&Faults::new().plan(refund_call, Fault::FailBefore(ErrorKind::Transient))).await.unwrap();
    assert_eq!((report.refunded, report.failed), (0, 1));
    assert_eq!(w.sweep(&Faults::new()).await.unwrap().refunded, 1);
    assert!(w.check(&[]).await.is_empty());
}

#[tokio::test]
async fn given_a_crashed_cancel_when_a_late_retry_and_the_sweeper_race_at_every_pair_of_points_then_one_refund() {
    let calls = calls_of_a_clean_cancel().await;
    let mut violations = Vec::new();
    for i in 0..calls.len() {
        for j in 0..=calls.len() {
            for sweeper_held in [true, false] {
                let w = World::new().await;
                let mut answers = vec![w.cancel(&Faults::new().plan(i, Fault::CrashAfter), "cancel-1", T0).await];
                let (fs, fc) = (Faults::new(), Faults::new());
                let late = T0 + 3_600_000;
                let retried = if sweeper_held {
                    fs.pause_before(j);
                    interleave(w.sweep(&fs), &fs, w.cancel(&fc, "cancel-1", late), &fc).await.1
                } else {
                    fc.pause_before(j);
                    interleave(w.cancel(&fc, "cancel-1", late), &fc, w.sweep(&fs), &fs).await.0
                };
                answers.push(retried);
                if !answers.last().and_then(Ran::reply).is_some_and(is_final) {
                    w.retry_until_final("cancel-1", late, &mut answers).await;
                }
                let held = if sweeper_held { "sweeper" } else { "retry" };
                let broken = w.check(&answers).await;
                violations.extend(broken.into_iter().map(|b| format!("crash at {i}, {held} held at {j}: {b}")));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[tokio::test]
async fn given_a_cancel_and_a_shipment_interleaved_at_every_pair_of_points_then_exactly_one_wins() {
    let cancel_calls = calls_of_a_clean_cancel().await.len();
    let (mut cancel_won, mut ship_won, mut violations) = (0, 0, Vec::new());
    for i in 0..=cancel_calls {
        for j in 0..=6 {
            let w = World::new().await;
            let (fc, fs) = (Faults::new().pause_before(i), Faults::new().pause_before(j));
            let (cancel, ship) = interleave(w.cancel(&fc, "cancel-1", T0), &fc, w.ship(&fs), &fs).await;
            let statuses = (cancel.reply().map(|r| r.status), ship.reply().map(|r| r.status));
            let order = w.shop.load(w.order).await.unwrap().unwrap();
            match statuses {
                (Some(200), Some(409)) if order.status == OrderStatus::Cancelled => cancel_won += 1,
                (Some(409), Some(200)) if order.status == OrderStatus::Shipped => ship_won += 1,
                other => violations.push(format!("({i}, {j}): {other:?} with the order {:?}", order.status)),
            }
            let refunded = w.gateway.inner.ledger().entry(&format!("order-{}#refund", w.order)).is_some();
            if refunded != (order.status == OrderStatus::Cancelled) {
                violations.push(format!("({i}, {j}): {:?} order, refunded: {refunded}", order.status));
            }
            violations.extend(w.check(&[cancel]).await.into_iter().map(|b| format!("({i}, {j}): {b}")));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert!(cancel_won > 0 && ship_won > 0, "either may win: cancel {cancel_won}, ship {ship_won}");
}

#[tokio::test]
async fn given_two_cancels_interleaved_at_every_pair_of_points_then_one_refund_and_the_same_answer() {
    let calls = calls_of_a_clean_cancel().await.len();
    let mut violations = Vec::new();
    for i in 0..=calls {
        for j in 0..=calls {
            let w = World::new().await;
            let (fa, fb) = (Faults::new().pause_before(i), Faults::new().pause_before(j));
            let (a, b) = interleave(w.cancel(&fa, "cancel-1", T0), &fa, w.cancel(&fb, "cancel-2", T0), &fb).await;
            let mut answers = vec![a, b];
            if !answers.iter().all(|r| r.reply().is_some_and(is_final)) {
                w.retry_until_final("cancel-2", T0, &mut answers).await;
            }
            violations.extend(w.check(&answers).await.into_iter().map(|b| format!("({i}, {j}): {b}")));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}
