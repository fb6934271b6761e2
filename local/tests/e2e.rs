//! End to end, on the local twin of the stack: HTTP in through the emulated API Gateway (its
//! JWT authorizer, with tokens of the local issuer), events through the emulator's bus, rules
//! and queues to every consumer, and the resulting state read back from the emulator.
//! Deadlines with polling, never fixed sleeps.

mod support;

use local::demo::{options, CONSUMERS};
use local::probe::{customer, eventually, As, Probe};
use local::system::{LocalSystem, Mode};
use serde_json::Value;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(40);

/// The consumers that handled `order_id`'s event successfully before the deadline.
async fn all_consumers_done(
    rx: &mut tokio::sync::broadcast::Receiver<local::poller::Observation>,
    order_id: &str,
) -> Vec<String> {
    support::consumers_done(rx, order_id, PATIENCE).await.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shop_works_end_to_end_on_the_local_stack() {
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    let contracts = support::watch(&system);
    let probe = Probe::new(&system);
    let mut rx = system.observations.subscribe();

    // A good order: 201, then every consumer does its part once.
    let good = probe.place_order("e2e-good", "cust-ada", &[("MUG", 2), ("TEE", 1)], "tok_visa").await.unwrap();
    assert_eq!(good.status, 201, "{}", good.body);
    let order_id = good.body["orderId"].as_str().unwrap().to_owned();
    assert_eq!(good.header("location"), Some(format!("/orders/{order_id}").as_str()));
    let done = all_consumers_done(&mut rx, &order_id).await;
    assert_eq!(done.len(), CONSUMERS.len(), "consumers that finished: {done:?}");
    assert_eq!(probe.loyalty_points("cust-ada").await.unwrap(), 45);
    assert_eq!(probe.stock("MUG").await.unwrap(), (98, 0), "the reservation became a committed decrement");
    assert_eq!(probe.emails_sent().await.unwrap(), 1);
    // The one public route needs no token.
    let recommendations = probe.get(&As::Nobody, "/products/MUG/recommendations").await.unwrap();
    assert_eq!(recommendations.status, 200);
    assert_eq!(recommendations.body["recommendations"][0]["sku"], "TEE");
    let order = probe.get(&customer("cust-ada"), &format!("/orders/{order_id}")).await.unwrap();
    assert_eq!((order.status, order.body["status"].as_str()), (200, Some("PLACED")));

    // The same request again: the first answer, replayed; nothing charged or reserved twice.
    let again = probe.place_order("e2e-good", "cust-ada", &[("MUG", 2), ("TEE", 1)], "tok_visa").await.unwrap();
    assert_eq!((again.status, &again.body), (201, &good.body));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(probe.stock("MUG").await.unwrap(), (98, 0));

    // A declined card: 402 and stock exactly as before.
    let hoodie = probe.stock("HOODIE").await.unwrap();
    let declined =
        probe.place_order("e2e-declined", "cust-grace", &[("HOODIE", 1)], "tok_chargeDeclined").await.unwrap();
    assert_eq!(declined.status, 402);
    assert_eq!(declined.header("content-type"), Some("application/problem+json"));
    assert_eq!(probe.stock("HOODIE").await.unwrap(), hoodie);

    // More than the stock: 409 naming the SKU, nothing reserved.
    let short = probe.place_order("e2e-short", "cust-grace", &[("CAP", 6), ("STICKER", 1)], "tok_visa").await.unwrap();
    assert_eq!(short.status, 409);
    assert_eq!(short.body["skus"], serde_json::json!(["CAP"]));
    assert_eq!(probe.stock("STICKER").await.unwrap(), (500, 0));

    // A consumer that keeps failing for one order: retried, then kept in its DLQ, intact;
    // the other consumers are not held up.
    let ghost = probe.place_order("e2e-ghost", "cust-ghost", &[("POSTER", 1)], "tok_mastercard").await.unwrap();
    assert_eq!(ghost.status, 201);
    let ghost_id = ghost.body["orderId"].as_str().unwrap().to_owned();
    let dead: Option<Value> = eventually(PATIENCE, || async {
        let bodies = probe.peek("EmailDeadLetterQueueUrl").await.ok()?;
        bodies.into_iter().find(|b| b["detail"]["orderId"].as_str() == Some(ghost_id.as_str()))
    })
    .await;
    let dead = dead.expect("the failing e-mail reaches the e-mail DLQ");
    assert_eq!(dead["detail-type"], "order.placed");
    assert_eq!(dead["detail"]["data"]["customerId"], "cust-ghost");
    let credited =
        eventually(PATIENCE, || async { probe.loyalty_points("cust-ghost").await.ok().filter(|p| *p == 9) }).await;
    assert_eq!(credited, Some(9), "loyalty was not held up");
    for other in ["Analytics", "Inventory", "Loyalty", "Recommendations"] {
        assert_eq!(probe.depth(&format!("{other}DeadLetterQueueUrl")).await.unwrap(), 0, "{other} DLQ");
    }

    // A duplicate order.placed on the bus: delivered, and skipped by every consumer.
    let mut rx = system.observations.subscribe();
    let original = probe.place_order("e2e-dup", "cust-linus", &[("STICKER", 3)], "tok_visa").await.unwrap();
    let dup_id = original.body["orderId"].as_str().unwrap().to_owned();
    let mut first = Vec::new();
    while first.len() < CONSUMERS.len() {
        let obs = tokio::time::timeout(PATIENCE, rx.recv()).await.expect("deliveries").unwrap();
        if obs.order_id.as_deref() == Some(dup_id.as_str())
            && obs.succeeded
            && CONSUMERS.contains(&obs.function.as_str())
        {
            first.push(obs);
        }
    }
    let envelope = first[0].detail.clone().expect("the message carried our envelope");
    let (points, emails, analytics) = (
        probe.loyalty_points("cust-linus").await.unwrap(),
        probe.emails_sent().await.unwrap(),
        probe.scan("AnalyticsTableName").await.unwrap(),
    );
    probe.put_on_bus("shop.checkout", "order.placed", &envelope).await.unwrap();
    let done = all_consumers_done(&mut rx, &dup_id).await;
    assert_eq!(done.len(), CONSUMERS.len(), "the duplicate was delivered to every consumer: {done:?}");
    assert_eq!(probe.loyalty_points("cust-linus").await.unwrap(), points);
    assert_eq!(probe.emails_sent().await.unwrap(), emails);
    assert_eq!(probe.scan("AnalyticsTableName").await.unwrap(), analytics);
    assert_eq!(probe.stock("STICKER").await.unwrap(), (497, 0));

    // What API Gateway itself answers: an unknown route.
    let unknown = probe.get(&As::Nobody, "/nowhere").await.unwrap();
    assert_eq!((unknown.status, unknown.body["message"].as_str()), (404, Some("Not Found")));

    assert!(contracts.check() > 0, "events were delivered and checked against their contracts");
    system.stop().await;
}

/// The stack's identity end to end: API Gateway's authorizer in front (no token: 401, no
/// function runs; a customer on a staff route: 403), the functions behind it acting on the
/// token's subject (another customer's order does not exist for them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_local_issuer_then_only_its_tokens_open_the_api_and_each_customer_sees_their_own() {
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    let probe = Probe::new(&system);
    assert_eq!(system.outputs()["JwtIssuerUrl"], system.tokens.issuer(), "the stack trusts the local issuer");

    // Without a token: API Gateway's own answer, not a function's (theirs is problem+json),
    // and nothing happened: no order, no idempotency record.
    let body =
        serde_json::json!({"items": [{"sku": "MUG", "quantity": 1}], "paymentToken": "tok_visa", "currency": "EUR"});
    let refused = probe.post(&As::Nobody, "/orders", "auth-nobody", &body).await.unwrap();
    assert_eq!((refused.status, &refused.body), (401, &serde_json::json!({"message": "Unauthorized"})));
    assert_eq!(refused.header("content-type"), Some("application/json"));
    assert!(probe.scan("OrdersTableName").await.unwrap().is_empty(), "no order was opened");
    assert!(probe.scan("IdempotencyTableName").await.unwrap().is_empty(), "the checkout never ran");

    // With cust-ada's token the order is hers; cust-grace cannot see it, staff can.
    let placed = probe.place_order("auth-ada", "cust-ada", &[("MUG", 1)], "tok_visa").await.unwrap();
    assert_eq!(placed.status, 201, "{}", placed.body);
    let path = format!("/orders/{}", placed.body["orderId"].as_str().unwrap());
    assert_eq!(probe.get(&customer("cust-ada"), &path).await.unwrap().status, 200);
    let hidden = probe.get(&customer("cust-grace"), &path).await.unwrap();
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    assert_eq!(probe.get(&customer("cust-grace"), &format!("{path}/events")).await.unwrap().status, 404);
    assert_eq!(probe.get(&As::Staff, &path).await.unwrap().status, 200, "staff may read any order");
    let listed = probe.get(&customer("cust-grace"), "/customers/cust-ada/orders").await.unwrap();
    assert_eq!(listed.status, 404, "{}", listed.body);

    // A customer on a staff route: refused by the authorizer's scope check.
    let shipment = serde_json::json!({"carrier": "UPS", "trackingId": "1Z1"});
    let forbidden =
        probe.post(&customer("cust-ada"), &format!("{path}/shipments"), "auth-ship", &shipment).await.unwrap();
    assert_eq!((forbidden.status, &forbidden.body), (403, &serde_json::json!({"message": "Forbidden"})));

    // A token from another issuer (the same claims, signed by a key the stack does not trust).
    let stranger = local::oidc::Tokens::new(system.tokens.issuer(), local::oidc::generate_key().await.unwrap());
    let forged = stranger.access_token("cust-ada", None).unwrap();
    let answer = probe.http.get(format!("{}{path}", probe.api_url)).bearer_auth(&forged).send().await.unwrap();
    assert_eq!(answer.status(), 401);

    system.stop().await;
}
