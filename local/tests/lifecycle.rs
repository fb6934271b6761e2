//! The order's life after checkout, end to end on the local twin: commands through the
//! emulated API Gateway, lifecycle events through the bus to the consumers, and the read model
//! fed by the orders table's stream through the emulated stream event source.

use aws_sdk_dynamodb::types::AttributeValue;
mod support;

use local::demo::options;
use local::probe::{customer, eventually, As, Probe};
use local::system::{LocalSystem, Mode};
use serde_json::{json, Value};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(40);

/// The customer's listed view of `order_id` once it reached `version`.
async fn listed(probe: &Probe, customer: &str, order_id: &str, version: u64) -> Option<Value> {
    eventually(PATIENCE, || async {
        let list =
            probe.get(&As::Customer(customer.to_owned()), &format!("/customers/{customer}/orders")).await.ok()?;
        let orders = list.body["orders"].as_array()?.clone();
        orders.into_iter().find(|o| o["orderId"] == order_id && o["version"].as_u64() >= Some(version))
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_a_placed_order_when_shipped_delivered_or_cancelled_then_every_side_agrees() {
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    let contracts = support::watch(&system);
    let probe = Probe::new(&system);

    // Shipped, then delivered: the history has four events and the read model follows.
    let placed = probe.place_order("life-1", "cust-ada", &[("MUG", 1)], "tok_visa").await.unwrap();
    let id = placed.body["orderId"].as_str().unwrap().to_owned();
    let shipment = json!({"carrier": "DHL", "trackingId": "JD0146000000001"});
    let shipped = probe.post(&As::Staff, &format!("/orders/{id}/shipments"), "life-ship", &shipment).await.unwrap();
    assert_eq!((shipped.status, shipped.body["status"].as_str()), (200, Some("SHIPPED")), "{}", shipped.body);
    let delivered =
        probe.post(&As::Staff, &format!("/orders/{id}/delivery"), "life-deliver", &json!({})).await.unwrap();
    assert_eq!(delivered.body["status"], "DELIVERED", "{}", delivered.body);
    let other = json!({"carrier": "DHL", "trackingId": "JD0146000000002"});
    let late = probe.post(&As::Staff, &format!("/orders/{id}/shipments"), "life-ship-late", &other).await.unwrap();
    assert_eq!((late.status, late.body["orderStatus"].as_str()), (409, Some("DELIVERED")), "{}", late.body);
    let ada = customer("cust-ada");
    let history = probe.get(&ada, &format!("/orders/{id}/events")).await.unwrap();
    let types: Vec<&str> =
        history.body["events"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(types, ["Opened", "PaymentCaptured", "Shipped", "Delivered"]);
    let captured_at = history.body["events"][1]["at"].as_str().unwrap().to_owned();
    let then = probe.get(&ada, &format!("/orders/{id}?asOf={captured_at}")).await.unwrap();
    assert_eq!((then.body["status"].as_str(), then.body["version"].as_u64()), (Some("PLACED"), Some(2)));
    let view = listed(&probe, "cust-ada", &id, 4).await.expect("the projection reaches version 4");
    assert_eq!(view["status"], "DELIVERED");

    // Cancelled by the customer: one refund, the stock back, the points taken back.
    let points = probe.loyalty_points("cust-linus").await.unwrap();
    let regret = probe.place_order("life-2", "cust-linus", &[("TEE", 2)], "tok_visa").await.unwrap();
    let regret_id = regret.body["orderId"].as_str().unwrap().to_owned();
    let credited =
        eventually(PATIENCE, || async { probe.loyalty_points("cust-linus").await.ok().filter(|p| *p > points) }).await;
    assert_eq!(credited, Some(points + 40));
    let linus = customer("cust-linus");
    let cancelled =
        probe.post(&linus, &format!("/orders/{regret_id}/cancel"), "life-cancel", &json!({})).await.unwrap();
    assert_eq!((cancelled.status, cancelled.body["status"].as_str()), (200, Some("CANCELLED")), "{}", cancelled.body);
    let again = probe.post(&linus, &format!("/orders/{regret_id}/cancel"), "life-cancel-2", &json!({})).await.unwrap();
    assert_eq!(again.body["refund"], cancelled.body["refund"], "the same answer, one refund");
    let reversed =
        eventually(PATIENCE, || async { probe.loyalty_points("cust-linus").await.ok().filter(|p| *p == points) }).await;
    assert_eq!(reversed, Some(points), "the credit was taken back");
    let restocked = eventually(PATIENCE, || async { probe.stock("TEE").await.ok().filter(|s| *s == (50, 0)) }).await;
    assert_eq!(restocked, Some((50, 0)), "the order's two TEEs are back on the shelf");
    let view = listed(&probe, "cust-linus", &regret_id, 4).await.expect("the projection reaches the refund");
    assert_eq!(view["status"], "CANCELLED");

    assert!(contracts.check() > 0, "events were delivered and checked against their contracts");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_event_item_the_projector_can_never_apply_then_it_is_retried_described_on_the_failure_queue_and_passed(
) {
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    let contracts = support::watch(&system);
    let probe = Probe::new(&system);

    // An item in the event store that is no event (written around the order store).
    let corrupt = shared::domain::OrderId::new().to_string();
    probe
        .dynamodb
        .put_item()
        .table_name(probe.output("OrdersTableName"))
        .item("orderId", AttributeValue::S(corrupt.clone()))
        .item("version", AttributeValue::N("1".into()))
        .item("type", AttributeValue::S("Opened".into()))
        .item("event", AttributeValue::S("not an event".into()))
        .send()
        .await
        .unwrap();

    // Lambda retries it (MaximumRetryAttempts 3), then describes the batch on the failure queue.
    let described =
        eventually(PATIENCE, || async { probe.peek("OrderProjectorFailureQueueUrl").await.ok()?.into_iter().next() })
            .await
            .expect("the batch is described on the on-failure destination");
    let info = &described["DDBStreamBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["streamArn"], probe.output("OrdersTableStreamArn"));
    assert_eq!(described["requestContext"]["condition"], "RetryAttemptsExhausted");
    assert_eq!(described["requestContext"]["approximateInvokeCount"], 4, "the first try and 3 retries");

    // The shard moves on: a later order is projected.
    let placed = probe.place_order("after-corrupt", "cust-grace", &[("MUG", 1)], "tok_visa").await.unwrap();
    let id = placed.body["orderId"].as_str().unwrap();
    assert!(listed(&probe, "cust-grace", id, 2).await.is_some(), "the order after the bad record is projected");

    assert!(contracts.check() > 0, "events were delivered and checked against their contracts");
    system.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_stages_throttling_when_a_burst_exceeds_it_then_api_gateway_answers_429_and_invokes_nothing() {
    let mut options = options(Mode::InProcess);
    options.parameters.push(("ApiThrottlingRateLimit".into(), "1".into()));
    options.parameters.push(("ApiThrottlingBurstLimit".into(), "2".into()));
    let system = LocalSystem::start(options).await.expect("the local system starts");
    let probe = Probe::new(&system);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(probe.get(&customer("cust-ada"), "/orders/01HZX3G7Q2V1N8K4T6R9M5B0CD").await.unwrap());
    }
    let codes: Vec<u16> = statuses.iter().map(|a| a.status).collect();
    assert_eq!(&codes[..2], [404, 404], "the burst passes (an unknown order)");
    assert!(codes[2..].contains(&429), "beyond the burst: {codes:?}");
    let throttled = statuses.iter().find(|a| a.status == 429).unwrap();
    assert_eq!(throttled.body, json!({"message": "Too Many Requests"}));
    system.stop().await;
}
