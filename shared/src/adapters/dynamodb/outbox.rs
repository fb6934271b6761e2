//! The outbox: events committed with an order change but maybe not yet on the bus. The
//! checkout writes entries (see `orders.rs`, inside its transaction); the relay reads and clears.
//!
//! Entries are found through a sparse global secondary index (`pending`, see `OutboxTable` in
//! template.yaml) instead of a scan: its partition key is a small shard number
//! (`pendingShard`), its sort key the entry's `createdAt`, so "the oldest entries written before
//! T" is one Query per shard, however large the table grows. It is sparse so that an entry can
//! leave it by losing `pendingShard` as well as by being deleted.

use super::{build_error, get_s, s, Item, ShardedIndex};
use crate::domain::EventId;
use crate::ports::{Outbox, Pending, StoreError};
use crate::retry::Backoff;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

/// The index of entries still to publish: `pendingShard` (`P#0` … `P#3`) and `createdAt`.
pub const PENDING: ShardedIndex = ShardedIndex {
    name: "pending",
    shard_attribute: "pendingShard",
    prefix: "P#",
    shards: 4,
    sort_attribute: "createdAt",
};

/// `BatchWriteItem` takes at most 25 requests per call.
const MAX_BATCH_WRITES: usize = 25;
/// Deletes DynamoDB leaves unprocessed (throttling) are sent again this many times in all,
/// 50, 100, 200 ms apart: the relay must stay well inside its deadline, and an entry left
/// behind is only published again, never lost.
const DELETE_BACKOFF: Backoff =
    Backoff { attempts: 4, base: Duration::from_millis(50), max: Duration::from_millis(400) };

#[derive(Clone)]
pub struct DynamoOutbox {
    client: Client,
    table: String,
}

impl DynamoOutbox {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// The `pendingShard` value of an entry.
    pub fn pending_shard(id: &EventId) -> AttributeValue {
        PENDING.shard_of(id.0)
    }
}

#[async_trait]
impl Outbox for DynamoOutbox {
    async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        // `createdAt` is RFC 3339 in UTC as `to_rfc3339` writes it, whose strings sort as their
        // instants do (the fraction is printed only when non-zero, and `+` sorts before digits).
        // An entry cleared a moment ago may still be listed: published again, which consumers dedupe.
        let items = PENDING.oldest_before(&self.client, &self.table, &before.to_rfc3339(), limit).await?;
        let mut pending = items.iter().map(pending_from_item).collect::<Result<Vec<_>, _>>()?;
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
            super::batch_write(&self.client, &self.table, requests, DELETE_BACKOFF).await?;
        }
        Ok(())
    }
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
        assert_eq!(shards, (0..PENDING.shards).map(|n| format!("P#{n}")).collect());
        let id = EventId::new();
        assert_eq!(DynamoOutbox::pending_shard(&id), DynamoOutbox::pending_shard(&id));
    }
}
