//! The DynamoDB outbox against the local emulator (moto server), on a stack created from
//! template.yaml: pending entries come from the sparse `pending` index (no scan), oldest first
//! across its shards, and clearing deletes in batches.
//!
//! Entries are written here as `orders.rs` writes them in the checkout's transaction
//! (`eventId`, `source`, `detailType`, `detail`, `createdAt`, `pendingShard`). The tests of
//! this binary share one table, so each works in its own year: `before` keeps them apart.

use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, TimeZone, Utc};
use shared::adapters::dynamodb::DynamoOutbox;
use shared::domain::EventId;
use shared::ports::Outbox;

use testkit::shared as env;

async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&env().emulator.sdk_config().await)
}

fn table() -> String {
    env().stack.output("OutboxTableName").to_owned()
}

fn at(year: i32, millis: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).single().expect("a valid instant")
        + chrono::Duration::milliseconds(millis)
}

/// Writes outbox entry `id` created at `created_at`, in index shard `shard` (`None`: the
/// entry is not in the index).
async fn given_entry(
    client: &aws_sdk_dynamodb::Client,
    id: EventId,
    created_at: DateTime<Utc>,
    shard: Option<AttributeValue>,
) -> EventId {
    let mut put = client
        .put_item()
        .table_name(table())
        .item("eventId", AttributeValue::S(id.to_string()))
        .item("source", AttributeValue::S("shop.checkout".into()))
        .item("detailType", AttributeValue::S("order.placed".into()))
        .item("detail", AttributeValue::S(format!(r#"{{"eventId":"{id}"}}"#)))
        .item("createdAt", AttributeValue::S(created_at.to_rfc3339()));
    if let Some(shard) = shard {
        put = put.item("pendingShard", shard);
    }
    put.send().await.expect("put an outbox entry");
    id
}

fn shard(n: u8) -> Option<AttributeValue> {
    Some(AttributeValue::S(format!("P#{n}")))
}

async fn still_stored(client: &aws_sdk_dynamodb::Client, id: &EventId) -> bool {
    let out = client
        .get_item()
        .table_name(table())
        .key("eventId", AttributeValue::S(id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .expect("get an outbox entry");
    out.item.is_some()
}

#[tokio::test]
async fn pending_lists_only_entries_older_than_before_oldest_first_across_shards() {
    let client = dynamodb().await;
    let outbox = DynamoOutbox::new(client.clone(), table());
    // Half a second apart, so createdAt alternates between "…:00+00:00" and "…:00.500+00:00":
    // the index compares strings, and those must sort as the instants do. Shards go round in
    // reverse so that the oldest entries come from every shard and the merge has work to do.
    let mut older = Vec::new();
    for i in 0..8u8 {
        older.push(given_entry(&client, EventId::new(), at(2001, 500 * i64::from(i)), shard(3 - i % 4)).await);
    }
    let before = at(2001, 500 * 8);
    given_entry(&client, EventId::new(), before, shard(0)).await;
    given_entry(&client, EventId::new(), before + chrono::Duration::seconds(1), shard(1)).await;
    let unindexed = given_entry(&client, EventId::new(), at(2001, 250), None).await;

    let pending = outbox.pending(before, 100).await.unwrap();
    let ids: Vec<_> = pending.iter().map(|p| p.event.event_id).collect();
    assert_eq!(ids, older, "entries before `before` only, oldest first, from all four shards");
    assert!(!ids.contains(&unindexed), "an entry without pendingShard is not in the sparse index");
    assert_eq!(pending[1].created_at, at(2001, 500));
    assert_eq!(pending[0].event.detail_type, "order.placed", "the index projects the whole entry");

    let oldest_three: Vec<_> = outbox.pending(before, 3).await.unwrap().iter().map(|p| p.event.event_id).collect();
    assert_eq!(oldest_three, older[..3]);
}

#[tokio::test]
async fn clearing_sixty_entries_deletes_them_in_several_batches() {
    let client = dynamodb().await;
    let outbox = DynamoOutbox::new(client.clone(), table());
    let mut ids = Vec::new();
    for i in 0..60 {
        // The shard the entry's ID selects, as the checkout's write gives it.
        let id = EventId::new();
        ids.push(given_entry(&client, id, at(2002, i), Some(DynamoOutbox::pending_shard(&id))).await);
    }
    let before = at(2003, 0);
    let listed = outbox.pending(before, 1000).await.unwrap();
    assert!(ids.iter().all(|id| listed.iter().any(|p| p.event.event_id == *id)));

    // 60 keys are three BatchWriteItem calls; a key named twice must not fail its batch.
    let mut to_clear = ids.clone();
    to_clear.push(ids[0]);
    outbox.clear(&to_clear).await.unwrap();

    for id in &ids {
        assert!(!still_stored(&client, id).await, "{id} was cleared");
    }
    let listed = outbox.pending(before, 1000).await.unwrap();
    assert!(!listed.iter().any(|p| ids.contains(&p.event.event_id)));
}
