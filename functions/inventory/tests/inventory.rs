//! Inventory, specified: a placed order's reservation leaves the shop once, and every ordered
//! SKU that runs low is announced, with an id that stays the same on every retry; a cancelled
//! order's stock comes back, whichever of its events arrives first.

use aws_lambda_events::event::sqs::SqsEvent;
use inventory::memory::{MemoryStock, Product};
use inventory::{movement_for, Inventory, InventoryEvents, Movement};
use shared::adapters::memory::MemoryBus;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::domain::EventId;
use shared::events::{Envelope, LowStockV1, OrderPlacedV2};
use shared::out_of_order::{Stage, Stages};
use shared::ports::ErrorKind;
use shared::testing::{
    eventbridge_body, failed_ids, order_cancelled, order_placed, order_placed_records, poison_ids, received_as,
    sample_batch, sqs_batch,
};

const NOW: i64 = 1_800_000_000_000;

type Subject = Inventory<MemoryStock, MemoryBus>;

/// The consumer and its dead-letter queue.
type Given = shared::testing::Given<Subject>;

fn given(stock: MemoryStock) -> Given {
    Given { consumer: Inventory { stock, bus: MemoryBus::default() }, dlq: MemoryDeadLetters::default() }
}

fn reserved(available: i64, reserved: i64, threshold: i64) -> Product {
    Product { available, reserved, threshold: Some(threshold) }
}

/// MUG is plentiful; CAP is below its threshold of 3 once its reservation is counted.
fn given_stock() -> Given {
    let stock = MemoryStock::default()
        .with("MUG", reserved(98, 2, 10))
        .with("CAP", reserved(2, 3, 3))
        .with("TEE", reserved(49, 1, 5));
    given(stock)
}

async fn deliver(given: &Given, bodies: &[String]) -> Vec<String> {
    failed_ids(&handle_batch(&given.consumer, &given.dlq, &sqs_batch(bodies), NOW, NOW + 10_000).await)
}

fn warnings(consumer: &Subject) -> Vec<Envelope<LowStockV1>> {
    consumer
        .bus
        .published()
        .iter()
        .map(|out| serde_json::from_str(&out.detail).expect("the bus holds our own events"))
        .collect()
}

fn warning_ids(consumer: &Subject) -> Vec<EventId> {
    let mut ids: Vec<EventId> = warnings(consumer).iter().map(|w| w.event_id).collect();
    ids.sort();
    ids.dedup();
    ids
}

#[tokio::test]
async fn a_placed_order_takes_its_quantities_out_of_reserved_stock() {
    let consumer = given_stock();
    let event = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2000)]);
    assert!(deliver(&consumer, &[eventbridge_body(&event)]).await.is_empty());
    assert_eq!(consumer.stock.product("MUG"), Some(reserved(98, 0, 10)), "available was taken at checkout");
    assert_eq!(consumer.stock.product("TEE"), Some(reserved(49, 0, 5)));
}

#[tokio::test]
async fn skus_at_or_above_their_threshold_are_not_announced() {
    let consumer = given_stock();
    deliver(&consumer, &[eventbridge_body(&order_placed("ada", &[("MUG", 2, 1250)]))]).await;
    assert!(consumer.bus.published().is_empty());
}

#[tokio::test]
async fn a_sku_below_its_threshold_is_announced_as_low_stock() {
    let consumer = given_stock();
    let event = order_placed("ada", &[("MUG", 1, 1250), ("CAP", 3, 1800)]);
    deliver(&consumer, &[eventbridge_body(&event)]).await;
    let published = consumer.bus.published();
    assert_eq!(published.len(), 1);
    assert_eq!(
        (published[0].source.as_str(), published[0].detail_type.as_str()),
        ("shop.inventory", "inventory.low-stock")
    );
    let warning = &warnings(&consumer)[0];
    assert_eq!(warning.data, LowStockV1 { sku: "CAP".into(), available: 2, threshold: 3 });
    assert_eq!((warning.order_id, warning.correlation_id.as_str()), (event.order_id, event.correlation_id.as_str()));
}

#[tokio::test]
async fn a_duplicate_delivery_changes_no_stock_and_announces_nothing_again() {
    let consumer = given_stock();
    let body = eventbridge_body(&order_placed("ada", &[("CAP", 3, 1800)]));
    deliver(&consumer, std::slice::from_ref(&body)).await;
    assert!(deliver(&consumer, &[body]).await.is_empty(), "a duplicate is skipped, not failed");
    assert_eq!(consumer.stock.product("CAP"), Some(reserved(2, 0, 3)));
    assert_eq!(consumer.bus.published().len(), 1);
}

#[tokio::test]
async fn ten_concurrent_deliveries_commit_once_and_announce_one_event_id() {
    let consumer = given_stock();
    let body = eventbridge_body(&order_placed("ada", &[("CAP", 3, 1800)]));
    let runs = (0..10).map(|_| deliver(&consumer, std::slice::from_ref(&body)));
    let failures: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    assert_eq!(failures, 0, "the losers of the transaction are duplicates, not failures");
    assert_eq!(consumer.stock.product("CAP"), Some(reserved(2, 0, 3)));
    // Every delivery passed the marker check before one committed, so each published: the
    // same event, which its consumers drop as duplicates.
    assert!(consumer.bus.published().len() > 1);
    assert_eq!(warning_ids(&consumer).len(), 1);
}

#[tokio::test]
async fn when_the_bus_is_down_nothing_is_committed_and_the_retry_republishes_the_same_event() {
    let consumer = given_stock();
    let body = eventbridge_body(&order_placed("ada", &[("CAP", 3, 1800)]));
    consumer.bus.fail_next_calls(inventory::PUBLISH_BACKOFF.attempts);
    assert_eq!(deliver(&consumer, std::slice::from_ref(&body)).await, vec!["m0"]);
    assert_eq!(consumer.stock.product("CAP"), Some(reserved(2, 3, 3)), "no commit without the warning");
    assert!(deliver(&consumer, &[body]).await.is_empty());
    assert_eq!(consumer.stock.product("CAP"), Some(reserved(2, 0, 3)));
    assert_eq!(warning_ids(&consumer).len(), 1);
}

#[tokio::test]
async fn a_commit_that_fails_after_publishing_republishes_the_same_id_on_retry() {
    let consumer = given_stock();
    let body = eventbridge_body(&order_placed("ada", &[("CAP", 3, 1800)]));
    consumer.stock.fail_next_commits(1);
    assert_eq!(deliver(&consumer, std::slice::from_ref(&body)).await, vec!["m0"]);
    assert!(deliver(&consumer, &[body]).await.is_empty());
    assert_eq!(consumer.bus.published().len(), 2, "published on both attempts");
    assert_eq!(warning_ids(&consumer).len(), 1, "as one event");
    assert_eq!(consumer.stock.product("CAP"), Some(reserved(2, 0, 3)));
}

#[tokio::test]
async fn an_order_without_a_reservation_is_dead_lettered_at_once_and_takes_nothing() {
    let consumer = given_stock();
    let bodies = [
        eventbridge_body(&order_placed("ada", &[("MUG", 1, 1250)])),
        eventbridge_body(&order_placed("grace", &[("TEE", 1, 2000), ("MUG", 5, 1250)])),
        eventbridge_body(&order_placed("linus", &[("TEE", 1, 2000)])),
    ];
    assert!(deliver(&consumer, &bodies).await.is_empty(), "reported handled: no receive is spent on it");
    assert_eq!(consumer.stock.product("MUG"), Some(reserved(98, 1, 10)));
    assert_eq!(consumer.stock.product("TEE"), Some(reserved(49, 0, 5)), "TEE went to linus, not to the failed order");
    assert_eq!(consumer.stock.records(), 2);
    let dead = consumer.dlq.sent();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].source_message_id.as_str(), dead[0].kind), ("m1", ErrorKind::Permanent));
    assert_eq!(dead[0].body.as_deref(), Some(bodies[1].as_str()));
    assert!(dead[0].reason.contains("no reservation"), "{}", dead[0].reason);
}

#[tokio::test]
async fn an_order_with_more_skus_than_a_transaction_holds_is_dead_lettered_at_once() {
    let skus: Vec<String> = (0..=inventory::MAX_SKUS_PER_ORDER).map(|i| format!("SKU-{i}")).collect();
    let lines: Vec<(&str, u32, i64)> = skus.iter().map(|sku| (sku.as_str(), 1, 100)).collect();
    let consumer = given_stock();
    assert!(deliver(&consumer, &[eventbridge_body(&order_placed("ada", &lines))]).await.is_empty());
    assert_eq!(consumer.dlq.message_ids(), vec!["m0"]);
    assert_eq!(consumer.stock.records(), 0);
}

#[tokio::test]
async fn a_permanent_failure_the_dlq_refuses_is_reported_failed() {
    let consumer = given_stock();
    consumer.dlq.fail_next(1);
    let body = eventbridge_body(&order_placed("grace", &[("MUG", 5, 1250)]));
    assert_eq!(deliver(&consumer, &[body]).await, vec!["m0"], "it reaches the DLQ after its receives");
    assert!(consumer.dlq.sent().is_empty());
}

#[tokio::test]
async fn a_poison_record_next_to_a_good_one_is_dead_lettered_alone() {
    let consumer = given_stock();
    let good = eventbridge_body(&order_placed("ada", &[("MUG", 2, 1250)]));
    assert!(deliver(&consumer, &["not json".to_owned(), good]).await.is_empty());
    assert_eq!(consumer.dlq.message_ids(), vec!["m0"]);
    assert_eq!(consumer.stock.product("MUG"), Some(reserved(98, 0, 10)));
}

/// Stock reserved for every order of a sample, so that each of its good records can succeed.
fn given_reservations_of(batch: &SqsEvent) -> Given {
    let mut stock = MemoryStock::default();
    let orders: Vec<Envelope<OrderPlacedV2>> = order_placed_records(batch).into_iter().map(|(_, e)| e).collect();
    for line in orders.iter().flat_map(|o| o.data.lines.iter()) {
        let held = stock.product(line.sku.as_str()).map_or(0, |p| p.reserved);
        stock = stock.with(line.sku.as_str(), reserved(100, held + i64::from(line.quantity), 10));
    }
    given(stock)
}

#[tokio::test]
async fn the_sample_event_commits_without_failures() {
    let batch = sample_batch("inventory-order-placed.json");
    let consumer = given_reservations_of(&batch);
    assert!(!batch.records.is_empty());
    assert!(failed_ids(&handle_batch(&consumer.consumer, &consumer.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(consumer.stock.records(), batch.records.len());
    assert!(consumer.dlq.sent().is_empty());
}

#[tokio::test]
async fn the_poison_sample_dead_letters_only_its_bad_records() {
    let batch = sample_batch("consumer-poison.json");
    let consumer = given_reservations_of(&batch);
    let poison = poison_ids(&batch);
    assert!(!poison.is_empty(), "the poison sample carries at least one bad record");
    assert!(failed_ids(&handle_batch(&consumer.consumer, &consumer.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(consumer.dlq.message_ids(), poison);
}

// ---- Cancellations, in either order of arrival. ----

fn applied(given: &Given, event: &Envelope<OrderPlacedV2>) -> Stages {
    given.stock.order_record("inventory", event.order_id).applied
}

#[tokio::test]
async fn a_cancellation_after_the_order_restocks_what_it_committed() {
    // Given a placed order whose reservation was committed
    let inventory = given_stock();
    let placed = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2000)]);
    deliver(&inventory, &[eventbridge_body(&placed)]).await;
    // When its cancellation arrives
    assert!(deliver(&inventory, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    // Then what it committed is available again
    assert_eq!(inventory.stock.product("MUG"), Some(reserved(100, 0, 10)));
    assert_eq!(inventory.stock.product("TEE"), Some(reserved(50, 0, 5)));
}

#[tokio::test]
async fn a_cancellation_before_the_order_releases_its_reservation_and_leaves_a_tombstone() {
    let inventory = given_stock();
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    assert!(deliver(&inventory, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    assert_eq!(inventory.stock.product("MUG"), Some(reserved(100, 0, 10)), "reserved back to available");
    assert_eq!(applied(&inventory, &placed), [Stage::Cancelled].into_iter().collect());
}

#[tokio::test]
async fn an_order_arriving_after_its_cancellation_is_skipped_and_moves_nothing() {
    let inventory = given_stock();
    let placed = order_placed("ada", &[("CAP", 3, 1800)]);
    deliver(&inventory, &[eventbridge_body(&order_cancelled(&placed))]).await;
    assert!(deliver(&inventory, &[eventbridge_body(&placed)]).await.is_empty(), "skipped, not failed");
    assert_eq!(inventory.stock.product("CAP"), Some(reserved(5, 0, 3)));
    assert!(inventory.bus.published().is_empty(), "a void order announces no low stock");
    assert!(inventory.dlq.sent().is_empty());
}

#[tokio::test]
async fn a_duplicate_cancellation_restocks_once() {
    let inventory = given_stock();
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    let cancelled = eventbridge_body(&order_cancelled(&placed));
    deliver(&inventory, &[eventbridge_body(&placed), cancelled.clone()]).await;
    assert!(deliver(&inventory, &[cancelled]).await.is_empty());
    assert_eq!(inventory.stock.product("MUG"), Some(reserved(100, 0, 10)));
}

#[tokio::test]
async fn both_orders_of_arrival_end_with_the_same_stock() {
    let (in_order, reversed) = (given_stock(), given_stock());
    let placed = order_placed("ada", &[("MUG", 2, 1250), ("CAP", 3, 1800), ("TEE", 1, 2000)]);
    let (p, c) = (eventbridge_body(&placed), eventbridge_body(&order_cancelled(&placed)));
    deliver(&in_order, &[p.clone(), c.clone()]).await;
    deliver(&reversed, &[c, p]).await;
    for sku in ["MUG", "CAP", "TEE"] {
        assert_eq!(in_order.stock.product(sku), reversed.stock.product(sku), "{sku}");
    }
}

#[tokio::test]
async fn an_order_and_its_cancellation_delivered_at_once_converge() {
    let inventory = given_stock();
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    let (p, c) = ([eventbridge_body(&placed)], [eventbridge_body(&order_cancelled(&placed))]);
    let (a, b) = futures::join!(deliver(&inventory, &p), deliver(&inventory, &c));
    assert!(a.is_empty() && b.is_empty(), "the loser of the race is retried in place");
    assert_eq!(inventory.stock.product("MUG"), Some(reserved(100, 0, 10)));
}

#[tokio::test]
async fn a_cancellation_whose_reservation_is_missing_is_dead_lettered_and_moves_nothing() {
    let inventory = given_stock();
    let placed = order_placed("grace", &[("TEE", 1, 2000), ("MUG", 5, 1250)]);
    assert!(deliver(&inventory, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    assert_eq!(inventory.stock.product("TEE"), Some(reserved(49, 1, 5)), "all lines or none");
    assert_eq!(inventory.stock.product("MUG"), Some(reserved(98, 2, 10)));
    assert_eq!(inventory.dlq.message_ids(), vec!["m0"]);
    assert!(applied(&inventory, &placed).is_empty(), "no tombstone without its release");
}

#[tokio::test]
async fn a_restock_of_a_product_that_is_gone_is_dead_lettered() {
    let inventory = given_stock();
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    deliver(&inventory, &[eventbridge_body(&placed)]).await;
    let gone = order_placed("ada", &[("GONE", 1, 100)]);
    let restock = Envelope { order_id: placed.order_id, ..order_cancelled(&gone) };
    assert!(deliver(&inventory, &[eventbridge_body(&restock)]).await.is_empty());
    let dead = inventory.dlq.sent();
    assert!(dead.len() == 1 && dead[0].reason.contains("GONE"), "{dead:?}");
    assert_eq!(inventory.stock.product("GONE"), None, "no product item is created by a restock");
}

#[test]
fn placed_commits_and_a_cancellation_restocks_or_releases_as_placed_was_applied_or_not() {
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    let (p, c): (Envelope<InventoryEvents>, Envelope<InventoryEvents>) =
        (received_as(&placed), received_as(&order_cancelled(&placed)));
    assert_eq!(movement_for(&p.data, Stages::NONE), Movement::Commit);
    assert_eq!(movement_for(&c.data, [Stage::Placed].into_iter().collect()), Movement::Restock);
    assert_eq!(movement_for(&c.data, Stages::NONE), Movement::Release);
}

#[test]
fn a_cancellation_combines_its_lines_per_sku_as_placed_does() {
    let placed = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2000), ("MUG", 1, 1250)]);
    let c: Envelope<InventoryEvents> = received_as(&order_cancelled(&placed));
    assert_eq!(c.data.lines().unwrap(), vec![("MUG".into(), 3), ("TEE".into(), 1)]);
}

#[tokio::test]
async fn the_cancellation_sample_releases_its_reservation_without_failures() {
    let batch = sample_batch("inventory-order-cancelled.json");
    let inventory = given(MemoryStock::default().with("MUG", reserved(10, 2, 1)).with("TEE", reserved(10, 1, 1)));
    assert!(failed_ids(&handle_batch(&inventory.consumer, &inventory.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert!(inventory.dlq.sent().is_empty());
    assert_eq!(inventory.stock.product("MUG"), Some(reserved(12, 0, 1)));
}
