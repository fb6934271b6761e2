//! One shop, its fakes, the functions that act on it (checkout attempts, the relay, the
//! sweeper), and the invariants that must hold whatever happened.

use checkout::service::{PostOrder, Reply};
use checkout::{Checkout, Ports};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::memory_records::RecordTable;
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::auth::Caller;
use shared::domain::pricing::Product;
use shared::domain::{Currency, CustomerId, Money, OrderId, OrderStatus};
use shared::faults::{Faults, Faulty};
use shared::out_of_order::OrderRecord;
use shared::ports::{IdempotencyStore, OrderStore, StoreError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The moment every schedule starts; the clock only moves when the explorer moves it.
pub const T0_MS: i64 = 1_800_000_000_000;
/// How long one checkout attempt may run (its lease).
pub const ATTEMPT_MS: i64 = 10_000;
pub const IDEMPOTENCY_KEY: &str = "explorer-key-1";

const STOCK: [(&str, i64, i64); 2] = [("MUG", 1250, 10), ("TEE", 2000, 3)];

/// A request and what it is for.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub body: Value,
}

impl Scenario {
    pub fn all() -> Vec<Scenario> {
        let order = |token: &str, tee: u32| {
            json!({
                "items": [{"sku": "MUG", "quantity": 2}, {"sku": "TEE", "quantity": tee}],
                "paymentToken": token,
                "currency": "EUR",
            })
        };
        vec![
            Scenario { name: "approved", body: order("tok_visa", 1) },
            Scenario { name: "declined", body: order("tok_chargeDeclined", 1) },
            Scenario { name: "gateway-error", body: order("tok_processingError", 1) },
            Scenario { name: "gateway-timeout", body: order("tok_timeout", 1) },
            Scenario { name: "out-of-stock", body: order("tok_visa", 4) },
        ]
    }
}

/// What an attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Answered(Reply),
    /// The function stopped mid-way: no answer reached the client.
    Crashed,
}

impl Ran {
    pub fn reply(&self) -> Option<&Reply> {
        match self {
            Ran::Answered(r) => Some(r),
            Ran::Crashed => None,
        }
    }
}

/// A client's retry is over when the answer is final: not a 5xx, not "still in progress".
pub fn is_final(reply: &Reply) -> bool {
    reply.status < 500 && !reply.body.contains("request-in-progress")
}

/// The answer with what differs between runs (the order ID) taken out, for comparing the
/// answer of a faulty run with that of the clean run.
pub fn normalised(reply: &Reply) -> (u16, Value) {
    let mut body: Value = serde_json::from_str(&reply.body).unwrap_or(Value::Null);
    if let Some(o) = body.as_object_mut() {
        o.remove("orderId");
        o.remove("detail");
    }
    (reply.status, body)
}

pub struct World {
    pub shop: Arc<MemoryShop>,
    pub bus: Arc<MemoryBus>,
    pub gateway: Arc<SandboxGateway>,
    pub keys: Arc<MemoryIdempotency>,
    /// The inventory consumer's side of the same products table.
    pub stock: ShopStock,
}

/// The inventory consumer's `Stock` over the checkout's own products (one DynamoDB table in
/// AWS), so that stock is checked end to end: initial = available + reserved + committed.
/// Cheap to clone: every clone is the same stock.
///
/// Only commits are modelled: this world's orders are never cancelled by their customer (the
/// checkout's own cancellations are never announced), so no restock or release reaches it. A
/// world that cancels needs `MemoryShop` to move `available` back; until then such a movement
/// is refused, and the refusal shows as a failed delivery in [`World::check`].
#[derive(Clone)]
pub struct ShopStock {
    shop: Arc<MemoryShop>,
    records: Arc<std::sync::Mutex<RecordTable>>,
    committed: Arc<std::sync::Mutex<BTreeMap<String, i64>>>,
}

impl ShopStock {
    pub fn committed(&self, sku: &str) -> i64 {
        self.committed.lock().unwrap().get(sku).copied().unwrap_or(0)
    }
}

#[async_trait::async_trait]
impl inventory::Stock for ShopStock {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        Ok(self.records.lock().unwrap().get(consumer, order_id))
    }

    async fn levels(
        &self,
        skus: &[shared::domain::Sku],
    ) -> Result<std::collections::HashMap<shared::domain::Sku, inventory::Level>, StoreError> {
        let level = |sku: &shared::domain::Sku| inventory::Level {
            available: self.shop.stock(sku.as_str()).available,
            threshold: None,
        };
        Ok(skus.iter().map(|sku| (sku.clone(), level(sku))).collect())
    }

    async fn apply(
        &self,
        record: &OrderRecord,
        movement: inventory::Movement,
        lines: &[(shared::domain::Sku, u64)],
    ) -> Result<(), inventory::CommitError> {
        if movement != inventory::Movement::Commit {
            let why =
                format!("the checkout world models no {movement:?} (no order of it is cancelled by its customer)");
            return Err(StoreError::Corrupt(why).into());
        }
        // Record and stock change as one transaction: checked and applied under one lock.
        let mut records = self.records.lock().unwrap();
        records.check(record)?;
        self.shop.commit_reserved(lines).map_err(inventory::CommitError::NotReserved)?;
        let mut committed = self.committed.lock().unwrap();
        for (sku, q) in lines {
            *committed.entry(sku.as_str().to_owned()).or_default() += *q as i64;
        }
        records.put(record.clone());
        Ok(())
    }
}

impl Default for World {
    fn default() -> Self {
        let shop = STOCK.iter().fold(MemoryShop::default(), |shop, (sku, cents, available)| {
            let product =
                Product { sku: (*sku).into(), name: format!("A {sku}"), unit_price: Money::new(*cents, Currency::EUR) };
            shop.with_product(product, *available)
        });
        let shop = Arc::new(shop);
        World {
            stock: ShopStock { shop: shop.clone(), records: Default::default(), committed: Default::default() },
            shop,
            bus: Arc::new(MemoryBus::default()),
            gateway: Arc::new(SandboxGateway::in_memory()),
            keys: Arc::new(MemoryIdempotency::default()),
        }
    }
}

/// A deadline the background functions never reach: the explorer's time is virtual.
fn far_deadline() -> shared::deadline::Deadline {
    shared::deadline::Deadline::at(std::time::SystemTime::now() + std::time::Duration::from_secs(3600))
}

pub fn at(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl World {
    /// The checkout's ports, each behind `faults`.
    pub fn ports(&self, faults: &Arc<Faults>) -> Ports {
        let shop = Faulty::new(faults, self.shop.clone());
        Ports {
            catalogue: shop.clone(),
            orders: shop.clone(),
            outbox: shop,
            publisher: Faulty::new(faults, self.bus.clone()),
            payments: Faulty::new(faults, self.gateway.clone()),
        }
    }

    /// One `POST /orders` at `now_ms`, run until it answers or crashes.
    pub async fn attempt(&self, faults: &Arc<Faults>, body: &Value, now_ms: i64) -> Ran {
        let keys: Arc<dyn IdempotencyStore> = Faulty::new(faults, self.keys.clone());
        let checkout = Checkout::new(self.ports(faults), keys);
        let body = body.to_string();
        let caller = Caller { subject: CustomerId("cust-1".into()), staff: false };
        let request = PostOrder {
            caller: &caller,
            content_type: Some("application/json"),
            idempotency_key: Some(IDEMPOTENCY_KEY),
            body: body.as_bytes(),
            correlation_id: "corr-explorer",
            now_ms,
            deadline_ms: now_ms + ATTEMPT_MS,
        };
        tokio::select! {
            biased;
            reply = checkout.post_order(request) => Ran::Answered(reply),
            _ = faults.crashed() => Ran::Crashed,
        }
    }

    /// One pass of the outbox relay, after every grace period, fault-free.
    pub async fn relay(&self) {
        if !self.relay_with(&Faults::new()).await {
            panic!("the fault-free relay failed");
        }
    }

    /// One pass of the outbox relay behind `faults`; false when it failed or crashed.
    pub async fn relay_with(&self, faults: &Arc<Faults>) -> bool {
        let deadline = far_deadline();
        let far = at(T0_MS) + chrono::Duration::days(1);
        let (outbox, bus) = (Faulty::new(faults, self.shop.clone()), Faulty::new(faults, self.bus.clone()));
        let backoff = shared::publishing::Backoff::BACKGROUND;
        tokio::select! {
            biased;
            relayed = outbox_relay::relay(outbox.as_ref(), bus.as_ref(), far, &deadline, backoff) => relayed.is_ok(),
            _ = faults.crashed() => false,
        }
    }

    /// One pass of the recovery sweeper at `now_ms`, behind `faults`, until it ends or crashes.
    pub async fn sweep(&self, faults: &Arc<Faults>, now_ms: i64) -> bool {
        let sweeper = sweeper::Sweeper::new(self.ports(faults), chrono::Duration::seconds(300));
        let deadline = far_deadline();
        tokio::select! {
            biased;
            _ = sweeper.run_once(at(now_ms), &deadline) => true,
            _ = faults.crashed() => false,
        }
    }

    /// SQS delivers every event on the bus that the inventory consumer's rule routes to it
    /// (duplicates included), which commits each placed order's reservation once.
    async fn deliver_to_inventory(&self) -> usize {
        use shared::events::Accepts;
        let consumer = inventory::Inventory { stock: self.stock.clone(), bus: MemoryBus::default() };
        let dead_letters = shared::adapters::memory_dlq::MemoryDeadLetters::default();
        let routed = |e: &&shared::events::Outbound| {
            inventory::InventoryEvents::ACCEPTED.iter().any(|(source, t, _)| e.source == *source && e.detail_type == *t)
        };
        let mut failed = 0;
        for event in self.bus.published().iter().filter(routed) {
            let detail = serde_json::from_str::<Value>(&event.detail).unwrap_or(Value::Null);
            let body = shared::testing::eventbridge_body_of(&event.source, &event.detail_type, &detail);
            let batch = shared::testing::sqs_batch(&[body]);
            let response =
                shared::consumer::handle_batch(&consumer, &dead_letters, &batch, T0_MS, T0_MS + ATTEMPT_MS).await;
            failed += response.batch_item_failures.len() + dead_letters.sent().len();
        }
        failed
    }

    /// The world's invariants, once the inventory consumer has seen every published event;
    /// each broken one is described.
    pub async fn check(&self, answers: &[Ran]) -> Checked {
        let mut c = Checked::default();
        let failed = self.deliver_to_inventory().await;
        c.expect(failed == 0, || format!("the inventory consumer failed {failed} deliveries"));
        let orders: Vec<_> = {
            let mut all = Vec::new();
            for id in self.shop.order_ids() {
                all.push(self.shop.load(id).await.ok().flatten().expect("every stored order folds"));
            }
            all
        };
        let charged: BTreeMap<String, Money> = self.gateway.ledger().charges().into_iter().collect();
        // Charges: at most one per idempotency key (one key per schedule), and a charge exists
        // exactly when its order ends PLACED.
        c.expect(charged.len() <= 1, || format!("{} charges for one idempotency key", charged.len()));
        for order in &orders {
            let paid = charged.get(&order.payment_key());
            let placed = order.status == OrderStatus::Placed;
            c.expect(paid.is_some() == placed, || {
                format!("order {} is {:?} but charged: {}", order.id, order.status, paid.is_some())
            });
            c.expect(paid.is_none_or(|m| *m == order.total), || format!("order {} charged a wrong amount", order.id));
            c.expect(order.status != OrderStatus::PendingPayment, || format!("order {} left pending", order.id));
        }
        c.expect(charged.keys().all(|k| orders.iter().any(|o| &o.payment_key() == k)), || {
            "a charge belongs to no order".into()
        });
        // Events: every PLACED order has exactly one order.placed event ID, published; no other order has one.
        let published = self.bus.published();
        for order in &orders {
            let ids: BTreeSet<_> = published
                .iter()
                .filter(|e| e.detail_type == "order.placed" && e.detail.contains(&order.id.to_string()))
                .map(|e| e.event_id)
                .collect();
            let want = usize::from(order.status == OrderStatus::Placed);
            c.expect(ids.len() == want, || {
                format!("order {} ({:?}) has {} order.placed IDs", order.id, order.status, ids.len())
            });
        }
        c.expect(self.shop.outbox_len() == 0, || "the outbox still holds events after the relay ran".into());
        // Stock: conserved (available + reserved + committed), never negative, and committed
        // exactly for the placed orders, nothing left reserved once the consumer ran.
        for (sku, _, initial) in STOCK {
            let level = self.shop.stock(sku);
            let committed = self.stock.committed(sku);
            let placed: i64 = orders
                .iter()
                .filter(|o| o.status == OrderStatus::Placed)
                .flat_map(|o| &o.lines)
                .filter(|l| l.sku.as_str() == sku)
                .map(|l| i64::from(l.quantity))
                .sum();
            c.expect(level.available + level.reserved + committed == initial, || {
                format!("{sku}: stock not conserved: {level:?} + {committed} committed != {initial}")
            });
            c.expect(level.available >= 0 && level.reserved >= 0, || format!("{sku}: negative stock {level:?}"));
            c.expect(level.reserved == 0, || format!("{sku}: {} still reserved", level.reserved));
            c.expect(committed == placed, || format!("{sku}: {committed} committed for {placed} placed"));
        }
        // Answers: every 201 names the same order, the one the key is bound to, and it is PLACED.
        let created: BTreeSet<String> = answers
            .iter()
            .filter_map(Ran::reply)
            .filter(|r| r.status == 201)
            .filter_map(|r| serde_json::from_str::<Value>(&r.body).ok())
            .filter_map(|b| b["orderId"].as_str().map(str::to_owned))
            .collect();
        c.expect(created.len() <= 1, || format!("201 answers name {} different orders", created.len()));
        for id in &created {
            let placed = id.parse::<OrderId>().ok().and_then(|id| orders.iter().find(|o| o.id == id));
            c.expect(placed.is_some_and(|o| o.status == OrderStatus::Placed), || format!("201 for {id}, not placed"));
        }
        c
    }
}

/// Invariants checked and those broken.
#[derive(Debug, Default)]
pub struct Checked {
    pub checks: usize,
    pub violations: Vec<String>,
}

impl Checked {
    pub fn expect(&mut self, holds: bool, what: impl FnOnce() -> String) {
        self.checks += 1;
        if !holds {
            self.violations.push(what());
        }
    }
}
