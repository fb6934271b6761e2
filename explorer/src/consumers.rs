//! The consumers' fault space: every consumer (loyalty, analytics, inventory, recommendations,
//! e-mail) runs over its in-memory fake wrapped in fault injection. A clean delivery of one
//! `order.placed` records the consumer's port calls; then, once per (call, fault), a fresh
//! world gets the event with that fault on its first receive and recovers as SQS does: the
//! message is redelivered after the visibility timeout until it is processed, at most
//! [`MAX_RECEIVES`] receives, and then it is in the dead-letter queue. A duplicate delivery of
//! the same event follows (EventBridge and SQS are at-least-once; an archive replay gives it a
//! new envelope). Then the consumer's effect must have been applied exactly once per event ID.
//!
//! Faults: fail before the call (nothing happened), fail after it (the effect happened, the
//! answer is lost), crash after it (the Lambda invocation died: the whole batch comes back
//! after the visibility timeout), and, at every transactional write, a transaction conflict
//! (which the harness retries in process, so it must not cost a receive).
//!
//! The one allowed duplicate: e-mail is an external effect, guarded by a lease on the order's
//! record rather than a transaction. When the receipt was sent but its stage was not recorded
//! (the send's answer was lost, the invocation died after sending, or the recording write
//! failed), the next receive sends it again. So e-mail is at-least-once, at most twice under
//! one fault, and exactly once under every other fault.

use crate::checkout_world::Checked;
use crate::schedule::Report;
use async_trait::async_trait;
use shared::consumer::{handle_batch, Consumer};
use shared::domain::OrderId;
use shared::domain::{Currency, CustomerId, Sku};
use shared::events::{Envelope, OrderPlacedV2};
use shared::faults::{Fault, Faults, Faulty};
use shared::out_of_order::{OrderRecord, OrderRecords};
use shared::ports::{Applied, ErrorKind, Marker, StoreError};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The first receive.
pub const T0_MS: i64 = 1_800_000_000_000;
/// How long an invocation may run: the lease of an external effect ends then.
pub const INVOCATION_MS: i64 = 10_000;
/// A failed or crashed message is received again after the visibility timeout, which is
/// longer than the function's timeout (so a crashed invocation's lease has lapsed).
pub const VISIBILITY_MS: i64 = 60_000;
/// The queues' `maxReceiveCount`: after that many receives the message is in the DLQ.
pub const MAX_RECEIVES: u32 = 3;

pub(crate) const CUSTOMER: &str = "cust-ada";
/// Two SKUs, so that recommendations has pairs to count, and both end low on stock.
pub(crate) const LINES: &[(&str, u32, i64)] = &[("MUG", 2, 1250), ("TEE", 1, 2000)];

fn store(kind: ErrorKind) -> StoreError {
    match kind {
        ErrorKind::Conflict => StoreError::Conflict("injected".into()),
        _ => StoreError::Unavailable("injected".into()),
    }
}

/// The calls that write a DynamoDB transaction, or claim an order's record, where a concurrent
/// writer cancels them as a conflict. (Recording an e-mail's outcome is not among them: the
/// claim holds the order, so a conflict there means the lease was lost, not a race to retry.)
const TRANSACTIONS: &[&str] = &["ledger.apply", "counters.add", "stock.apply", "copurchases.count", "records.claim"];

/// The faults that make sense at a consumer's call.
pub fn faults_at(call: &str) -> Vec<Fault> {
    let mut faults = Fault::at(call);
    if TRANSACTIONS.contains(&call) && !faults.iter().any(Fault::is_conflict) {
        faults.push(Fault::FailBefore(ErrorKind::Conflict));
    }
    faults
}

// ---- The decorators: each consumer's store port, wrapped in fault injection. ----

/// A consumer's port wrapped in fault injection (the shared ports use [`Faulty`]).
pub struct Injected<P> {
    pub faults: Arc<Faults>,
    pub inner: Arc<P>,
}

impl<P> Injected<P> {
    pub fn new(faults: &Arc<Faults>, inner: &Arc<P>) -> Self {
        Injected { faults: faults.clone(), inner: inner.clone() }
    }
}

#[async_trait]
impl<P: loyalty::LoyaltyLedger> loyalty::LoyaltyLedger for Injected<P> {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        self.faults.call("ledger.record", self.inner.record(consumer, order_id), store).await
    }

    async fn apply(&self, record: &OrderRecord, change: &loyalty::Change) -> Result<(), loyalty::LedgerError> {
        let fail = |k| loyalty::LedgerError::Store(store(k));
        self.faults.call("ledger.apply", self.inner.apply(record, change), fail).await
    }
}

#[async_trait]
impl<P: analytics::Counters> analytics::Counters for Injected<P> {
    async fn add(&self, marker: &Marker, tally: &analytics::Tally) -> Result<Applied, StoreError> {
        self.faults.call("counters.add", self.inner.add(marker, tally), store).await
    }
}

#[async_trait]
impl<P: inventory::Stock> inventory::Stock for Injected<P> {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        self.faults.call("stock.record", self.inner.record(consumer, order_id), store).await
    }

    async fn levels(&self, skus: &[Sku]) -> Result<HashMap<Sku, inventory::Level>, StoreError> {
        self.faults.call("stock.levels", self.inner.levels(skus), store).await
    }

    async fn apply(
        &self,
        record: &OrderRecord,
        movement: inventory::Movement,
        lines: &[(Sku, u64)],
    ) -> Result<(), inventory::CommitError> {
        let fail = |k| inventory::CommitError::Store(store(k));
        self.faults.call("stock.apply", self.inner.apply(record, movement, lines), fail).await
    }
}

#[async_trait]
impl<P: OrderRecords> OrderRecords for Injected<P> {
    async fn load(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        self.faults.call("records.load", self.inner.load(consumer, order_id), store).await
    }

    /// Named by what the write does, so that each is a fault point of its own: a claim takes
    /// the order's lease; any other write records an outcome (the stage applied, or a release).
    async fn save(&self, record: &OrderRecord) -> Result<(), StoreError> {
        let call = if record.lease_until_ms.is_some() { "records.claim" } else { "records.record" };
        self.faults.call(call, self.inner.save(record), store).await
    }
}

#[async_trait]
impl<P: recommendations::CoPurchases> recommendations::CoPurchases for Injected<P> {
    async fn count(&self, marker: &Marker, pairs: &[recommendations::Pair]) -> Result<Applied, StoreError> {
        self.faults.call("copurchases.count", self.inner.count(marker, pairs), store).await
    }
}

#[async_trait]
impl<P: email::Customers> email::Customers for Injected<P> {
    async fn find(&self, id: &CustomerId) -> Result<Option<email::Customer>, StoreError> {
        self.faults.call("customers.find", self.inner.find(id), store).await
    }
}

#[async_trait]
impl<P: email::Mailer> email::Mailer for Injected<P> {
    async fn send(&self, message: &email::Message) -> Result<(), email::MailError> {
        // SES that does not answer (a timeout) may or may not have sent.
        let fail = |_| email::MailError("injected".into());
        self.faults.call("mailer.send", self.inner.send(message), fail).await
    }
}

// ---- The worlds: one consumer's fakes, how to build the consumer over them, its invariant. ----

/// One consumer over its fakes.
pub trait Subject: Send + Sync + Sized {
    /// Accepts `order.placed` (among others, maybe).
    type Consumer: Consumer;
    /// A fresh world, before the event.
    fn given() -> Self;
    /// The consumer of one invocation, its ports behind `faults`.
    fn consumer(&self, faults: &Arc<Faults>) -> Self::Consumer;
    /// The consumer's invariant after recovery; `fault` is the schedule's fault, if any.
    fn check(&self, event: &Envelope<OrderPlacedV2>, fault: Option<(&str, Fault)>, c: &mut Checked);
}

pub struct LoyaltyWorld {
    pub(crate) ledger: Arc<loyalty::memory::MemoryLedger>,
}

impl Subject for LoyaltyWorld {
    type Consumer = loyalty::Loyalty<Injected<loyalty::memory::MemoryLedger>>;

    fn given() -> Self {
        LoyaltyWorld { ledger: Arc::default() }
    }

    fn consumer(&self, faults: &Arc<Faults>) -> Self::Consumer {
        loyalty::Loyalty { ledger: Injected::new(faults, &self.ledger) }
    }

    fn check(&self, event: &Envelope<OrderPlacedV2>, _: Option<(&str, Fault)>, c: &mut Checked) {
        let expected = loyalty::points_for(event.data.total);
        let balance = self.ledger.balance(CUSTOMER);
        c.expect(balance == expected, || format!("loyalty balance {balance}, expected exactly {expected}"));
        let entries = self.ledger.entries().len();
        c.expect(entries == 1, || format!("loyalty ledger has {entries} entries for one event"));
    }
}

pub struct AnalyticsWorld {
    counters: Arc<analytics::memory::MemoryCounters>,
}

impl Subject for AnalyticsWorld {
    type Consumer = analytics::Analytics<Injected<analytics::memory::MemoryCounters>>;

    fn given() -> Self {
        AnalyticsWorld { counters: Arc::default() }
    }

    fn consumer(&self, faults: &Arc<Faults>) -> Self::Consumer {
        analytics::Analytics { counters: Injected::new(faults, &self.counters) }
    }

    fn check(&self, event: &Envelope<OrderPlacedV2>, _: Option<(&str, Fault)>, c: &mut Checked) {
        let day = event.occurred_at.date_naive();
        let units: u64 = event.data.lines.iter().map(|l| u64::from(l.quantity)).sum();
        let expected = analytics::DayTotals { revenue: event.data.total.amount, orders: 1, units };
        let counted = self.counters.day(day, Currency::EUR);
        c.expect(counted == expected, || format!("analytics day totals {counted:?}, expected {expected:?}"));
        for line in &event.data.lines {
            let sku = self.counters.sku(line.sku.as_str(), day, Currency::EUR);
            let units = u64::from(line.quantity);
            c.expect(sku.units == units, || format!("analytics {} units {}, expected {units}", line.sku, sku.units));
        }
    }
}

pub struct InventoryWorld {
    pub(crate) stock: Arc<inventory::memory::MemoryStock>,
    bus: Arc<shared::adapters::memory::MemoryBus>,
}

/// Before the event: what the checkout reserved for it, and little enough left to warn.
pub(crate) fn initial_stock(sku: &str) -> inventory::memory::Product {
    let reserved = LINES.iter().find(|(s, ..)| *s == sku).map_or(0, |(_, q, _)| i64::from(*q));
    inventory::memory::Product { available: 3, reserved, threshold: Some(5) }
}

impl Subject for InventoryWorld {
    type Consumer =
        inventory::Inventory<Injected<inventory::memory::MemoryStock>, Faulty<shared::adapters::memory::MemoryBus>>;

    fn given() -> Self {
        let stock = LINES
            .iter()
            .fold(inventory::memory::MemoryStock::default(), |stock, (sku, ..)| stock.with(sku, initial_stock(sku)));
        InventoryWorld { stock: Arc::new(stock), bus: Arc::default() }
    }

    fn consumer(&self, faults: &Arc<Faults>) -> Self::Consumer {
        inventory::Inventory {
            stock: Injected::new(faults, &self.stock),
            bus: Faulty { faults: faults.clone(), inner: self.bus.clone() },
        }
    }

    fn check(&self, _: &Envelope<OrderPlacedV2>, _: Option<(&str, Fault)>, c: &mut Checked) {
        for (sku, ..) in LINES {
            let now = self.stock.product(sku).unwrap_or_default();
            let before = initial_stock(sku);
            // Committed once: the reservation is gone, and nothing else moved.
            c.expect(now.reserved == 0 && now.available == before.available, || {
                format!("inventory {sku}: {now:?}, expected the reservation of {before:?} committed once")
            });
        }
        let records = self.stock.records();
        c.expect(records == 1, || format!("inventory has {records} order records for one order"));
        // Low-stock warnings are at-least-once, each with an ID derived from (event, SKU), so
        // a republished one is a duplicate its consumers drop.
        let warned: HashSet<_> = self.bus.published().iter().map(|e| e.event_id).collect();
        c.expect(warned.len() == LINES.len(), || {
            format!("{} distinct low-stock warnings, expected one per SKU: {}", warned.len(), LINES.len())
        });
    }
}

pub struct RecommendationsWorld {
    store: Arc<recommendations::memory::MemoryCoPurchases>,
}

impl Subject for RecommendationsWorld {
    type Consumer = recommendations::Recommendations<Injected<recommendations::memory::MemoryCoPurchases>>;

    fn given() -> Self {
        RecommendationsWorld { store: Arc::default() }
    }

    fn consumer(&self, faults: &Arc<Faults>) -> Self::Consumer {
        recommendations::Recommendations { store: Injected::new(faults, &self.store) }
    }

    fn check(&self, event: &Envelope<OrderPlacedV2>, _: Option<(&str, Fault)>, c: &mut Checked) {
        let pairs = recommendations::pairs(&event.data);
        for pair in &pairs {
            let count = self.store.count(pair.sku.as_str(), pair.other.as_str());
            c.expect(count == 1, || format!("co-purchases {} with {}: {count}, expected 1", pair.sku, pair.other));
        }
        let counters = self.store.counters();
        c.expect(counters == pairs.len(), || format!("{counters} co-purchase counters, expected {}", pairs.len()));
    }
}

pub struct EmailWorld {
    customers: Arc<email::memory::MemoryCustomers>,
    pub(crate) mailer: Arc<email::memory::MemoryMailer>,
    pub(crate) records: Arc<shared::adapters::memory_records::MemoryOrderRecords>,
}

/// Where the receipt was sent and its stage not recorded: the next receive sends it again.
pub(crate) fn may_send_twice(fault: Option<(&str, Fault)>) -> bool {
    match fault {
        Some(("mailer.send", fault)) => fault != Fault::FailBefore(ErrorKind::Transient),
        Some(("records.record", fault)) => matches!(fault, Fault::FailBefore(_)),
        _ => false,
    }
}

impl Subject for EmailWorld {
    type Consumer = email::Email<
        Injected<email::memory::MemoryCustomers>,
        Injected<email::memory::MemoryMailer>,
        Injected<shared::adapters::memory_records::MemoryOrderRecords>,
    >;

    fn given() -> Self {
        EmailWorld {
            customers: Arc::new(email::memory::MemoryCustomers::default().with(CUSTOMER, "ada@example.com", "Ada")),
            mailer: Arc::default(),
            records: Arc::default(),
        }
    }

    fn consumer(&self, faults: &Arc<Faults>) -> Self::Consumer {
        email::Email {
            customers: Injected::new(faults, &self.customers),
            mailer: Injected::new(faults, &self.mailer),
            records: Injected::new(faults, &self.records),
        }
    }

    fn check(&self, _: &Envelope<OrderPlacedV2>, fault: Option<(&str, Fault)>, c: &mut Checked) {
        let sent = self.mailer.sent().len();
        let most = if may_send_twice(fault) { 2 } else { 1 };
        c.expect((1..=most).contains(&sent), || format!("{sent} receipts sent, expected 1..={most}"));
    }
}

// ---- Delivery and recovery, as SQS does them. ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The batch response named no failure: SQS deletes the message.
    Processed,
    /// The record was reported failed: it comes back after the visibility timeout.
    Failed,
    /// The invocation died: the whole batch comes back after the visibility timeout.
    Crashed,
    /// Retrying could not help: the harness sent it to the dead-letter queue at once.
    DeadLettered,
}

/// One receive of `body`, its `receive_count`th, at `now_ms`, behind `faults`.
pub(crate) async fn receive<S: Subject>(
    world: &S,
    faults: &Arc<Faults>,
    body: &str,
    receive_count: u32,
    now_ms: i64,
) -> Ran {
    let consumer = world.consumer(faults);
    let dead_letters = shared::adapters::memory_dlq::MemoryDeadLetters::default();
    let mut batch = sqs_batch(&[body.to_owned()]);
    batch.records[0].attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
    tokio::select! {
        biased;
        response = handle_batch(&consumer, &dead_letters, &batch, now_ms, now_ms + INVOCATION_MS) => {
            if !dead_letters.sent().is_empty() {
                Ran::DeadLettered
            } else if failed_ids(&response).is_empty() {
                Ran::Processed
            } else {
                Ran::Failed
            }
        }
        _ = faults.crashed() => Ran::Crashed,
    }
}

/// What one schedule did.
struct Run {
    /// The calls of the first receive.
    calls: Vec<&'static str>,
    receives: Vec<Ran>,
    dead_lettered: bool,
    duplicate: Ran,
}

/// Delivers one event to a fresh world with `fault` on the first receive, then recovers.
async fn run<S: Subject>(world: &S, event: &Envelope<OrderPlacedV2>, fault: Option<(usize, Fault)>) -> Run {
    let body = eventbridge_body(event);
    let first = match fault {
        Some((call, fault)) => Faults::new().plan(call, fault),
        None => Faults::new(),
    };
    let mut receives = Vec::new();
    for n in 1..=MAX_RECEIVES {
        let faults = if n == 1 { first.clone() } else { Faults::new() };
        let now = T0_MS + i64::from(n - 1) * VISIBILITY_MS;
        let ran = receive(world, &faults, &body, n, now).await;
        receives.push(ran);
        if matches!(ran, Ran::Processed | Ran::DeadLettered) {
            break;
        }
    }
    let dead_lettered = receives.last() != Some(&Ran::Processed);
    // The same event again, later, as a new message with a new envelope (at-least-once
    // delivery, an archive replay): it must be skipped.
    let later = T0_MS + 10 * VISIBILITY_MS;
    let duplicate = receive(world, &Faults::new(), &eventbridge_body(event), 1, later).await;
    Run { calls: first.calls(), receives, dead_lettered, duplicate }
}

/// The consumers' exploration: the shared report plus how many messages ended in a DLQ.
#[derive(Debug, Default)]
pub struct ConsumerReport {
    pub report: Report,
    pub consumers: usize,
    pub dead_lettered: usize,
}

impl ConsumerReport {
    pub fn line(&self) -> String {
        format!(
            "{} ({} consumers, {} messages dead-lettered)",
            self.report.line().replacen("fault-space explorer", "consumer explorer", 1),
            self.consumers,
            self.dead_lettered
        )
    }
}

fn event() -> Envelope<OrderPlacedV2> {
    order_placed(CUSTOMER, LINES)
}

/// Explores one consumer: a clean delivery, then every (call, fault) of it.
pub async fn explore<S: Subject>(name: &str, out: &mut ConsumerReport) {
    out.consumers += 1;
    let event = event();
    let world = S::given();
    let clean = run(&world, &event, None).await;
    let mut c = Checked::default();
    c.expect(clean.receives == [Ran::Processed], || format!("a clean delivery took {:?}", clean.receives));
    c.expect(!clean.calls.is_empty(), || "a clean delivery made no port call".into());
    check_recovered(&world, &event, None, &clean, &mut c);
    out.dead_lettered += usize::from(clean.dead_lettered);
    out.report.record(&format!("{name} clean"), c);

    for (n, call) in clean.calls.iter().enumerate() {
        for fault in faults_at(call) {
            let event = self::event();
            let world = S::given();
            let ran = run(&world, &event, Some((n, fault))).await;
            let mut c = Checked::default();
            c.expect(ran.calls.get(n) == Some(call), || {
                format!("the faulty receive did not replay the clean one: {:?} vs {:?}", ran.calls, clean.calls)
            });
            if fault.is_conflict() {
                // Retried in process: a conflict never costs a receive.
                c.expect(ran.receives == [Ran::Processed], || format!("a conflict cost receives: {:?}", ran.receives));
            }
            check_recovered(&world, &event, Some((call, fault)), &ran, &mut c);
            out.dead_lettered += usize::from(ran.dead_lettered);
            out.report.record(&format!("{name} {fault:?} at call {n} ({call})"), c);
        }
    }
}

/// Two deliveries of the same event (EventBridge delivered it twice: two SQS messages) in two
/// concurrent invocations, held at every pair of points `(i, j)` and interleaved; each then
/// redelivered as SQS does until it is processed, and the event delivered once more later.
pub async fn explore_concurrent<S: Subject>(name: &str, out: &mut ConsumerReport) {
    let calls = run(&S::given(), &event(), None).await.calls.len();
    for i in 0..=calls {
        for j in 0..=calls {
            let (world, event) = (S::given(), event());
            let (fa, fb) = (Faults::new().pause_before(i), Faults::new().pause_before(j));
            let (body_a, body_b) = (eventbridge_body(&event), eventbridge_body(&event));
            let a = receive(&world, &fa, &body_a, 1, T0_MS);
            let b = receive(&world, &fb, &body_b, 1, T0_MS);
            let (ra, rb) = crate::schedule::interleave(a, &fa, b, &fb).await;
            let mut c = Checked::default();
            let mut dead_lettered = false;
            for (first, body) in [(ra, &body_a), (rb, &body_b)] {
                let mut last = first;
                for n in 2..=MAX_RECEIVES {
                    if matches!(last, Ran::Processed | Ran::DeadLettered) {
                        break;
                    }
                    let now = T0_MS + i64::from(n - 1) * VISIBILITY_MS;
                    last = receive(&world, &Faults::new(), body, n, now).await;
                }
                dead_lettered |= last != Ran::Processed;
            }
            c.expect(!dead_lettered, || "a concurrent duplicate ended in the DLQ".into());
            let later = T0_MS + 10 * VISIBILITY_MS;
            let duplicate = receive(&world, &Faults::new(), &eventbridge_body(&event), 1, later).await;
            c.expect(duplicate == Ran::Processed, || format!("a later duplicate was {duplicate:?}"));
            world.check(&event, None, &mut c);
            out.dead_lettered += usize::from(dead_lettered);
            out.report.record(&format!("{name} two deliveries interleaved at ({i}, {j})"), c);
        }
    }
}

fn check_recovered<S: Subject>(
    world: &S,
    event: &Envelope<OrderPlacedV2>,
    fault: Option<(&str, Fault)>,
    ran: &Run,
    c: &mut Checked,
) {
    c.expect(!ran.dead_lettered, || format!("the message ended in the DLQ after {:?}", ran.receives));
    c.expect(ran.duplicate == Ran::Processed, || {
        format!("the duplicate delivery was {:?}, not skipped", ran.duplicate)
    });
    world.check(event, fault, c);
}

/// Every consumer, every fault point of its clean delivery, and two concurrent deliveries of
/// one event interleaved at every pair of points.
pub async fn explore_consumers() -> ConsumerReport {
    let mut out = ConsumerReport::default();
    explore::<LoyaltyWorld>("loyalty", &mut out).await;
    explore::<AnalyticsWorld>("analytics", &mut out).await;
    explore::<InventoryWorld>("inventory", &mut out).await;
    explore::<RecommendationsWorld>("recommendations", &mut out).await;
    explore::<EmailWorld>("email", &mut out).await;
    explore_concurrent::<LoyaltyWorld>("loyalty", &mut out).await;
    explore_concurrent::<AnalyticsWorld>("analytics", &mut out).await;
    explore_concurrent::<InventoryWorld>("inventory", &mut out).await;
    explore_concurrent::<RecommendationsWorld>("recommendations", &mut out).await;
    explore_concurrent::<EmailWorld>("email", &mut out).await;
    out
}
