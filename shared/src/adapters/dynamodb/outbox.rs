//! The outbox: events committed with an order change but maybe not yet on the bus. The
//! checkout writes entries (see `orders.rs`, inside its transaction); the relay reads and clears.
//!
//! Entries are found through a sparse global secondary index (`pending`, see `OutboxTable` in
//! template.yaml) instead of a scan: its partition key is a small shard number
//! (`pendingShard`), its sort key the entry's `createdAt`, so "the oldest entries written before
//! T" is one Query per shard, however large the table grows. It is sparse so that an entry can
//! leave it by losing `pendingShard` as well as by being deleted.

use super::{build_error, get_s, s, unavailable, Item};
use crate::domain::EventId;
use crate::ports::{Outbox, Pending, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// The index of entries still to publish.
pub const PENDING_INDEX: &str = "pending";
/// Its partition attribute, `P#0` … `P#3`: every outbox write also writes the index, and one
/// index partition takes ~1,000 writes/s; a throttled index write throttles the checkout's
/// transaction, so entries are spread over a few partitions, and read back with one Query each.
pub const PENDING_SHARD: &str = "pendingShard";
pub const PENDING_SHARDS: u128 = 4;

/// `BatchWriteItem` takes at most 25 requests per call.
const MAX_BATCH_WRITES: usize = 25;
/// Deletes DynamoDB leaves unprocessed (throttling) are sent again this many times in all,
/// 50, 100, 200 ms apart: the relay must stay well inside its deadline, and an entry left
/// behind is only published again, never lost.
const DELETE_ATTEMPTS: u32 = 4;
const DELETE_BACKOFF: Duration = Duration::from_millis(50);

#[derive(Clone)]
pub struct DynamoOutbox {
    client: Client,
    table: String,
}

impl DynamoOutbox {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The `pendingShard` value of an entry: the random part of its ULID spreads entries
    /// evenly, and the same event always lands in the same shard.
    pub fn pending_shard(id: &EventId) -> AttributeValue {
        shard_value(id.0.random() % PENDING_SHARDS)
    }

    /// Up to `limit` entries of one shard written before `before`, oldest first.
    async fn pending_in_shard(&self, shard: u128, before: &str, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let mut found = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            // An index is read eventually consistent (it cannot be read otherwise): an entry
            // just written shows up a moment later (the next run takes it) and one just
            // cleared may still show (published again, which consumers dedupe).
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(PENDING_INDEX)
                .key_condition_expression("#shard = :shard AND createdAt < :before")
                .expression_attribute_names("#shard", PENDING_SHARD)
                .expression_attribute_values(":shard", shard_value(shard))
                .expression_attribute_values(":before", s(before))
                .scan_index_forward(true)
                .limit(i32::try_from(limit - found.len()).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                found.push(pending_from_item(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() && found.len() < limit => start = Some(key.clone()),
                _ => return Ok(found),
            }
        }
    }

    /// Deletes one chunk, sending again what DynamoDB left unprocessed.
    async fn delete_chunk(&self, mut requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        for attempt in 0..DELETE_ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(DELETE_BACKOFF * 2u32.pow(attempt - 1)).await;
            }
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(unavailable)?;
            requests = out.unprocessed_items().and_then(|u| u.get(&self.table)).cloned().unwrap_or_default();
            if requests.is_empty() {
                return Ok(());
            }
        }
        Err(StoreError::Unavailable(format!(
            "{} outbox deletes still unprocessed after {DELETE_ATTEMPTS} attempts",
            requests.len()
        )))
    }
}

#[async_trait]
impl Outbox for DynamoOutbox {
    async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // `createdAt` is RFC 3339 in UTC as `to_rfc3339` writes it, whose strings sort as their
        // instants do (the fraction is printed only when non-zero, and `+` sorts before digits).
        let before = before.to_rfc3339();
        // The oldest `limit` overall are among the oldest `limit` of each shard. The shards are
        // read one after the other: a few small queries, once a minute, in the background.
        let mut pending = Vec::new();
        for shard in 0..PENDING_SHARDS {
            pending.extend(self.pending_in_shard(shard, &before, limit).await?);
        }
        pending.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.event.event_id.cmp(&b.event.event_id)));
        pending.truncate(limit);
        Ok(pending)
    }

    async fn clear(&self, ids: &[EventId]) -> Result<(), StoreError> {
        // One batch must not name a key twice (DynamoDB rejects the whole call).
        let mut ids = ids.to_vec();
        ids.sort();
        ids.dedup();
        for chunk in ids.chunks(MAX_BATCH_WRITES) {
            let requests = chunk.iter().map(delete_request).collect::<Result<Vec<_>, _>>()?;
            self.delete_chunk(requests).await?;
        }
        Ok(())
    }
}

fn shard_value(shard: u128) -> AttributeValue {
    s(format!("P#{shard}"))
}

fn delete_request(id: &EventId) -> Result<WriteRequest, StoreError> {
    let key = HashMap::from([("eventId".to_owned(), s(id.to_string()))]);
    let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(build_error)?;
    Ok(WriteRequest::builder().delete_request(delete).build())
}

fn pending_from_item(item: &Item) -> Result<Pending, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    Ok(Pending {
        event: crate::events::Outbound {
            event_id: get_s(item, "eventId")?.parse().map_err(|e| corrupt(format!("{e}")))?,
            source: get_s(item, "source")?.to_owned(),
            detail_type: get_s(item, "detailType")?.to_owned(),
            detail: get_s(item, "detail")?.to_owned(),
        },
        created_at: DateTime::parse_from_rfc3339(get_s(item, "createdAt")?)
            .map_err(|e| corrupt(e.to_string()))?
            .with_timezone(&Utc),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_spread_over_every_shard_and_an_entry_always_lands_in_the_same_one() {
        let shards: std::collections::BTreeSet<String> = (0..200)
            .map(|_| DynamoOutbox::pending_shard(&EventId::new()))
            .map(|v| v.as_s().cloned().unwrap_or_default())
            .collect();
        assert_eq!(shards, (0..PENDING_SHARDS).map(|n| format!("P#{n}")).collect());
        let id = EventId::new();
        assert_eq!(DynamoOutbox::pending_shard(&id), DynamoOutbox::pending_shard(&id));
    }
}
