//! One shop for the lifecycle specifications: the customer's checkout and the warehouse's
//! fulfilment on the same in-memory store, bus, gateway and idempotency keys, as the two
//! Lambdas share the tables.
#![allow(dead_code)] // each test binary uses its own part

use async_trait::async_trait;
use checkout::commands::Command;
use checkout::service::{PostOrder, Reply};
use checkout::{Checkout, Fulfilment, Ports};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::sandbox_payments::{LedgerEntry, SandboxGateway};
use shared::auth::{Access, Caller};
use shared::domain::pricing::Product;
use shared::domain::{Currency, CustomerId, Money, Order, OrderEvent, OrderId, Recorded, Refund};
use shared::ports::*;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub const NOW: i64 = 1_800_000_000_000;
/// Later than any attempt's lease: a retry at this time takes the key over.
pub const LATER: i64 = NOW + 60_000;

/// The customer who places the orders (the token's subject).
pub fn customer() -> Caller {
    Caller { subject: CustomerId("cust-1".into()), staff: false }
}

/// Another signed-in customer.
pub fn another_customer() -> Caller {
    Caller { subject: CustomerId("cust-2".into()), staff: false }
}

/// A member of staff (the token carries the staff scope).
pub fn staff() -> Caller {
    Caller { subject: CustomerId("staff-sam".into()), staff: true }
}

pub struct World {
    pub shop: Arc<MemoryShop>,
    pub bus: Arc<MemoryBus>,
    pub gateway: Arc<SandboxGateway>,
    /// Between the checkout and the gateway: can make refunds fail.
    pub network: Arc<Network>,
    pub keys: Arc<MemoryIdempotency>,
    pub checkout: Checkout,
    pub fulfilment: Fulfilment,
}

/// A shop selling mugs (12.50, 10 in stock), with the customer's and the staff's functions.
pub fn given_a_shop() -> World {
    given_a_shop_where(|orders| orders)
}

/// As `given_a_shop`, with the order store as `wrap` makes it (for both functions).
pub fn given_a_shop_where(wrap: impl FnOnce(Arc<dyn OrderStore>) -> Arc<dyn OrderStore>) -> World {
    let product = Product { sku: "MUG".into(), name: "A mug".into(), unit_price: Money::new(1250, Currency::EUR) };
    let shop = Arc::new(MemoryShop::default().with_product(product, 10));
    let bus = Arc::new(MemoryBus::default());
    let gateway = Arc::new(SandboxGateway::in_memory());
    let network = Arc::new(Network { gateway: gateway.clone(), fail_refunds: AtomicU32::new(0) });
    let keys = Arc::new(MemoryIdempotency::default());
    let orders = wrap(shop.clone());
    let ports = Ports {
        catalogue: shop.clone(),
        orders: orders.clone(),
        outbox: shop.clone(),
        publisher: bus.clone(),
        payments: network.clone(),
    };
    let checkout = Checkout::new(ports, keys.clone());
    let fulfilment = Fulfilment {
        orders,
        outbox: shop.clone(),
        publisher: bus.clone(),
        idempotency: keys.clone(),
        access: Access::default(),
    };
    World { shop, bus, gateway, network, keys, checkout, fulfilment }
}

pub fn body(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

pub fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The last segment of a problem's type URI (`order-state-conflict`, ...).
pub fn problem(reply: &Reply) -> String {
    body(reply)["type"].as_str().and_then(|t| t.rsplit('/').next()).unwrap_or_default().to_owned()
}

pub fn shipment(carrier: &str, tracking_id: &str) -> Vec<u8> {
    json!({"carrier": carrier, "trackingId": tracking_id}).to_string().into_bytes()
}

/// A command request of `caller` with its key and body, at `now_ms`.
pub fn command<'a>(
    caller: &'a Caller,
    id: &'a str,
    key: Option<&'a str>,
    body: &'a [u8],
    correlation_id: &'a str,
    now_ms: i64,
) -> Command<'a> {
    Command {
        caller,
        order_id: id,
        idempotency_key: key,
        content_type: Some("application/json"),
        body,
        correlation_id,
        now_ms,
        deadline_ms: now_ms + 10_000,
    }
}

impl World {
    /// An order placed through the checkout with `token`: 25.00 for two mugs.
    pub async fn given_a_placed_order(&self) -> OrderId {
        let reply = self.place("tok_visa", &format!("place-{}", ulid::Ulid::new())).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        body(&reply)["orderId"].as_str().unwrap().parse().unwrap()
    }

    pub async fn place(&self, token: &str, key: &str) -> Reply {
        self.place_at(token, key, NOW).await
    }

    pub async fn place_at(&self, token: &str, key: &str, now_ms: i64) -> Reply {
        let order = json!({"items": [{"sku": "MUG", "quantity": 2}], "paymentToken": token, "currency": "EUR"});
        let order = order.to_string();
        self.checkout
            .post_order(PostOrder {
                caller: &customer(),
                content_type: Some("application/json"),
                idempotency_key: Some(key),
                body: order.as_bytes(),
                correlation_id: "corr-checkout",
                now_ms,
                deadline_ms: now_ms + 10_000,
            })
            .await
    }

    pub async fn given_a_shipped_order(&self) -> OrderId {
        let id = self.given_a_placed_order().await;
        assert_eq!(self.ship(id, "ship-1", "UPS", "1Z999").await.status, 200);
        id
    }

    pub async fn cancel(&self, id: OrderId, key: &str) -> Reply {
        self.cancel_at(id, key, NOW).await
    }

    pub async fn cancel_at(&self, id: OrderId, key: &str, now_ms: i64) -> Reply {
        self.cancel_by(&customer(), id, key, now_ms).await
    }

    pub async fn cancel_by(&self, caller: &Caller, id: OrderId, key: &str, now_ms: i64) -> Reply {
        let id = id.to_string();
        self.checkout.cancel(command(caller, &id, Some(key), b"", "corr-cancel", now_ms)).await
    }

    pub async fn ship(&self, id: OrderId, key: &str, carrier: &str, tracking_id: &str) -> Reply {
        let (id, body) = (id.to_string(), shipment(carrier, tracking_id));
        self.fulfilment.ship(command(&staff(), &id, Some(key), &body, "corr-warehouse", NOW)).await
    }

    pub async fn deliver(&self, id: OrderId, key: &str) -> Reply {
        let id = id.to_string();
        self.fulfilment.deliver(command(&staff(), &id, Some(key), b"", "corr-carrier", NOW)).await
    }

    /// `GET /orders/{id}` (`asOf` when given) by `caller`.
    pub async fn get_by(&self, caller: &Caller, id: &str, as_of: Option<&str>) -> Reply {
        self.checkout.get_order(caller, id, as_of).await
    }

    /// `GET /orders/{id}/events` by `caller`.
    pub async fn history_by(&self, caller: &Caller, id: &str) -> Reply {
        self.checkout.history(caller, id).await
    }

    pub async fn order(&self, id: OrderId) -> Order {
        self.shop.load(id).await.unwrap().expect("the order exists")
    }

    pub async fn history(&self, id: OrderId) -> Vec<Recorded> {
        self.shop.history(id).await.unwrap()
    }

    pub fn event_names(&self, id: OrderId) -> Vec<&'static str> {
        self.shop.events(id).iter().map(OrderEvent::name).collect()
    }

    /// The refund the gateway made for the order's charge, if any.
    pub fn refund_at_gateway(&self, id: OrderId) -> Option<LedgerEntry> {
        self.gateway.ledger().entry(&format!("order-{id}#refund"))
    }

    /// The published events of one order, as (detail-type, order version).
    pub fn published_of(&self, id: OrderId) -> Vec<(String, u64)> {
        self.bus
            .published()
            .iter()
            .map(|e| (e.detail_type.clone(), serde_json::from_str::<Value>(&e.detail).unwrap()))
            .filter(|(_, d)| d["orderId"] == id.to_string())
            .map(|(t, d)| (t, d["orderVersion"].as_u64().unwrap()))
            .collect()
    }

    /// The detail of the one published event of `detail_type` for the order.
    pub fn detail_of(&self, id: OrderId, detail_type: &str) -> Value {
        let details: Vec<Value> = self
            .bus
            .published()
            .iter()
            .filter(|e| e.detail_type == detail_type)
            .map(|e| serde_json::from_str::<Value>(&e.detail).unwrap())
            .filter(|d| d["orderId"] == id.to_string())
            .collect();
        assert_eq!(details.len(), 1, "one {detail_type} for {id}");
        details[0].clone()
    }
}

/// The gateway as the checkout reaches it: the next `fail_refunds` refunds get no answer
/// before reaching it (nothing refunded), as a connection that drops.
pub struct Network {
    pub gateway: Arc<SandboxGateway>,
    pub fail_refunds: AtomicU32,
}

#[async_trait]
impl PaymentGateway for Network {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        self.gateway.charge(request).await
    }

    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError> {
        self.gateway.void(idempotency_key).await
    }

    async fn refund(&self, payment_key: &str, amount: Money) -> Result<Refund, PaymentError> {
        if self.fail_refunds.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(PaymentError::Unknown("connection reset".into()));
        }
        self.gateway.refund(payment_key, amount).await
    }
}

/// An order store that yields to the scheduler before every call, so that two commands joined
/// on one thread interleave call by call, and that counts the version conflicts it answers.
pub struct Yielding {
    pub inner: Arc<dyn OrderStore>,
    pub conflicts: AtomicU32,
}

#[async_trait]
impl OrderStore for Yielding {
    async fn history(&self, id: OrderId) -> Result<Vec<Recorded>, StoreError> {
        tokio::task::yield_now().await;
        self.inner.history(id).await
    }

    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        tokio::task::yield_now().await;
        let result = self.inner.commit(change).await;
        if result == Err(CommitError::VersionConflict) {
            self.conflicts.fetch_add(1, Ordering::SeqCst);
        }
        result
    }

    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        self.inner.open_before(before, limit).await
    }
}

/// Yields `n` times: shifts where a joined future starts against the other.
pub async fn after_yields(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}
