//! Every event the checkout and the warehouse's commands publish, through an order's whole
//! life, is an instance of its committed contract (`schemas/events/`).

mod common;

use common::*;
use shared::events::Outbound;

/// Everything published over orders' whole life: one placed, shipped and delivered, one placed
/// and cancelled (and refunded).
async fn an_orders_whole_life() -> Vec<Outbound> {
    let world = given_a_shop();
    let delivered = world.given_a_shipped_order().await;
    assert_eq!(world.deliver(delivered, "deliver-1").await.status, 200);
    let cancelled = world.given_a_placed_order().await;
    assert_eq!(world.cancel(cancelled, "cancel-1").await.status, 200);
    world.bus.published()
}

#[tokio::test]
async fn every_event_published_over_an_orders_life_validates_against_its_schema() {
    let published = an_orders_whole_life().await;
    let mut failures = Vec::new();
    for event in &published {
        let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap();
        if let Err(e) = contracts::validate_event(&event.source, &event.detail_type, &detail) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The AsyncAPI document names the producer of each event from `PUBLISHES`: an order's whole
/// life publishes exactly what the checkout and the fulfilment functions declare.
#[tokio::test]
async fn what_an_orders_life_publishes_is_exactly_what_the_two_functions_declare() {
    use checkout::{Checkout, Fulfilment};
    use std::collections::BTreeSet;
    let published: BTreeSet<(String, String, u64)> = an_orders_whole_life()
        .await
        .iter()
        .map(|e| {
            let detail: serde_json::Value = serde_json::from_str(&e.detail).unwrap();
            (e.source.clone(), e.detail_type.clone(), detail["version"].as_u64().unwrap())
        })
        .collect();
    let declared: BTreeSet<(String, String, u64)> = Checkout::PUBLISHES
        .iter()
        .chain(Fulfilment::PUBLISHES)
        .map(|(s, t, v)| ((*s).to_owned(), (*t).to_owned(), u64::from(*v)))
        .collect();
    assert_eq!(published, declared);
}
