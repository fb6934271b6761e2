//! Fault injection for exploring every fault point of a run (the fault-space explorer in
//! `explorer/`): each port is wrapped in a decorator that counts its calls and, at the planned
//! call, fails before the call takes effect, fails after it took effect (the answer is lost,
//! as with a timeout), or "crashes" after it (the effect happened and the attempt stops
//! there: nothing after it runs, as when a Lambda times out or its sandbox dies).
//!
//! A crash is modelled by never answering and signalling [`Faults::crashed`]: the explorer
//! races the attempt against that signal and drops the attempt's future, which is exactly a
//! function that stopped mid-way. A planned pause holds the attempt before a call until
//! [`Faults::resume`], so that two attempts can be interleaved at any pair of points.

use crate::domain::{EventId, OrderId, Sku};
use crate::events::Outbound;
use crate::ports::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// What to do at one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Fail without calling: nothing happened (throttling, an unreachable endpoint).
    FailBefore(ErrorKind),
    /// Call, then fail: the effect happened but its answer is lost (a timeout).
    FailAfter,
    /// Call, then stop the attempt for good.
    CrashAfter,
    /// `PutEvents` answers 200 but refuses every entry (`FailedEntryCount > 0`).
    Refused,
}

impl Fault {
    pub fn is_conflict(&self) -> bool {
        *self == Fault::FailBefore(ErrorKind::Conflict)
    }

    /// The faults that make sense at a call: conflicts only where a transaction is written.
    pub fn at(call: &str) -> Vec<Fault> {
        let mut faults = vec![Fault::FailBefore(ErrorKind::Transient), Fault::FailAfter, Fault::CrashAfter];
        match call {
            "orders.commit" => faults.push(Fault::FailBefore(ErrorKind::Conflict)),
            "bus.put" => faults.push(Fault::Refused),
            _ => {}
        }
        faults
    }
}

#[derive(Default)]
struct State {
    calls: Vec<&'static str>,
    plan: HashMap<usize, Fault>,
    pause_at: Option<usize>,
    paused: bool,
    crashed: bool,
}

/// The plan and the record of one attempt's calls.
#[derive(Default)]
pub struct Faults {
    state: Mutex<State>,
    crash: Notify,
    reached_pause: Notify,
    resume: Notify,
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        Arc::new(Faults::default())
    }

    /// Injects `fault` at call number `call` (0-based, across every wrapped port).
    pub fn plan(self: &Arc<Self>, call: usize, fault: Fault) -> Arc<Self> {
        self.state.lock().unwrap().plan.insert(call, fault);
        self.clone()
    }

    /// Holds the attempt before call number `call` until [`Faults::resume`].
    pub fn pause_before(self: &Arc<Self>, call: usize) -> Arc<Self> {
        self.state.lock().unwrap().pause_at = Some(call);
        self.clone()
    }

    /// The calls made so far, by port and method ("orders.commit", ...).
    pub fn calls(&self) -> Vec<&'static str> {
        self.state.lock().unwrap().calls.clone()
    }

    /// The fault planned at the next call, if any.
    pub fn next_planned(&self) -> Option<Fault> {
        let s = self.state.lock().unwrap();
        s.plan.get(&s.calls.len()).copied()
    }

    /// The fault planned at call `n`, if any.
    pub fn planned(&self, n: usize) -> Option<Fault> {
        self.state.lock().unwrap().plan.get(&n).copied()
    }

    pub fn has_crashed(&self) -> bool {
        self.state.lock().unwrap().crashed
    }

    pub fn is_paused(&self) -> bool {
        self.state.lock().unwrap().paused
    }

    /// Resolves when the attempt crashed.
    pub async fn crashed(&self) {
        if !self.has_crashed() {
            self.crash.notified().await;
        }
    }

    /// Resolves when the attempt reached its pause.
    pub async fn reached_pause(&self) {
        if !self.is_paused() {
            self.reached_pause.notified().await;
        }
    }

    pub fn resume(&self) {
        self.state.lock().unwrap().pause_at = None;
        self.resume.notify_one();
    }

    /// Runs `op` as call `name` under the plan; `fail` makes the port's own error of a kind.
    pub async fn call<T, E>(
        &self,
        name: &'static str,
        op: impl Future<Output = Result<T, E>>,
        fail: impl Fn(ErrorKind) -> E,
    ) -> Result<T, E> {
        let (fault, pause) = {
            let mut s = self.state.lock().unwrap();
            let n = s.calls.len();
            s.calls.push(name);
            let pause = s.pause_at == Some(n);
            s.paused = pause;
            (s.plan.get(&n).copied(), pause)
        };
        if pause {
            let resumed = self.resume.notified();
            self.reached_pause.notify_one();
            resumed.await;
            self.state.lock().unwrap().paused = false;
        }
        match fault {
            // Refusals are answered by the port itself (see the bus decorator).
            None | Some(Fault::Refused) => op.await,
            Some(Fault::FailBefore(kind)) => Err(fail(kind)),
            Some(Fault::FailAfter) => {
                let _lost = op.await;
                Err(fail(ErrorKind::Transient))
            }
            Some(Fault::CrashAfter) => {
                let _lost = op.await;
                self.state.lock().unwrap().crashed = true;
                self.crash.notify_one();
                std::future::pending().await
            }
        }
    }
}

fn store(kind: ErrorKind) -> StoreError {
    match kind {
        ErrorKind::Conflict => StoreError::Conflict("injected".into()),
        _ => StoreError::Unavailable("injected".into()),
    }
}

/// A port wrapped in fault injection.
pub struct Faulty<P: ?Sized> {
    pub faults: Arc<Faults>,
    pub inner: Arc<P>,
}

impl<P: ?Sized> Faulty<P> {
    pub fn new(faults: &Arc<Faults>, inner: Arc<P>) -> Arc<Self> {
        Arc::new(Faulty { faults: faults.clone(), inner })
    }
}

#[async_trait]
impl<P: Catalogue + ?Sized> Catalogue for Faulty<P> {
    async fn products(&self, skus: &[Sku]) -> Result<HashMap<Sku, crate::domain::pricing::Product>, StoreError> {
        self.faults.call("catalogue.products", self.inner.products(skus), store).await
    }
}

#[async_trait]
impl<P: OrderStore + ?Sized> OrderStore for Faulty<P> {
    async fn history(&self, id: OrderId) -> Result<Vec<crate::domain::Recorded>, StoreError> {
        self.faults.call("orders.history", self.inner.history(id), store).await
    }

    async fn load(&self, id: OrderId) -> Result<Option<crate::domain::Order>, StoreError> {
        self.faults.call("orders.load", self.inner.load(id), store).await
    }

    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        self.faults.call("orders.commit", self.inner.commit(change), |k| CommitError::Store(store(k))).await
    }

    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        self.faults.call("orders.open_before", self.inner.open_before(before, limit), store).await
    }
}

#[async_trait]
impl<P: Outbox + ?Sized> Outbox for Faulty<P> {
    async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        self.faults.call("outbox.pending", self.inner.pending(before, limit), store).await
    }

    async fn clear(&self, ids: &[EventId]) -> Result<(), StoreError> {
        self.faults.call("outbox.clear", self.inner.clear(ids), store).await
    }
}

#[async_trait]
impl<P: EventPublisher + ?Sized> EventPublisher for Faulty<P> {
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError> {
        let unavailable = |_| PublishError::Unavailable("injected".into());
        if self.faults.next_planned() == Some(Fault::Refused) {
            let refused = events.iter().map(|e| Rejected { event_id: e.event_id, code: "InternalFailure".into() });
            return self.faults.call("bus.put", async { Ok(refused.collect()) }, unavailable).await;
        }
        self.faults.call("bus.put", self.inner.put(events), unavailable).await
    }
}

#[async_trait]
impl<P: PaymentGateway + ?Sized> PaymentGateway for Faulty<P> {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        // A gateway that does not answer leaves the outcome unknown to the caller.
        let unknown = |_| PaymentError::Unknown("injected".into());
        self.faults.call("payments.charge", self.inner.charge(request), unknown).await
    }

    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError> {
        let unknown = |_| PaymentError::Unknown("injected".into());
        self.faults.call("payments.void", self.inner.void(idempotency_key), unknown).await
    }

    async fn refund(
        &self,
        payment_key: &str,
        amount: crate::domain::Money,
    ) -> Result<crate::domain::Refund, PaymentError> {
        let unknown = |_| PaymentError::Unknown("injected".into());
        self.faults.call("payments.refund", self.inner.refund(payment_key, amount), unknown).await
    }
}

#[async_trait]
impl<P: IdempotencyStore + ?Sized> IdempotencyStore for Faulty<P> {
    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError> {
        self.faults.call("idempotency.claim", self.inner.claim(request), store).await
    }

    async fn complete(&self, key: &str, attempt: &str, response: &StoredResponse) -> Result<(), StoreError> {
        self.faults.call("idempotency.complete", self.inner.complete(key, attempt, response), store).await
    }

    async fn release(&self, key: &str, attempt: &str) -> Result<(), StoreError> {
        self.faults.call("idempotency.release", self.inner.release(key, attempt), store).await
    }
}

#[async_trait]
impl<P: ProcessedEvents + ?Sized> ProcessedEvents for Faulty<P> {
    async fn claim(&self, marker: &Marker, now_ms: i64, lease_until_ms: i64) -> Result<Lease, StoreError> {
        self.faults.call("processed.claim", self.inner.claim(marker, now_ms, lease_until_ms), store).await
    }

    async fn complete(&self, marker: &Marker) -> Result<(), StoreError> {
        self.faults.call("processed.complete", self.inner.complete(marker), store).await
    }

    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        self.faults.call("processed.release", self.inner.release(marker), store).await
    }
}

/// Runs `a` until it pauses or ends, then `b` until it pauses or ends, then lets `a` finish,
/// then `b`: the two interleaved at their pause points.
pub async fn interleave<A, B>(a: A, a_faults: &Faults, b: B, b_faults: &Faults) -> (A::Output, B::Output)
where
    A: Future,
    B: Future,
{
    let (a_done, b_done) = (Notify::new(), Notify::new());
    let run_a = async {
        let out = a.await;
        a_done.notify_one();
        out
    };
    let run_b = async {
        tokio::select! { _ = a_faults.reached_pause() => {}, _ = a_done.notified() => {} }
        let out = b.await;
        b_done.notify_one();
        out
    };
    let drive = async {
        tokio::select! { _ = b_faults.reached_pause() => {}, _ = b_done.notified() => {} }
        a_faults.resume();
        b_faults.resume();
    };
    let (out_a, out_b, ()) = tokio::join!(run_a, run_b, drive);
    (out_a, out_b)
}

/// An order store whose transactions take `hold` and conflict as DynamoDB's do: a
/// transaction that touches an item (an order, a SKU's stock) while another transaction on
/// that item is in flight is cancelled with `TransactionConflict`, and nothing of it applies.
/// For measuring contention on a popular SKU (the fakes alone never conflict, nor does moto).
pub struct Contended<S: ?Sized> {
    pub inner: Arc<S>,
    pub hold: std::time::Duration,
    in_flight: Mutex<std::collections::HashSet<String>>,
    conflicts: std::sync::atomic::AtomicU64,
}

impl<S: ?Sized> Contended<S> {
    pub fn new(inner: Arc<S>, hold: std::time::Duration) -> Self {
        Contended { inner, hold, in_flight: Mutex::default(), conflicts: Default::default() }
    }

    /// Transactions cancelled so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }
}

fn items_of(change: &OrderChange<'_>) -> Vec<String> {
    let lines = match change.stock {
        StockEffect::None => &[][..],
        StockEffect::Reserve(lines) | StockEffect::Release(lines) => lines,
    };
    let mut items = vec![format!("order#{}", change.order_id)];
    items.extend(lines.iter().map(|l| format!("sku#{}", l.sku)));
    items
}

#[async_trait]
impl<S: OrderStore + ?Sized> OrderStore for Contended<S> {
    async fn history(&self, id: OrderId) -> Result<Vec<crate::domain::Recorded>, StoreError> {
        self.inner.history(id).await
    }

    async fn load(&self, id: OrderId) -> Result<Option<crate::domain::Order>, StoreError> {
        self.inner.load(id).await
    }

    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        let items = items_of(&change);
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            if items.iter().any(|i| in_flight.contains(i)) {
                self.conflicts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Err(CommitError::Store(StoreError::Conflict("TransactionConflict".into())));
            }
            in_flight.extend(items.iter().cloned());
        }
        tokio::time::sleep(self.hold).await;
        let result = self.inner.commit(change).await;
        let mut in_flight = self.in_flight.lock().unwrap();
        items.iter().for_each(|i| {
            in_flight.remove(i);
        });
        result
    }

    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        self.inner.open_before(before, limit).await
    }
}
