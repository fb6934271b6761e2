//! The order records of the out-of-order rule in the ProcessedEvents table of a stack made
//! from template.yaml (moto server): read back as written, written only over the revision they
//! follow, and, first in a transaction, cancelling it as a conflict when another delivery wrote
//! first, while the effects' own conditions stay a business answer.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use shared::adapters::dynamodb::order_records::{record_put, transact_in_order, InOrder};
use shared::adapters::dynamodb::DynamoOrderRecords;
use shared::consumer::Delivery;
use shared::domain::OrderId;
use shared::out_of_order::{OrderRecord, OrderRecords, Stage, Stages};
use shared::ports::{ErrorKind, Kind};

use testkit::shared as aws;

const NOW: i64 = 1_800_000_000_000;

async fn client() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&aws().emulator.sdk_config().await)
}

fn table() -> &'static str {
    aws().stack.output("ProcessedEventsTableName")
}

async fn records() -> DynamoOrderRecords {
    DynamoOrderRecords::new(client().await, table())
}

fn at(now_ms: i64) -> Delivery {
    Delivery { message_id: "m".into(), receive_count: 1, now_ms, deadline_ms: now_ms + 10_000 }
}

fn stages(stages: &[Stage]) -> Stages {
    stages.iter().copied().collect()
}

#[tokio::test]
async fn an_order_never_seen_has_an_empty_record() {
    let _serial = testkit::serial().await;
    let order = OrderId::new();
    assert_eq!(records().await.load("loyalty", order).await, Ok(OrderRecord::empty("loyalty", order)));
}

#[tokio::test]
async fn a_record_reads_back_as_written_lease_and_stages_and_all() {
    let _serial = testkit::serial().await;
    let records = records().await;
    let empty = records.load("email", OrderId::new()).await.unwrap();
    let held = empty.leased(&at(NOW));
    let placed = held.applying(Stage::Placed, &at(NOW));
    let cancelled = placed.applying(Stage::Cancelled, &at(NOW + 1_000));
    for written in [held, placed, cancelled] {
        records.save(&written).await.unwrap();
        assert_eq!(records.load("email", empty.order_id).await, Ok(written));
    }
}

#[tokio::test]
async fn a_write_over_a_stale_revision_is_a_conflict_and_changes_nothing() {
    let _serial = testkit::serial().await;
    let records = records().await;
    let read = records.load("email", OrderId::new()).await.unwrap();
    records.save(&read.applying(Stage::Placed, &at(NOW))).await.unwrap();
    let stale = records.save(&read.applying(Stage::Cancelled, &at(NOW))).await;
    assert_eq!(stale.map_err(|e| e.kind()), Err(ErrorKind::Conflict));
    assert_eq!(records.load("email", read.order_id).await.unwrap().applied, stages(&[Stage::Placed]));
}

/// A conditional effect on an item of its own, for the transaction: put only if absent.
fn put_once(key: &str) -> TransactWriteItem {
    let put = Put::builder()
        .table_name(table())
        .item("id", AttributeValue::S(key.to_owned()))
        .condition_expression("attribute_not_exists(id)")
        .build()
        .unwrap();
    TransactWriteItem::builder().put(put).build()
}

#[tokio::test]
async fn in_a_transaction_a_stale_record_is_a_conflict_and_nothing_of_the_effect_applies() {
    let _serial = testkit::serial().await;
    let (client, order) = (client().await, OrderId::new());
    let read = OrderRecord::empty("inventory", order);
    let first = read.applying(Stage::Placed, &at(NOW));
    let effect = format!("effect#{order}");
    assert_eq!(transact_in_order(&client, vec![record_put(table(), &first).unwrap()]).await, Ok(InOrder::Applied));
    // A second delivery that read the same (empty) record.
    let late = read.applying(Stage::Cancelled, &at(NOW));
    let items = vec![record_put(table(), &late).unwrap(), put_once(&effect)];
    assert_eq!(transact_in_order(&client, items).await.map_err(|e| e.kind()), Err(ErrorKind::Conflict));
    let effect_written = client
        .get_item()
        .table_name(table())
        .key("id", AttributeValue::S(effect))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .is_some();
    assert!(!effect_written);
}

#[tokio::test]
async fn in_a_transaction_a_failed_effect_condition_is_reported_by_action_and_the_record_is_not_written() {
    let _serial = testkit::serial().await;
    let (client, order) = (client().await, OrderId::new());
    let taken = format!("effect#{order}");
    transact_in_order(&client, vec![put_once(&taken)]).await.unwrap();
    let next = OrderRecord::empty("inventory", order).applying(Stage::Placed, &at(NOW));
    let items = vec![record_put(table(), &next).unwrap(), put_once(&format!("other#{order}")), put_once(&taken)];
    assert_eq!(transact_in_order(&client, items).await, Ok(InOrder::ConditionsFailed(vec![2])));
    assert_eq!(records().await.load("inventory", order).await.unwrap().revision, 0);
}
