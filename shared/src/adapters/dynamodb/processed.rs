//! Processed-event markers in the ProcessedEvents table: `id` = `<consumer>#<eventId>`,
//! `status` (IN_PROGRESS | COMPLETED), `leaseUntil` (epoch ms), `expiresAt` (TTL, epoch s).

use super::{build_error, get_s, n, s, transact_failure, unavailable, TransactFailure};
use crate::ports::{Applied, Lease, Marker, ProcessedEvents, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use aws_sdk_dynamodb::Client;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

#[derive(Clone)]
pub struct DynamoProcessedEvents {
    client: Client,
    table: String,
}

impl DynamoProcessedEvents {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

/// The marker as the first action of a consumer's effect transaction: the whole transaction
/// fails if the event was processed before, so the effect happens exactly once even when two
/// deliveries of one event run at the same moment.
pub fn marker_put(table: &str, marker: &Marker) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .item("id", s(marker.key()))
        .item("status", s(COMPLETED))
        .item("expiresAt", n(marker.expires_at))
        .condition_expression("attribute_not_exists(id)")
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// Runs `[marker_put(..), effects..]` as one transaction.
pub async fn transact_once(client: &Client, items: Vec<TransactWriteItem>) -> Result<Applied, StoreError> {
    match transact_once_guarded(client, items).await? {
        Guarded::Applied(applied) => Ok(applied),
        // Only the marker carries a condition in these transactions.
        Guarded::ConditionsFailed(actions) => Err(StoreError::Corrupt(format!(
            "transaction cancelled: unexpected conditions failed on actions {actions:?}"
        ))),
    }
}

/// What a marker-guarded transaction did when its effects carry conditions of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Guarded {
    Applied(Applied),
    /// The marker was new, but the conditions of these actions (indices into the items) failed,
    /// so nothing was written.
    ConditionsFailed(Vec<usize>),
}

/// Like `transact_once`, but tells the caller which of its own conditions failed, so that a
/// business rule (not enough stock reserved) is not mistaken for an unavailable store.
pub async fn transact_once_guarded(client: &Client, items: Vec<TransactWriteItem>) -> Result<Guarded, StoreError> {
    let Err(err) = client.transact_write_items().set_transact_items(Some(items)).send().await else {
        return Ok(Guarded::Applied(Applied::Done));
    };
    match transact_failure(err) {
        // The marker is action 0: if it exists, this delivery is a duplicate whatever else failed.
        TransactFailure::Conditions(failed) if failed.first() == Some(&0) => {
            Ok(Guarded::Applied(Applied::AlreadyProcessed))
        }
        TransactFailure::Conditions(failed) => Ok(Guarded::ConditionsFailed(failed)),
        TransactFailure::Store(e) => Err(e),
    }
}

#[async_trait]
impl ProcessedEvents for DynamoProcessedEvents {
    async fn claim(&self, marker: &Marker, now_ms: i64, lease_until_ms: i64) -> Result<Lease, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(marker.key()))
            .item("status", s(IN_PROGRESS))
            .item("leaseUntil", n(lease_until_ms))
            .item("expiresAt", n(marker.expires_at))
            .condition_expression("attribute_not_exists(id) OR (#status = :in_progress AND leaseUntil < :now)")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":now", n(now_ms))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Lease::Acquired),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    let completed =
                        e.item().map(|item| get_s(item, "status")).transpose()?.is_some_and(|st| st == COMPLETED);
                    Ok(if completed { Lease::AlreadyProcessed } else { Lease::HeldElsewhere })
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn complete(&self, marker: &Marker) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", s(marker.key()))
            .update_expression("SET #status = :completed REMOVE leaseUntil")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":completed", s(COMPLETED))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(marker.key()))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}
