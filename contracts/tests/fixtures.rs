//! The events the consumers' tests are fed (`shared::testing`'s builders) are instances of the
//! contracts: a consumer is specified against events a producer could publish.

use shared::testing::{order_cancelled, order_delivered, order_placed, order_shipped};

#[test]
fn the_consumers_test_events_validate_against_their_schemas() {
    let placed = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2000)]);
    let outbound = [
        placed.to_outbound(),
        order_cancelled(&placed).to_outbound(),
        order_shipped(&placed).to_outbound(),
        order_delivered(&placed).to_outbound(),
    ];
    for event in outbound {
        let detail: serde_json::Value = serde_json::from_str(&event.detail).unwrap();
        contracts::validate_event(&event.source, &event.detail_type, &detail).unwrap();
    }
}
