//! The inventory adapters against the local emulator (moto server), built from the template's
//! environment of InventoryFunction exactly as Lambda builds them: a placed order's
//! reservation committed once, and a cancelled order's stock back in either order of arrival.

use aws_sdk_dynamodb::types::AttributeValue;
use inventory::dynamo::DynamoStock;
use inventory::{CommitError, Inventory, Level, Movement, Stock};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::config::Env;
use shared::consumer::Delivery;
use shared::domain::{EventId, OrderId, Sku};
use shared::out_of_order::{OrderRecord, Stage, Stages};
use shared::ports::{ErrorKind, Kind};
use shared::testing::{deliver_each, eventbridge_body, order_cancelled, order_placed};

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

/// `(available, reserved)` of `sku`.
async fn stock_of(stock: &DynamoStock, sku: &Sku) -> (i64, i64) {
    let out = stock
        .client
        .get_item()
        .table_name(&stock.products_table)
        .key("sku", AttributeValue::S(sku.0.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    let item = out.item().expect("the product exists");
    let num = |name: &str| item.get(name).and_then(|v| v.as_n().ok()).and_then(|v| v.parse().ok()).unwrap();
    (num("available"), num("reserved"))
}

async fn reserved(stock: &DynamoStock, sku: &Sku) -> i64 {
    stock_of(stock, sku).await.1
}

fn delivery() -> Delivery {
    let now = chrono::Utc::now().timestamp_millis();
    Delivery { message_id: String::new(), receive_count: 1, now_ms: now, deadline_ms: now + 10_000 }
}

/// The record a first movement of a fresh order writes.
fn first_record(stage: Stage) -> OrderRecord {
    OrderRecord::empty("inventory", OrderId::new()).applying(stage, &delivery())
}

async fn applied(stock: &DynamoStock, order_id: OrderId) -> Stages {
    stock.record("inventory", order_id).await.unwrap().applied
}

#[tokio::test]
async fn a_placed_order_commits_its_reservation_once() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    // Below its threshold, so the delivery also publishes a low-stock event to the stack's bus.
    let sku = given_product(&consumer.stock, 1, 3, 5).await;
    let event = order_placed("cust-ada", &[(sku.as_str(), 3, 1250)]);
    let body = eventbridge_body(&event);
    assert!(deliver_each(&consumer, std::slice::from_ref(&body)).await.is_empty());
    assert_eq!(reserved(&consumer.stock, &sku).await, 0);
    assert_eq!(applied(&consumer.stock, event.order_id).await, [Stage::Placed].into_iter().collect());
    assert!(deliver_each(&consumer, &[body]).await.is_empty());
    assert_eq!(reserved(&consumer.stock, &sku).await, 0, "the redelivery took nothing");
}

#[tokio::test]
async fn a_cancellation_after_its_order_restocks_what_the_order_committed() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    let sku = given_product(&consumer.stock, 7, 3, 1).await;
    let placed = order_placed("cust-ada", &[(sku.as_str(), 3, 1250)]);
    let cancelled = eventbridge_body(&order_cancelled(&placed));
    assert!(deliver_each(&consumer, &[eventbridge_body(&placed)]).await.is_empty());
    assert_eq!(stock_of(&consumer.stock, &sku).await, (7, 0));
    assert!(deliver_each(&consumer, &[cancelled.clone(), cancelled]).await.is_empty(), "the duplicate is skipped");
    assert_eq!(stock_of(&consumer.stock, &sku).await, (10, 0));
    let both = [Stage::Placed, Stage::Cancelled].into_iter().collect();
    assert_eq!(applied(&consumer.stock, placed.order_id).await, both);
}

#[tokio::test]
async fn a_cancellation_before_its_order_releases_the_reservation_and_the_order_moves_nothing() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    let sku = given_product(&consumer.stock, 7, 3, 1).await;
    let placed = order_placed("cust-ada", &[(sku.as_str(), 3, 1250)]);
    assert!(deliver_each(&consumer, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    assert_eq!(stock_of(&consumer.stock, &sku).await, (10, 0), "the same stock as in order");
    assert_eq!(applied(&consumer.stock, placed.order_id).await, [Stage::Cancelled].into_iter().collect());
    assert!(deliver_each(&consumer, &[eventbridge_body(&placed)]).await.is_empty(), "skipped, not failed");
    assert_eq!(stock_of(&consumer.stock, &sku).await, (10, 0));
}

#[tokio::test]
async fn a_line_without_its_reservation_cancels_the_whole_commit() {
    let _serial = testkit::serial().await;
    let stock = given_the_deployed_consumer().await.stock;
    let (covered, short) = (given_product(&stock, 10, 2, 1).await, given_product(&stock, 10, 1, 1).await);
    let lines = [(covered.clone(), 2), (short.clone(), 5)];
    let record = first_record(Stage::Placed);
    assert_eq!(
        stock.apply(&record, Movement::Commit, &lines).await,
        Err(CommitError::NotReserved(vec![short.clone()]))
    );
    assert_eq!((reserved(&stock, &covered).await, reserved(&stock, &short).await), (2, 1));
    assert!(applied(&stock, record.order_id).await.is_empty(), "nor was the record written");
}

#[tokio::test]
async fn a_movement_over_a_stale_record_is_a_conflict_and_moves_nothing() {
    let _serial = testkit::serial().await;
    let stock = given_the_deployed_consumer().await.stock;
    let sku = given_product(&stock, 10, 4, 1).await;
    let record = first_record(Stage::Placed);
    assert_eq!(stock.apply(&record, Movement::Commit, &[(sku.clone(), 2)]).await, Ok(()));
    let stale = stock.apply(&record, Movement::Commit, &[(sku.clone(), 2)]).await;
    assert!(matches!(&stale, Err(CommitError::Store(e)) if e.kind() == ErrorKind::Conflict), "{stale:?}");
    assert_eq!(reserved(&stock, &sku).await, 2);
}

#[tokio::test]
async fn a_restock_of_a_product_that_does_not_exist_creates_nothing() {
    let _serial = testkit::serial().await;
    let stock = given_the_deployed_consumer().await.stock;
    let ghost = Sku(format!("T-GONE-{}", EventId::new()));
    let refused = stock.apply(&first_record(Stage::Cancelled), Movement::Restock, &[(ghost.clone(), 1)]).await;
    assert_eq!(refused, Err(CommitError::UnknownProducts(vec![ghost.clone()])));
    assert!(stock.levels(std::slice::from_ref(&ghost)).await.unwrap().is_empty());
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
