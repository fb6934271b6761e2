//! The recovery sweeper, specified with in-memory ports: given checkouts that stopped half-way
//! (placed through the real checkout, or opened directly in the store), when the sweeper runs,
//! then each order ends exactly once as the gateway's ledger says, and a late client retry gets
//! that same answer.

use async_trait::async_trait;
use checkout::service::{PostOrder, Reply};
use checkout::{Checkout, Ports};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop, StockLevel};
use shared::adapters::sandbox_payments::{LedgerEntry, SandboxGateway};
use shared::auth::Caller;
use shared::deadline::Deadline;
use shared::domain::pricing::Product;
use shared::domain::{
    CancelReason, Currency, CustomerId, LineItem, Money, Order, OrderEvent, OrderId, OrderStatus, Recorded, Refund,
};
use shared::ports::*;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use sweeper::{SweepReport, Sweeper, MARGIN};

const GRACE_SECONDS: i64 = 300;
const NOW_MS: i64 = 1_800_000_000_000;
const KEY: &str = "k1";

struct World {
    shop: Arc<MemoryShop>,
    bus: Arc<MemoryBus>,
    gateway: Arc<SandboxGateway>,
    /// Between the ports and the gateway: loses requests before they reach it.
    network: Arc<Network>,
    ports: Ports,
    checkout: Checkout,
}

fn product(sku: &str, cents: i64) -> Product {
    Product { sku: sku.into(), name: format!("A {sku}"), unit_price: Money::new(cents, Currency::EUR) }
}

/// A shop selling mugs (12.50, 10 in stock), with the checkout and the sweeper on the same ports.
fn given_a_shop() -> World {
    given_a_shop_where(|shop, payments| (shop, payments))
}

/// As `given_a_shop`, with the order store and the gateway as `wrap` makes them.
fn given_a_shop_where(
    wrap: impl FnOnce(Arc<dyn OrderStore>, Arc<dyn PaymentGateway>) -> (Arc<dyn OrderStore>, Arc<dyn PaymentGateway>),
) -> World {
    let shop = Arc::new(MemoryShop::default().with_product(product("MUG", 1250), 10));
    let bus = Arc::new(MemoryBus::default());
    let gateway = Arc::new(SandboxGateway::default());
    let network = Arc::new(Network { gateway: gateway.clone(), lose: AtomicU32::new(0) });
    let (orders, payments) = wrap(shop.clone(), network.clone());
    let ports = Ports { catalogue: shop.clone(), orders, outbox: shop.clone(), publisher: bus.clone(), payments };
    let checkout = Checkout::new(ports.clone(), Arc::new(MemoryIdempotency::default()));
    World { shop, bus, gateway, network, ports, checkout }
}

fn order_body(token: &str) -> Value {
    json!({"items": [{"sku": "MUG", "quantity": 2}], "paymentToken": token, "currency": "EUR"})
}

fn body(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap()
}

/// A moment when orders opened just now are older than the grace period.
fn after_the_grace() -> DateTime<Utc> {
    Utc::now() + chrono::Duration::seconds(GRACE_SECONDS + 1)
}

/// A deadline as far off as the template's sweeper timeout.
fn plenty_of_time() -> Deadline {
    Deadline::at(SystemTime::now() + Duration::from_secs(60))
}

impl World {
    fn sweeper(&self) -> Sweeper {
        Sweeper::new(self.ports.clone(), chrono::Duration::seconds(GRACE_SECONDS))
    }

    async fn sweep(&self) -> SweepReport {
        self.sweeper().run_once(after_the_grace(), &plenty_of_time()).await.unwrap()
    }

    async fn post_at(&self, key: &str, token: &str, now_ms: i64) -> Reply {
        let body = order_body(token).to_string();
        self.checkout
            .post_order(PostOrder {
                caller: &Caller { subject: CustomerId("cust-1".into()), staff: false },
                content_type: Some("application/json"),
                idempotency_key: Some(key),
                body: body.as_bytes(),
                correlation_id: "corr-1",
                now_ms,
                deadline_ms: now_ms + 10_000,
            })
            .await
    }

    /// The client's first attempt; the caller says how it is interrupted.
    async fn post(&self, token: &str) -> Reply {
        self.post_at(KEY, token, NOW_MS).await
    }

    /// The same request again, long after the first attempt's lease lapsed.
    async fn retry_late(&self, token: &str) -> Reply {
        self.post_at(KEY, token, NOW_MS + 3_600_000).await
    }

    /// A checkout charged at the gateway whose answer was lost (`tok_timeout`): 502, order open.
    async fn given_an_order_charged_but_interrupted(&self) -> OrderId {
        let reply = self.post("tok_timeout").await;
        assert_eq!((reply.status, problem(&reply).as_str()), (502, "payment-outcome-unknown"));
        self.only_new_order()
    }

    /// A checkout whose charge request never reached the gateway: 502, order open, nothing charged.
    async fn given_an_order_interrupted_before_its_charge(&self) -> OrderId {
        self.network.lose.store(1, Ordering::SeqCst);
        let reply = self.post("tok_visa").await;
        assert_eq!(reply.status, 502, "{}", reply.body);
        self.only_new_order()
    }

    /// An order opened with its stock reserved, as a checkout that stopped right after leaves it.
    async fn given_an_order_opened_directly(&self, quantity: u32) -> OrderId {
        let id = OrderId::new();
        let lines = vec![LineItem { sku: "MUG".into(), quantity, unit_price: Money::new(1250, Currency::EUR) }];
        let opened = OrderEvent::Opened {
            customer_id: "cust-1".into(),
            total: Money::new(1250 * i64::from(quantity), Currency::EUR),
            lines: lines.clone(),
            at: Utc::now(),
            correlation_id: format!("corr-{id}"),
        };
        let change = OrderChange {
            order_id: id,
            version: 1,
            event: &opened,
            stock: StockEffect::Reserve(&lines),
            outbox: None,
            correlation_id: "corr",
        };
        self.shop.commit(change).await.unwrap();
        id
    }

    fn only_new_order(&self) -> OrderId {
        let [id] = self.shop.order_ids()[..] else { panic!("expected exactly one order") };
        id
    }

    async fn order(&self, id: OrderId) -> Order {
        self.shop.load(id).await.unwrap().expect("the order exists")
    }

    fn placed_events_of(&self, id: OrderId) -> usize {
        self.bus.published().iter().filter(|e| e.detail.contains(&id.to_string())).count()
    }
}

/// The last segment of a problem answer's type URI (`order-expired`, ...).
fn problem(reply: &Reply) -> String {
    body(reply)["type"].as_str().and_then(|t| t.rsplit('/').next()).unwrap_or_default().to_owned()
}

fn payment_key(id: OrderId) -> String {
    format!("order-{id}")
}

/// The gateway as the checkout reaches it: the next `lose` charge requests are lost on the way
/// (no answer, nothing charged), as a connection that drops before the request is sent.
struct Network {
    gateway: Arc<SandboxGateway>,
    lose: AtomicU32,
}

#[async_trait]
impl PaymentGateway for Network {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        if self.lose.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err(PaymentError::Unknown("connection reset".into()));
        }
        self.gateway.charge(request).await
    }

    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError> {
        self.gateway.void(idempotency_key).await
    }

    async fn refund(&self, payment_key: &str, amount: Money) -> Result<Refund, PaymentError> {
        self.gateway.refund(payment_key, amount).await
    }
}

/// A port that yields to the scheduler before every call, so that two sweeps on one thread
/// interleave at every call instead of running one after the other.
struct Yielding<T: ?Sized>(Arc<T>);

#[async_trait]
impl OrderStore for Yielding<dyn OrderStore> {
    async fn history(&self, id: OrderId) -> Result<Vec<Recorded>, StoreError> {
        tokio::task::yield_now().await;
        self.0.history(id).await
    }

    async fn load(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        tokio::task::yield_now().await;
        self.0.load(id).await
    }

    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        tokio::task::yield_now().await;
        self.0.commit(change).await
    }

    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        tokio::task::yield_now().await;
        self.0.open_before(before, limit).await
    }
}

#[async_trait]
impl PaymentGateway for Yielding<dyn PaymentGateway> {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        tokio::task::yield_now().await;
        self.0.charge(request).await
    }

    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError> {
        tokio::task::yield_now().await;
        self.0.void(idempotency_key).await
    }

    async fn refund(&self, payment_key: &str, amount: Money) -> Result<Refund, PaymentError> {
        tokio::task::yield_now().await;
        self.0.refund(payment_key, amount).await
    }
}

// ---------------------------------------------------------------------------------------------
// Charged, then interrupted
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn given_an_order_charged_but_interrupted_when_the_sweeper_runs_then_it_is_placed() {
    let w = given_a_shop();
    let id = w.given_an_order_charged_but_interrupted().await;
    let report = w.sweep().await;
    assert_eq!((report.placed, report.expired, report.other, report.failed), (1, 0, 0, 0));
    let order = w.order(id).await;
    assert_eq!(order.status, OrderStatus::Placed);
    assert_eq!(order.charge_id, Some(format!("ch_{id}")), "the charge the gateway made");
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 8, reserved: 2 }, "the stock stays with the order");
}

#[tokio::test]
async fn given_an_order_charged_but_interrupted_when_the_sweeper_places_it_then_order_placed_is_published_once() {
    let w = given_a_shop();
    let id = w.given_an_order_charged_but_interrupted().await;
    w.sweep().await;
    let published = w.bus.published();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].source.as_str(), published[0].detail_type.as_str()), ("shop.checkout", "order.placed"));
    contracts::check_published(Sweeper::PUBLISHES, &published[0]).unwrap();
    let detail: Value = serde_json::from_str(&published[0].detail).unwrap();
    assert_eq!(detail["orderId"], id.to_string());
    assert_eq!(detail["correlationId"], "corr-1", "under the customer's correlation ID, not the sweeper's");
    assert_eq!(w.shop.outbox_len(), 0);
}

#[tokio::test]
async fn given_a_capture_that_failed_to_commit_after_the_charge_when_the_sweeper_runs_then_it_is_placed() {
    let w = given_a_shop();
    w.shop.fail_next_commit_of("PaymentCaptured");
    assert_eq!(w.post("tok_visa").await.status, 503);
    let id = w.only_new_order();
    assert_eq!(w.sweep().await.placed, 1);
    assert_eq!(w.order(id).await.status, OrderStatus::Placed);
    assert_eq!((w.placed_events_of(id), w.gateway.approved_charges()), (1, 1));
}

#[tokio::test]
async fn given_a_charged_order_the_sweeper_placed_when_the_client_retries_late_then_it_gets_201_and_no_second_charge() {
    let w = given_a_shop();
    let id = w.given_an_order_charged_but_interrupted().await;
    w.sweep().await;
    let retry = w.retry_late("tok_timeout").await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(
        (body(&retry)["orderId"].as_str(), body(&retry)["status"].as_str()),
        (Some(&*id.to_string()), Some("PLACED"))
    );
    assert_eq!(w.gateway.approved_charges(), 1);
    assert_eq!(w.placed_events_of(id), 1, "the retry does not publish it again");
}

// ---------------------------------------------------------------------------------------------
// Interrupted before any charge
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn given_an_order_never_charged_when_the_sweeper_runs_then_it_is_cancelled_as_expired() {
    let w = given_a_shop();
    let id = w.given_an_order_opened_directly(3).await;
    let report = w.sweep().await;
    assert_eq!((report.placed, report.expired, report.other, report.failed), (0, 1, 0, 0));
    let order = w.order(id).await;
    assert_eq!((order.status, order.cancel_reason), (OrderStatus::Cancelled, Some(CancelReason::Expired)));
}

#[tokio::test]
async fn given_an_order_never_charged_when_the_sweeper_cancels_it_then_its_stock_is_released_and_its_key_closed() {
    let w = given_a_shop();
    let id = w.given_an_order_opened_directly(3).await;
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 7, reserved: 3 });
    w.sweep().await;
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 10, reserved: 0 });
    assert_eq!(w.gateway.ledger().entry(&payment_key(id)), Some(LedgerEntry::Voided), "no later charge can succeed");
    assert!(w.bus.published().is_empty());
}

#[tokio::test]
async fn given_an_uncharged_order_the_sweeper_expired_when_the_client_retries_late_then_it_gets_409_order_expired_and_no_charge(
) {
    let w = given_a_shop();
    let id = w.given_an_order_interrupted_before_its_charge().await;
    assert_eq!(w.sweep().await.expired, 1);
    let retry = w.retry_late("tok_visa").await;
    assert_eq!((retry.status, problem(&retry).as_str()), (409, "order-expired"), "{}", retry.body);
    assert_eq!(w.gateway.approved_charges(), 0);
    assert_eq!(w.order(id).await.status, OrderStatus::Cancelled);
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 10, reserved: 0 });
}

// ---------------------------------------------------------------------------------------------
// What the sweeper leaves alone
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn given_orders_younger_than_the_grace_when_the_sweeper_runs_then_they_are_left_alone() {
    let w = given_a_shop();
    let charged = w.given_an_order_charged_but_interrupted().await;
    let uncharged = w.given_an_order_opened_directly(1).await;
    let report = w.sweeper().run_once(Utc::now(), &plenty_of_time()).await.unwrap();
    assert_eq!(report, SweepReport::default());
    assert_eq!(w.order(charged).await.status, OrderStatus::PendingPayment);
    assert_eq!(w.order(uncharged).await.status, OrderStatus::PendingPayment);
    assert_eq!(w.gateway.ledger().entry(&payment_key(uncharged)), None, "its key is still open for its own attempt");
}

#[tokio::test]
async fn given_a_sweep_that_settled_everything_when_a_second_sweep_runs_then_nothing_changes() {
    let w = given_a_shop();
    let charged = w.given_an_order_charged_but_interrupted().await;
    let uncharged = w.given_an_order_opened_directly(1).await;
    w.sweep().await;
    let histories = (w.shop.events(charged), w.shop.events(uncharged));
    let (stock, published) = (w.shop.stock("MUG"), w.bus.published().len());
    assert_eq!(w.sweep().await, SweepReport::default());
    assert_eq!((w.shop.events(charged), w.shop.events(uncharged)), histories);
    assert_eq!((w.shop.stock("MUG"), w.bus.published().len()), (stock, published));
}

#[tokio::test]
async fn given_a_placed_order_when_the_sweeper_runs_then_it_is_not_touched() {
    let w = given_a_shop();
    assert_eq!(w.post("tok_visa").await.status, 201);
    assert_eq!(w.sweep().await, SweepReport::default(), "a finished saga is not in the open-orders index");
}

// ---------------------------------------------------------------------------------------------
// Concurrency, failures, deadlines, metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn given_two_sweepers_running_at_once_then_each_order_is_settled_once() {
    let w = given_a_shop_where(|orders, payments| (Arc::new(Yielding(orders)), Arc::new(Yielding(payments))));
    let mut charged = Vec::new();
    for _ in 0..2 {
        let id = w.given_an_order_opened_directly(1).await;
        let order = w.order(id).await;
        let request = ChargeRequest {
            idempotency_key: order.payment_key(),
            order_id: id,
            amount: order.total,
            payment_token: "tok_visa".into(),
        };
        w.gateway.charge(&request).await.unwrap();
        charged.push(id);
    }
    let uncharged = [w.given_an_order_opened_directly(1).await, w.given_an_order_opened_directly(1).await];
    let (a, b) = (w.sweeper(), w.sweeper());
    let (now, deadline) = (after_the_grace(), plenty_of_time());
    let (first, second) = tokio::join!(a.run_once(now, &deadline), b.run_once(now, &deadline));
    let (first, second) = (first.unwrap(), second.unwrap());
    let handled = |r: &SweepReport| r.placed + r.expired + r.other;
    assert!(handled(&first) == 4 && handled(&second) == 4, "both sweeps met every order: {first:?} {second:?}");
    assert_eq!(first.failed + second.failed, 0);
    for id in charged.iter().chain(&uncharged) {
        assert_eq!(w.shop.events(*id).len(), 2, "one Opened and one final event for {id}");
    }
    for id in &charged {
        assert_eq!(w.order(*id).await.status, OrderStatus::Placed);
        assert_eq!(w.placed_events_of(*id), 1, "order.placed published once for {id}");
    }
    for id in &uncharged {
        assert_eq!(w.order(*id).await.cancel_reason, Some(CancelReason::Expired));
    }
    assert_eq!(w.bus.published().len(), 2);
    assert_eq!(w.gateway.approved_charges(), 2);
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 8, reserved: 2 }, "released once per expired order");
}

#[tokio::test]
async fn given_an_order_that_fails_to_settle_when_the_sweeper_runs_then_it_is_counted_and_the_others_are_settled() {
    let w = given_a_shop();
    let first = w.given_an_order_opened_directly(1).await;
    let second = w.given_an_order_opened_directly(1).await;
    w.shop.fail_next_commit_of("Cancelled");
    let report = w.sweep().await;
    assert_eq!((report.expired, report.failed), (1, 1));
    let statuses = [w.order(first).await.status, w.order(second).await.status];
    assert!(statuses.contains(&OrderStatus::PendingPayment) && statuses.contains(&OrderStatus::Cancelled));
}

#[tokio::test]
async fn given_an_order_that_failed_to_settle_when_the_next_sweep_runs_then_it_is_settled() {
    let w = given_a_shop();
    let id = w.given_an_order_opened_directly(1).await;
    w.shop.fail_next_commit_of("Cancelled");
    assert_eq!(w.sweep().await.failed, 1);
    assert_eq!(w.sweep().await.expired, 1);
    assert_eq!(w.order(id).await.cancel_reason, Some(CancelReason::Expired));
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 10, reserved: 0 });
}

#[tokio::test]
async fn given_a_deadline_within_the_margin_when_the_sweeper_runs_then_it_settles_nothing_and_says_so() {
    let w = given_a_shop();
    let id = w.given_an_order_opened_directly(1).await;
    let deadline = Deadline::at(SystemTime::now() + MARGIN - Duration::from_millis(1));
    let report = w.sweeper().run_once(after_the_grace(), &deadline).await.unwrap();
    assert_eq!(report, SweepReport { stopped_early: true, ..SweepReport::default() });
    assert_eq!(w.order(id).await.status, OrderStatus::PendingPayment);
}

#[tokio::test]
async fn given_a_run_that_reaches_its_margin_between_two_orders_then_it_stops_there() {
    let w = given_a_shop();
    for _ in 0..3 {
        w.given_an_order_opened_directly(1).await;
    }
    // The sweeper looks at the clock before the page and before each order; each look is a
    // second later. Looks at 0 s, 1 s, 2 s are in time; at 3 s less than the margin is left.
    let looks = Arc::new(AtomicU64::new(0));
    let clock = move || SystemTime::UNIX_EPOCH + Duration::from_secs(looks.fetch_add(1, Ordering::SeqCst));
    let deadline = Deadline::with_clock(SystemTime::UNIX_EPOCH + MARGIN + Duration::from_millis(2_500), clock);
    let report = w.sweeper().run_once(after_the_grace(), &deadline).await.unwrap();
    assert_eq!((report.expired, report.stopped_early), (2, true));
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 9, reserved: 1 }, "the third waits for the next run");
}

#[tokio::test]
async fn given_stuck_orders_when_the_sweeper_runs_then_it_reports_the_age_of_the_oldest() {
    let w = given_a_shop();
    w.given_an_order_opened_directly(1).await;
    let report = w.sweep().await;
    assert!(
        (GRACE_SECONDS..=GRACE_SECONDS + 2).contains(&report.oldest_open_age_seconds),
        "{}",
        report.oldest_open_age_seconds
    );
}

// ---------------------------------------------------------------------------------------------
// Metrics
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn given_a_charged_and_an_uncharged_stuck_order_when_the_sweeper_runs_then_one_metric_line_counts_both() {
    let w = given_a_shop();
    w.given_an_order_charged_but_interrupted().await;
    w.given_an_order_opened_directly(1).await;
    let (report, lines) = shared::telemetry::capture(w.sweep()).await;
    assert_eq!((report.placed, report.expired), (1, 1));
    assert_eq!(lines.len(), 1, "one line per run: {lines:?}");
    let of_the_sweeper = |name| shared::telemetry::sum(&lines, name, &[("service", "sweeper")]);
    let counts: Vec<f64> =
        ["OrdersSettledPlaced", "OrdersSettledExpired", "OrdersRefunded", "OrdersSettledOther", "OrdersSettleFailed"]
            .into_iter()
            .map(of_the_sweeper)
            .collect();
    assert_eq!(counts, vec![1.0, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(of_the_sweeper("OldestOpenOrderAgeSeconds"), report.oldest_open_age_seconds as f64);
}

#[tokio::test]
async fn given_nothing_stuck_when_the_sweeper_runs_then_it_still_reports_an_oldest_age_of_zero() {
    let w = given_a_shop();
    let (_, lines) = shared::telemetry::capture(w.sweep()).await;
    let oldest =
        lines.iter().flat_map(|l| shared::telemetry::datapoints(l)).find(|p| p.name == "OldestOpenOrderAgeSeconds");
    assert_eq!(oldest.map(|p| (p.unit, p.values)), Some(("Seconds".to_owned(), vec![0.0])));
}
