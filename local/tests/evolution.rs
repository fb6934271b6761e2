//! An event's next version, end to end on the local twin. The checkout publishes `order.placed`
//! v2; an order announced as v1 before the upgrade (what an outbox, a dead-letter queue or the
//! archive still delivers afterwards) goes through the same rules to every consumer, which reads
//! it through the one upcast (`OrderPlacedV2::read`) and does exactly what it does for v2.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use local::demo::{options, CONSUMERS};
use local::probe::{As, Probe};
use local::system::{LocalSystem, Mode};
use serde_json::Value;
use shared::events::{Envelope, OrderPlacedV2};
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(40);
const BASKET: [(&str, u32); 2] = [("STICKER", 3), ("POSTER", 1)];

/// What the old checkout did before announcing an order: reserve its stock (the same update
/// as `shared::adapters::dynamodb::orders`' reservation).
async fn reserve(probe: &Probe, sku: &str, quantity: u32) {
    probe
        .dynamodb
        .update_item()
        .table_name(probe.output("ProductsTableName"))
        .key("sku", AttributeValue::S(sku.into()))
        .update_expression("SET available = available - :q, reserved = reserved + :q")
        .condition_expression("available >= :q")
        .expression_attribute_values(":q", AttributeValue::N(quantity.to_string()))
        .send()
        .await
        .unwrap();
}

/// How many times `other` was bought with `sku`, as the recommendations API says.
async fn bought_with(probe: &Probe, sku: &str, other: &str) -> u64 {
    let answer = probe.get(&As::Nobody, &format!("/products/{sku}/recommendations")).await.unwrap();
    let all = answer.body["recommendations"].as_array().cloned().unwrap_or_default();
    all.iter().find(|r| r["sku"] == other).and_then(|r| r["count"].as_u64()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_order_announced_as_v1_before_the_upgrade_then_every_consumer_does_what_it_does_for_v2() {
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    let probe = Probe::new(&system);
    let contracts = support::watch(&system);
    let mut rx = system.observations.subscribe();
    let stock_before = (probe.stock("STICKER").await.unwrap(), probe.stock("POSTER").await.unwrap());

    // Given an order placed now: the checkout announces it as v2.
    let placed = probe.place_order("evolution-v2", "cust-grace", &BASKET, "tok_visa").await.unwrap();
    assert_eq!(placed.status, 201, "{}", placed.body);
    let (done, detail) = support::consumers_done(&mut rx, placed.body["orderId"].as_str().unwrap(), PATIENCE).await;
    assert_eq!(done.len(), CONSUMERS.len(), "consumers that handled the v2 event: {done:?}");
    let v2_detail = detail.expect("the consumers were delivered the envelope");
    assert_eq!(v2_detail["version"], 2);
    let (grace_points, emails, paired) = (
        probe.loyalty_points("cust-grace").await.unwrap(),
        probe.emails_sent().await.unwrap(),
        bought_with(&probe, "STICKER", "POSTER").await,
    );
    assert!(grace_points > 0 && paired >= 1);

    // When the same basket, for another customer, arrives as the checkout announced orders
    // before v2: its stock reserved, then order.placed v1 on the bus.
    let mut v2: Envelope<OrderPlacedV2> = Envelope::from_detail(&v2_detail).unwrap();
    v2.event_id = shared::domain::EventId::new();
    v2.order_id = shared::domain::OrderId::new();
    v2.correlation_id = "corr-before-the-upgrade".into();
    v2.data.customer_id = "cust-linus".into();
    let v1 = shared::testing::as_v1(&v2);
    for (sku, quantity) in BASKET {
        reserve(&probe, sku, quantity).await;
    }
    let v1_detail: Value = serde_json::to_value(&v1).unwrap();
    assert_eq!((v1_detail["version"].as_u64(), v1_detail["data"]["total"].is_i64()), (Some(1), true));
    probe.put_on_bus("shop.checkout", "order.placed", &v1_detail).await.unwrap();

    // Then every consumer handles it, and its effects are those of the v2 order.
    let (done, _) = support::consumers_done(&mut rx, &v1.order_id.to_string(), PATIENCE).await;
    assert_eq!(done.len(), CONSUMERS.len(), "consumers that handled the v1 event: {done:?}");
    assert_eq!(probe.loyalty_points("cust-linus").await.unwrap(), grace_points, "the same points for the same total");
    assert_eq!(probe.emails_sent().await.unwrap(), emails + 1, "a receipt");
    assert_eq!(bought_with(&probe, "STICKER", "POSTER").await, paired + 1, "the pair counted again");
    for (sku, (available, reserved)) in [("STICKER", stock_before.0), ("POSTER", stock_before.1)] {
        let quantity = i64::from(BASKET.iter().find(|(s, _)| *s == sku).unwrap().1);
        assert_eq!(
            probe.stock(sku).await.unwrap(),
            (available - 2 * quantity, reserved),
            "{sku}: both orders' reservations committed"
        );
    }
    for dlq in ["Email", "Inventory", "Analytics", "Loyalty", "Recommendations"] {
        assert_eq!(probe.depth(&format!("{dlq}DeadLetterQueueUrl")).await.unwrap(), 0, "{dlq} DLQ");
    }
    assert!(contracts.check() >= 2 * CONSUMERS.len(), "both versions checked against their own schemas");
    system.stop().await;
}
