//! The outbox: events committed with an order change but maybe not yet on the bus. The
//! checkout writes entries (see `orders.rs`, inside its transaction); the relay reads and clears.

use super::{get_s, s, unavailable, Item};
use crate::domain::EventId;
use crate::ports::{Outbox, Pending, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

#[derive(Clone)]
pub struct DynamoOutbox {
    client: Client,
    table: String,
}

impl DynamoOutbox {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

#[async_trait]
impl Outbox for DynamoOutbox {
    async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        // The outbox holds only events whose publication was interrupted, so a scan is small.
        let mut pending = Vec::new();
        let mut start: Option<HashMap<String, aws_sdk_dynamodb::types::AttributeValue>> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(&self.table)
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                let entry = pending_from_item(item)?;
                if entry.created_at < before {
                    pending.push(entry);
                }
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => break,
            }
        }
        pending.sort_by_key(|p| p.created_at);
        pending.truncate(limit);
        Ok(pending)
    }

    async fn clear(&self, ids: &[EventId]) -> Result<(), StoreError> {
        for id in ids {
            self.client
                .delete_item()
                .table_name(&self.table)
                .key("eventId", s(id.to_string()))
                .send()
                .await
                .map_err(unavailable)?;
        }
        Ok(())
    }
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
