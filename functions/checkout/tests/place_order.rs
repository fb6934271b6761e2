//! The checkout, specified with in-memory ports: given a shop, when a request arrives, then
//! the answer, the stock, the order and the bus are as a customer and the business expect.

use checkout::service::{PostOrder, Reply};
use checkout::{Checkout, Ports};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop, StockLevel};
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::auth::Caller;
use shared::domain::pricing::Product;
use shared::domain::{CancelReason, Currency, CustomerId, Money, OrderEvent, OrderId, OrderStatus};
use shared::ports::OrderStore;
use std::sync::Arc;

struct World {
    shop: Arc<MemoryShop>,
    bus: Arc<MemoryBus>,
    gateway: Arc<SandboxGateway>,
    keys: Arc<MemoryIdempotency>,
    checkout: Checkout,
}

fn product(sku: &str, cents: i64) -> Product {
    Product { sku: sku.into(), name: format!("A {sku}"), unit_price: Money::new(cents, Currency::EUR) }
}

/// A shop selling mugs (12.50, 10 in stock) and tees (20.00, 3 in stock).
fn given_a_shop() -> World {
    let shop =
        Arc::new(MemoryShop::default().with_product(product("MUG", 1250), 10).with_product(product("TEE", 2000), 3));
    let bus = Arc::new(MemoryBus::default());
    let gateway = Arc::new(SandboxGateway::in_memory());
    let keys = Arc::new(MemoryIdempotency::default());
    let checkout = Checkout::new(
        Ports {
            catalogue: shop.clone(),
            orders: shop.clone(),
            outbox: shop.clone(),
            publisher: bus.clone(),
            payments: gateway.clone(),
        },
        keys.clone(),
    );
    World { shop, bus, gateway, keys, checkout }
}

fn order_body(token: &str) -> Value {
    json!({
        "items": [{"sku": "MUG", "quantity": 2}, {"sku": "TEE", "quantity": 1}],
        "paymentToken": token,
        "currency": "EUR",
    })
}

const NOW: i64 = 1_800_000_000_000;

/// The signed-in customer placing the orders.
fn cust_1() -> Caller {
    Caller { subject: CustomerId("cust-1".into()), staff: false }
}

impl World {
    async fn post_raw(&self, key: Option<&str>, content_type: Option<&str>, body: &[u8]) -> Reply {
        self.checkout
            .post_order(PostOrder {
                caller: &cust_1(),
                content_type,
                idempotency_key: key,
                body,
                correlation_id: "corr-1",
                now_ms: NOW,
                deadline_ms: NOW + 10_000,
            })
            .await
    }

    async fn post(&self, key: &str, body: &Value) -> Reply {
        self.post_at(key, body, NOW).await
    }

    async fn post_at(&self, key: &str, body: &Value, now_ms: i64) -> Reply {
        self.post_by(&cust_1(), key, body, now_ms).await
    }

    async fn post_by(&self, caller: &Caller, key: &str, body: &Value, now_ms: i64) -> Reply {
        self.checkout
            .post_order(PostOrder {
                caller,
                content_type: Some("application/json"),
                idempotency_key: Some(key),
                body: body.to_string().as_bytes(),
                correlation_id: "corr-1",
                now_ms,
                deadline_ms: now_ms + 10_000,
            })
            .await
    }

    fn untouched_stock(&self) {
        assert_eq!(self.shop.stock("MUG"), StockLevel { available: 10, reserved: 0 });
        assert_eq!(self.shop.stock("TEE"), StockLevel { available: 3, reserved: 0 });
    }
}

fn body(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap()
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn order_id(reply: &Reply) -> OrderId {
    body(reply)["orderId"].as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn a_good_order_is_placed_and_answered_201_with_its_location() {
    let w = given_a_shop();
    let reply = w.post("k1", &order_body("tok_visa")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = order_id(&reply);
    assert_eq!(header(&reply, "location"), Some(format!("/orders/{id}").as_str()));
    assert_eq!(body(&reply), json!({"orderId": id.to_string(), "status": "PLACED", "total": 4500, "currency": "EUR"}));
}

#[tokio::test]
async fn a_good_order_reserves_its_stock() {
    let w = given_a_shop();
    w.post("k1", &order_body("tok_mastercard")).await;
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 8, reserved: 2 });
    assert_eq!(w.shop.stock("TEE"), StockLevel { available: 2, reserved: 1 });
}

#[tokio::test]
async fn prices_come_from_the_catalogue_not_the_client() {
    let w = given_a_shop();
    let mut cheeky = order_body("tok_visa");
    cheeky["items"][0]["unitPrice"] = json!(1);
    cheeky["total"] = json!(1);
    let reply = w.post("k1", &cheeky).await;
    assert_eq!(body(&reply)["total"], 4500);
}

#[tokio::test]
async fn a_placed_order_publishes_one_small_order_placed_event_and_empties_the_outbox() {
    let w = given_a_shop();
    let id = order_id(&w.post("k1", &order_body("tok_visa")).await);
    let published = w.bus.published();
    assert_eq!(published.len(), 1);
    assert_eq!((published[0].source.as_str(), published[0].detail_type.as_str()), ("shop.checkout", "order.placed"));
    let detail: Value = serde_json::from_str(&published[0].detail).unwrap();
    assert_eq!(detail["orderId"], id.to_string());
    assert_eq!(detail["correlationId"], "corr-1");
    assert_eq!(detail["version"], 2);
    let eur = |amount: i64| json!({"amount": amount, "currency": "EUR"});
    assert_eq!(detail["data"]["lines"][0], json!({"sku": "MUG", "quantity": 2, "unitPrice": eur(1250)}));
    assert_eq!(detail["data"]["total"], eur(4500));
    assert_eq!(w.shop.outbox_len(), 0);
}

#[tokio::test]
async fn the_order_is_stored_as_its_events() {
    let w = given_a_shop();
    let id = order_id(&w.post("k1", &order_body("tok_visa")).await);
    let names: Vec<&str> = w.shop.events(id).iter().map(OrderEvent::name).collect();
    assert_eq!(names, ["Opened", "PaymentCaptured"]);
}

#[tokio::test]
async fn the_same_request_again_replays_the_first_answer_and_charges_once() {
    let w = given_a_shop();
    let first = w.post("k1", &order_body("tok_visa")).await;
    let again = w.post("k1", &order_body("tok_visa")).await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
    assert_eq!(w.gateway.approved_charges(), 1);
    assert_eq!(w.shop.stock("MUG").reserved, 2, "stock is reserved once");
    assert_eq!(w.bus.published().len(), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_422() {
    let w = given_a_shop();
    w.post("k1", &order_body("tok_visa")).await;
    let mut other = order_body("tok_visa");
    other["items"][0]["quantity"] = json!(3);
    let reply = w.post("k1", &other).await;
    assert_eq!(reply.status, 422);
    assert_eq!(body(&reply)["type"], "https://shop.example/problems/idempotency-key-reused");
    assert_eq!(w.shop.order_count(), 1);
}

#[tokio::test]
async fn a_request_whose_key_is_still_in_progress_is_answered_409() {
    let w = given_a_shop();
    // Given an attempt that stopped half-way and still holds the key under its lease.
    w.shop.fail_next_commit_of("PaymentCaptured");
    assert_eq!(w.post("k1", &order_body("tok_visa")).await.status, 503);
    // When the same request comes in before that lease lapses.
    let reply = w.post("k1", &order_body("tok_visa")).await;
    assert_eq!(reply.status, 409);
    assert_eq!(header(&reply, "retry-after"), Some("1"));
    assert_eq!(w.gateway.approved_charges(), 1);
}

#[tokio::test]
async fn a_declined_card_is_answered_402_and_the_stock_is_exactly_as_before() {
    let w = given_a_shop();
    let reply = w.post("k1", &order_body("tok_chargeDeclined")).await;
    assert_eq!(reply.status, 402);
    assert_eq!(header(&reply, "content-type"), Some("application/problem+json"));
    w.untouched_stock();
    assert!(w.bus.published().is_empty());
}

#[tokio::test]
async fn a_declined_order_is_kept_as_cancelled_with_its_reason() {
    let w = given_a_shop();
    w.post("k1", &order_body("tok_insufficientFunds")).await;
    let [id] = w.shop.order_ids()[..] else { panic!("expected exactly one order") };
    let order = w.shop.load(id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Cancelled);
    assert_eq!(order.cancel_reason, Some(CancelReason::PaymentDeclined { code: "insufficient_funds".into() }));
}

#[tokio::test]
async fn a_declined_answer_is_replayed_not_recharged() {
    let w = given_a_shop();
    let first = w.post("k1", &order_body("tok_chargeDeclined")).await;
    let again = w.post("k1", &order_body("tok_chargeDeclined")).await;
    assert_eq!((again.status, again.body), (402, first.body));
    assert_eq!(w.shop.order_count(), 1);
}

#[tokio::test]
async fn a_gateway_failure_is_answered_502_releases_stock_and_frees_the_key() {
    let w = given_a_shop();
    let reply = w.post("k1", &order_body("tok_processingError")).await;
    assert_eq!(reply.status, 502);
    w.untouched_stock();
    assert!(w.keys.is_empty(), "the key is released so that a retry runs again");
}

#[tokio::test]
async fn a_retry_after_a_gateway_failure_runs_again() {
    let w = given_a_shop();
    w.post("k1", &order_body("tok_processingError")).await;
    let retry = w.post("k1", &order_body("tok_processingError")).await;
    assert_eq!(retry.status, 502);
    assert!(header(&retry, "idempotent-replayed").is_none());
    assert_eq!(w.shop.order_count(), 2, "each attempt opened and cancelled its own order");
    w.untouched_stock();
}

#[tokio::test]
async fn not_enough_stock_is_409_naming_the_skus_and_reserves_nothing() {
    let w = given_a_shop();
    let mut big = order_body("tok_visa");
    big["items"][1]["quantity"] = json!(4);
    let reply = w.post("k1", &big).await;
    assert_eq!(reply.status, 409);
    assert_eq!(body(&reply)["skus"], json!(["TEE"]));
    w.untouched_stock();
    assert_eq!(w.gateway.approved_charges(), 0);
}

#[tokio::test]
async fn unknown_skus_are_422_naming_them() {
    let w = given_a_shop();
    let mut body_v = order_body("tok_visa");
    body_v["items"][1]["sku"] = json!("NOPE");
    let reply = w.post("k1", &body_v).await;
    assert_eq!(reply.status, 422);
    assert_eq!(body(&reply)["skus"], json!(["NOPE"]));
    w.untouched_stock();
}

#[tokio::test]
async fn an_invalid_body_is_400_with_field_errors_and_changes_nothing() {
    let w = given_a_shop();
    let reply = w.post("k1", &json!({"items": [{"sku": "MUG", "quantity": 0}], "currency": "EUR"})).await;
    assert_eq!(reply.status, 400);
    assert_eq!(header(&reply, "content-type"), Some("application/problem+json"));
    let problem = body(&reply);
    let pointers: Vec<&str> =
        problem["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap()).collect();
    assert_eq!(pointers, ["/items/0/quantity", "/paymentToken"]);
    w.untouched_stock();
    assert!(w.keys.is_empty(), "validation failures are not remembered");
}

#[tokio::test]
async fn malformed_json_is_400() {
    let w = given_a_shop();
    assert_eq!(w.post_raw(Some("k"), Some("application/json"), b"{\"customerId\":").await.status, 400);
}

#[tokio::test]
async fn a_missing_idempotency_key_is_400() {
    let w = given_a_shop();
    let reply = w.post_raw(None, Some("application/json"), order_body("tok_visa").to_string().as_bytes()).await;
    assert_eq!(reply.status, 400);
    assert_eq!(body(&reply)["errors"][0]["pointer"], "header:Idempotency-Key");
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let w = given_a_shop();
    let huge = vec![b' '; 64 * 1024 + 1];
    assert_eq!(w.post_raw(Some("k"), Some("application/json"), &huge).await.status, 413);
}

#[tokio::test]
async fn a_non_json_content_type_is_415() {
    let w = given_a_shop();
    let reply = w.post_raw(Some("k"), Some("text/plain"), order_body("tok_visa").to_string().as_bytes()).await;
    assert_eq!(reply.status, 415);
}

#[tokio::test]
async fn entries_the_bus_refuses_are_retried_and_published_once() {
    let w = given_a_shop();
    // PutEvents answers 200 with FailedEntryCount = 1 once, then accepts.
    w.bus.refuse_next_entries(1);
    let reply = w.post("k1", &order_body("tok_visa")).await;
    assert_eq!(reply.status, 201);
    assert_eq!(w.bus.published().len(), 1);
    assert_eq!(w.bus.put_calls(), 2);
    assert_eq!(w.shop.outbox_len(), 0);
}

#[tokio::test]
async fn when_the_bus_stays_down_the_order_is_still_placed_and_the_event_waits_in_the_outbox() {
    let w = given_a_shop();
    w.bus.fail_next_calls(u32::MAX);
    let reply = w.post("k1", &order_body("tok_visa")).await;
    assert_eq!(reply.status, 201);
    assert_eq!(w.shop.outbox_len(), 1, "the relay will publish it");
}

#[tokio::test]
async fn a_store_fault_while_opening_is_503_and_a_later_retry_resumes_the_same_order() {
    let w = given_a_shop();
    w.shop.fail_next_commits(1);
    let failed = w.post("k1", &order_body("tok_visa")).await;
    assert_eq!(failed.status, 503);
    // The key is kept (the transaction's outcome was unknown); once its lease lapses a retry resumes.
    let later = w.post_at("k1", &order_body("tok_visa"), NOW + 20_000).await;
    assert_eq!(later.status, 201, "{}", later.body);
    assert_eq!(w.shop.order_count(), 1);
    assert_eq!(w.shop.stock("MUG").reserved, 2);
}

#[tokio::test]
async fn a_crash_after_charging_is_resumed_by_the_retry_without_charging_or_reserving_again() {
    let w = given_a_shop();
    // Given an attempt that reserved and charged, then failed to record the capture.
    w.shop.fail_next_commit_of("PaymentCaptured");
    assert_eq!(w.post("k1", &order_body("tok_visa")).await.status, 503);
    let [id] = w.shop.order_ids()[..] else { panic!("expected exactly one order") };
    // When the client retries after the lease lapsed.
    let retry = w.post_at("k1", &order_body("tok_visa"), NOW + 20_000).await;
    // Then the same order is completed, charged once, reserved once.
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(order_id(&retry), id);
    assert_eq!(w.gateway.approved_charges(), 1);
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 8, reserved: 2 });
    assert_eq!(w.bus.published().len(), 1);
}

#[tokio::test]
async fn get_returns_the_order_folded_from_its_events() {
    let w = given_a_shop();
    let id = order_id(&w.post("k1", &order_body("tok_visa")).await);
    let reply = w.checkout.get_order(&cust_1(), &id.to_string(), None).await;
    assert_eq!(reply.status, 200);
    let order = body(&reply);
    assert_eq!(order["status"], "PLACED");
    assert_eq!(order["lines"].as_array().unwrap().len(), 2);
    assert_eq!(order["version"], 2);
}

#[tokio::test]
async fn get_of_an_unknown_or_malformed_id_is_404_problem() {
    let w = given_a_shop();
    for id in [OrderId::new().to_string(), "not-an-id".to_owned()] {
        let reply = w.checkout.get_order(&cust_1(), &id, None).await;
        assert_eq!(reply.status, 404);
        assert_eq!(header(&reply, "content-type"), Some("application/problem+json"));
    }
}

#[tokio::test]
async fn given_a_signed_in_customer_when_they_order_then_the_order_is_theirs() {
    let w = given_a_shop();
    let id = order_id(&w.post("k1", &order_body("tok_visa")).await);
    let order = w.shop.load(id).await.unwrap().unwrap();
    assert_eq!(order.customer_id, CustomerId("cust-1".into()));
}

#[tokio::test]
async fn given_a_body_naming_another_customer_when_posted_then_400_and_nothing_is_reserved_or_charged() {
    let w = given_a_shop();
    for named in [json!("cust-2"), json!("c\u{0}\u{202e}")] {
        let mut body = order_body("tok_visa");
        body["customerId"] = named;
        let reply = w.post("k1", &body).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
        assert_eq!(self::body(&reply)["errors"][0]["pointer"], "/customerId");
    }
    w.untouched_stock();
    assert_eq!(w.gateway.approved_charges(), 0);
    assert!(w.bus.published().is_empty());
}

#[tokio::test]
async fn given_two_customers_using_the_same_idempotency_key_then_each_gets_their_own_order_never_the_others_answer() {
    let w = given_a_shop();
    let cust_2 = Caller { subject: CustomerId("cust-2".into()), staff: false };

    let first = w.post("shared-key", &order_body("tok_visa")).await;
    let second = w.post_by(&cust_2, "shared-key", &order_body("tok_visa"), NOW).await;

    assert_eq!((first.status, second.status), (201, 201));
    assert_eq!(header(&second, "idempotent-replayed"), None, "not a replay of cust-1's answer");
    let (a, b) = (order_id(&first), order_id(&second));
    assert_ne!(a, b);
    assert_eq!(w.shop.load(b).await.unwrap().unwrap().customer_id, cust_2.subject);
}
