//! Every event the checkout and the warehouse's commands publish, through an order's whole
//! life, is an instance of its committed contract (`schemas/events/`).

mod common;

use common::*;

#[tokio::test]
async fn every_event_published_over_an_orders_life_validates_against_its_schema() {
    let world = given_a_shop();
    let delivered = world.given_a_shipped_order().await;
    assert_eq!(world.deliver(delivered, "deliver-1").await.status, 200);
    let cancelled = world.given_a_placed_order().await;
    assert_eq!(world.cancel(cancelled, "cancel-1").await.status, 200);

    let published = world.bus.published();
    let mut failures = Vec::new();
    for event in &published {
        let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap();
        if let Err(e) = contracts::validate_event(&event.source, &event.detail_type, &detail) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let mut types: Vec<&str> = published.iter().map(|e| e.detail_type.as_str()).collect();
    types.sort();
    types.dedup();
    assert_eq!(types, ["order.cancelled", "order.delivered", "order.placed", "order.shipped", "payment.refunded"]);
}
