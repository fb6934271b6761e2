//! The low-stock warning inventory publishes is an instance of its committed contract
//! (`schemas/events/inventory.low-stock.v1.json`).

use inventory::memory::{MemoryStock, Product};
use inventory::Inventory;
use shared::adapters::memory::MemoryBus;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::testing::{eventbridge_body, order_placed, sqs_batch};

const NOW: i64 = 1_800_000_000_000;

#[tokio::test]
async fn a_low_stock_warning_validates_against_its_schema() {
    let stock = MemoryStock::default().with("CAP", Product { available: 2, reserved: 3, threshold: Some(3) });
    let inventory = Inventory { stock, bus: MemoryBus::default() };
    let body = eventbridge_body(&order_placed("ada", &[("CAP", 3, 1800)]));
    handle_batch(&inventory, &MemoryDeadLetters::default(), &sqs_batch(&[body]), NOW, NOW + 10_000).await;

    let published = inventory.bus.published();
    assert_eq!(published.len(), 1, "one warning");
    for event in &published {
        contracts::check_published(inventory::PUBLISHES, event).unwrap();
    }
}
