//! The inventory adapters against the local emulator (moto server), built from the template's
//! environment of InventoryFunction exactly as Lambda builds them.

use aws_sdk_dynamodb::types::AttributeValue;
use inventory::dynamo::DynamoStock;
use inventory::{CommitError, Inventory, Level, Stock};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::config::Env;
use shared::consumer::{handle_batch, Delivery};
use shared::domain::{EventId, Sku};
use shared::ports::Applied;
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};

use testkit::shared as aws;

async fn given_the_deployed_consumer() -> Inventory<DynamoStock, EventBridgePublisher> {
    let env = Env(aws().stack.function("InventoryFunction").environment.clone());
    Inventory::from_env(&env, &aws().emulator.sdk_config().await).expect("the template sets every variable")
}

/// A product only this test uses, with a reservation held for an order.
async fn given_product(stock: &DynamoStock, available: i64, reserved: i64, threshold: i64) -> Sku {
    let sku = format!("T-{}", EventId::new());
    let n = |v: i64| AttributeValue::N(v.to_string());
    stock
        .client
        .put_item()
        .table_name(&stock.products_table)
        .item("sku", AttributeValue::S(sku.clone()))
        .item("available", n(available))
        .item("reserved", n(reserved))
        .item("lowStockThreshold", n(threshold))
        .send()
        .await
        .unwrap();
    Sku(sku)
}

async fn reserved(stock: &DynamoStock, sku: &Sku) -> i64 {
    let out = stock
        .client
        .get_item()
        .table_name(&stock.products_table)
        .key("sku", AttributeValue::S(sku.0.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item().and_then(|i| i.get("reserved")).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap()
}

fn marker(event_id: EventId) -> shared::ports::Marker {
    Delivery { message_id: String::new(), receive_count: 1, now_ms: 0, deadline_ms: 0 }.marker("inventory", event_id)
}

#[tokio::test]
async fn a_placed_order_commits_its_reservation_once() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    // Below its threshold, so the delivery also publishes a low-stock event to the stack's bus.
    let sku = given_product(&consumer.stock, 1, 3, 5).await;
    let event = order_placed("cust-ada", &[(sku.as_str(), 3, 1250)]);
    let batch = sqs_batch(&[eventbridge_body(&event)]);
    let now = chrono::Utc::now().timestamp_millis();
    assert!(
        failed_ids(&handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, now, now + 10_000).await).is_empty()
    );
    assert_eq!(reserved(&consumer.stock, &sku).await, 0);
    assert!(consumer.stock.is_processed(&marker(event.event_id)).await.unwrap());
    assert!(
        failed_ids(&handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, now, now + 10_000).await).is_empty()
    );
    assert_eq!(reserved(&consumer.stock, &sku).await, 0, "the redelivery took nothing");
}

#[tokio::test]
async fn a_line_without_its_reservation_cancels_the_whole_commit() {
    let _serial = testkit::serial().await;
    let stock = given_the_deployed_consumer().await.stock;
    let (covered, short) = (given_product(&stock, 10, 2, 1).await, given_product(&stock, 10, 1, 1).await);
    let lines = [(covered.clone(), 2), (short.clone(), 5)];
    let marker = marker(EventId::new());
    assert_eq!(stock.commit(&marker, &lines).await, Err(CommitError::NotReserved(vec![short.clone()])));
    assert_eq!((reserved(&stock, &covered).await, reserved(&stock, &short).await), (2, 1));
    assert!(!stock.is_processed(&marker).await.unwrap(), "nor was the marker written");
}

#[tokio::test]
async fn a_second_commit_under_one_marker_is_a_duplicate() {
    let _serial = testkit::serial().await;
    let stock = given_the_deployed_consumer().await.stock;
    let sku = given_product(&stock, 10, 4, 1).await;
    let marker = marker(EventId::new());
    assert_eq!(stock.commit(&marker, &[(sku.clone(), 2)]).await, Ok(Applied::Done));
    assert_eq!(stock.commit(&marker, &[(sku.clone(), 2)]).await, Ok(Applied::AlreadyProcessed));
    assert_eq!(reserved(&stock, &sku).await, 2);
}

#[tokio::test]
async fn levels_read_available_and_threshold_and_omit_unknown_skus() {
    let _serial = testkit::serial().await;
    let stock = given_the_deployed_consumer().await.stock;
    let sku = given_product(&stock, 7, 0, 9).await;
    let levels = stock.levels(&[sku.clone(), Sku::from("NO-SUCH-SKU")]).await.unwrap();
    assert_eq!(levels.len(), 1);
    assert_eq!(levels[&sku], Level { available: 7, threshold: Some(9) });
}
