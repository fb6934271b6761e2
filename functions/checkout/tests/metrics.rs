//! What the checkout tells CloudWatch, specified with in-memory ports: given a shop, when an
//! order is placed, refused, replayed or cannot be published, then the metric lines its
//! request emits say so (read back as CloudWatch reads them, from a capture, not stdout).

use checkout::saga::Outcome;
use checkout::service::{rejection_reason, PostOrder, Reply};
use checkout::{Checkout, Ports};
use serde_json::{json, Value};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::auth::Caller;
use shared::domain::pricing::Product;
use shared::domain::{Currency, CustomerId, Money};
use shared::telemetry::{capture, datapoints, sum};
use std::sync::Arc;

const NOW: i64 = 1_800_000_000_000;
const REASONS: [&str; 6] =
    ["unknown-sku", "currency-not-offered", "unpriceable", "insufficient-stock", "payment-declined", "order-expired"];

struct World {
    bus: Arc<MemoryBus>,
    checkout: Checkout,
}

/// A shop selling mugs at 12.50, 10 in stock, in euros only.
fn given_a_shop() -> World {
    let mug = Product { sku: "MUG".into(), name: "A mug".into(), unit_price: Money::new(1250, Currency::EUR) };
    let shop = Arc::new(MemoryShop::default().with_product(mug, 10));
    let bus = Arc::new(MemoryBus::default());
    let ports = Ports {
        catalogue: shop.clone(),
        orders: shop.clone(),
        outbox: shop,
        publisher: bus.clone(),
        payments: Arc::new(SandboxGateway::in_memory()),
    };
    World { bus, checkout: Checkout::new(ports, Arc::new(MemoryIdempotency::default())) }
}

fn order(sku: &str, quantity: u32, currency: &str, token: &str) -> Value {
    json!({"items": [{"sku": sku, "quantity": quantity}], "paymentToken": token, "currency": currency})
}

impl World {
    /// Posts `body` under `key` and returns the reply with the metric lines the request emitted.
    async fn post(&self, key: &str, body: &Value) -> (Reply, Vec<String>) {
        let caller = Caller { subject: CustomerId("cust-1".into()), staff: false };
        let body = body.to_string();
        let request = PostOrder {
            caller: &caller,
            content_type: Some("application/json"),
            idempotency_key: Some(key),
            body: body.as_bytes(),
            correlation_id: "corr-metrics",
            now_ms: NOW,
            deadline_ms: NOW + 10_000,
        };
        capture(self.checkout.post_order(request)).await
    }
}

fn of_the_checkout(lines: &[String], name: &str) -> f64 {
    sum(lines, name, &[("service", "checkout")])
}

fn rejected_for(lines: &[String], reason: &str) -> f64 {
    sum(lines, "OrdersRejected", &[("service", "checkout"), ("reason", reason)])
}

/// The steps measured, in the order the lines hold them.
fn steps(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .flat_map(|l| datapoints(l))
        .filter(|p| p.name == "SagaStepMilliseconds")
        .map(|p| {
            assert_eq!(p.unit, "Milliseconds");
            assert!(p.values.iter().all(|v| *v >= 0.0), "{p:?}");
            assert!(!p.dimensions.contains_key("reason"), "a step is not broken down by reason: {p:?}");
            p.dimensions.get("step").cloned().expect("under [service, step] only")
        })
        .collect()
}

fn problem_type(reply: &Reply) -> String {
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    body["type"].as_str().and_then(|t| t.rsplit('/').next()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn given_a_good_order_when_it_is_placed_then_it_counts_as_placed_and_every_step_is_timed() {
    let w = given_a_shop();
    let (reply, lines) = w.post("k1", &order("MUG", 2, "EUR", "tok_visa")).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!((of_the_checkout(&lines, "OrdersPlaced"), of_the_checkout(&lines, "OrdersRejected")), (1.0, 0.0));
    assert_eq!(steps(&lines), vec!["price", "reserve", "charge", "commit", "publish"]);
}

#[tokio::test]
async fn given_orders_refused_for_each_reason_the_shop_can_give_then_each_counts_under_its_reason() {
    let w = given_a_shop();
    let cases = [
        ("k-unknown", order("TEAPOT", 1, "EUR", "tok_visa"), "unknown-sku"),
        ("k-currency", order("MUG", 1, "USD", "tok_visa"), "currency-not-offered"),
        ("k-stock", order("MUG", 11, "EUR", "tok_visa"), "insufficient-stock"),
        ("k-declined", order("MUG", 1, "EUR", "tok_chargeDeclined"), "payment-declined"),
    ];
    for (key, body, reason) in cases {
        let (reply, lines) = w.post(key, &body).await;
        assert_eq!(problem_type(&reply), reason, "the reason is the answer's problem type");
        assert_eq!(rejected_for(&lines, reason), 1.0, "{reason}: {lines:?}");
        assert_eq!(of_the_checkout(&lines, "OrdersRejected"), 1.0, "{reason}: the total counts it once");
        assert_eq!(of_the_checkout(&lines, "OrdersPlaced"), 0.0);
        for other in REASONS.iter().filter(|r| **r != reason) {
            assert_eq!(rejected_for(&lines, other), 0.0, "{reason} is not {other}");
        }
    }
}

#[tokio::test]
async fn given_a_refusal_before_anything_is_reserved_then_only_the_price_step_is_timed() {
    let w = given_a_shop();
    let (_, lines) = w.post("k1", &order("TEAPOT", 1, "EUR", "tok_visa")).await;
    assert_eq!(steps(&lines), vec!["price"]);
}

#[tokio::test]
async fn given_a_declined_payment_then_the_steps_up_to_the_charge_are_timed() {
    let w = given_a_shop();
    let (_, lines) = w.post("k1", &order("MUG", 1, "EUR", "tok_chargeDeclined")).await;
    assert_eq!(steps(&lines), vec!["price", "reserve", "charge"]);
}

#[test]
fn every_final_answer_but_placed_has_its_catalogued_reason() {
    let outcomes = [
        Outcome::UnknownSkus(vec!["X".into()]),
        Outcome::NotSoldIn(vec!["X".into()]),
        Outcome::Unpriceable("overflow".into()),
        Outcome::OutOfStock(vec!["X".into()]),
        Outcome::Declined { code: "card_declined".into() },
        Outcome::Expired,
    ];
    let reasons: Vec<&str> = outcomes.iter().filter_map(rejection_reason).collect();
    assert_eq!(reasons, REASONS);
}

#[tokio::test]
async fn given_the_same_request_again_when_its_answer_is_replayed_then_it_counts_as_a_replay_not_an_order() {
    let w = given_a_shop();
    let body = order("MUG", 1, "EUR", "tok_visa");
    let (_, first) = w.post("k1", &body).await;
    assert_eq!(of_the_checkout(&first, "IdempotentReplays"), 0.0);
    let (replay, lines) = w.post("k1", &body).await;
    assert_eq!(replay.headers.iter().find(|(n, _)| n == "idempotent-replayed").map(|(_, v)| v.as_str()), Some("true"));
    assert_eq!(of_the_checkout(&lines, "IdempotentReplays"), 1.0);
    assert_eq!(of_the_checkout(&lines, "OrdersPlaced"), 0.0, "the order was placed once");
    assert!(steps(&lines).is_empty(), "no saga ran");
}

#[tokio::test]
async fn given_a_refusal_replayed_then_it_is_not_counted_as_a_second_rejection() {
    let w = given_a_shop();
    let body = order("MUG", 11, "EUR", "tok_visa");
    w.post("k1", &body).await;
    let (_, lines) = w.post("k1", &body).await;
    assert_eq!((of_the_checkout(&lines, "IdempotentReplays"), of_the_checkout(&lines, "OrdersRejected")), (1.0, 0.0));
}

#[tokio::test]
async fn given_a_bus_that_refuses_the_event_then_the_order_is_placed_and_put_events_failed_counts_it() {
    let w = given_a_shop();
    w.bus.refuse_next_entries(u32::MAX);
    let (reply, lines) = w.post("k1", &order("MUG", 1, "EUR", "tok_visa")).await;
    assert_eq!(reply.status, 201, "the outbox relay publishes it later");
    assert_eq!(of_the_checkout(&lines, "PutEventsFailed"), 1.0);
    assert_eq!(of_the_checkout(&lines, "OrdersPlaced"), 1.0);
}

#[tokio::test]
async fn given_a_bus_that_takes_the_event_then_no_put_events_failure_is_counted() {
    let w = given_a_shop();
    let (_, lines) = w.post("k1", &order("MUG", 1, "EUR", "tok_visa")).await;
    assert_eq!(of_the_checkout(&lines, "PutEventsFailed"), 0.0);
}

#[tokio::test]
async fn given_a_payment_outcome_unknown_then_the_attempt_counts_neither_placed_nor_rejected() {
    let w = given_a_shop();
    let (reply, lines) = w.post("k1", &order("MUG", 1, "EUR", "tok_timeout")).await;
    assert_eq!(reply.status, 502);
    assert_eq!((of_the_checkout(&lines, "OrdersPlaced"), of_the_checkout(&lines, "OrdersRejected")), (0.0, 0.0));
    assert_eq!(steps(&lines), vec!["price", "reserve", "charge"], "the steps it ran are still timed");
}
