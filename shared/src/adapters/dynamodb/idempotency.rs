//! Idempotency records with the semantics of Powertools for AWS Lambda: one conditional put
//! claims a new key; COMPLETED keeps the response; a failed attempt that changed nothing
//! deletes its record.
//!
//! Item: `id` (key), `status` (IN_PROGRESS | COMPLETED), `expiration` (epoch s, the table's
//! TTL attribute), `inProgressExpiration` (epoch ms, the lease), `attempt` (the lease holder),
//! `payloadHash`, `orderId`, `response` (JSON of the stored response).
//!
//! `orderId` is written once, by the put that creates the record, and never again: taking
//! over a lapsed lease is one conditional update of `attempt` and the lease alone, so no crash
//! or fault at any point can bind the key to another order. `complete` and `release` are
//! conditioned on `attempt`, so a slow attempt whose lease was taken over changes nothing.

use super::{get_n, get_s, n, s, unavailable, Item};
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{ReturnValue, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;

const IN_PROGRESS: &str = "IN_PROGRESS";
const COMPLETED: &str = "COMPLETED";

#[derive(Clone)]
pub struct DynamoIdempotency {
    client: Client,
    table: String,
}

impl DynamoIdempotency {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Renews the lease of a lapsed attempt for `req.attempt`; the bound order stays.
    async fn take_over(&self, req: &ClaimRequest) -> Result<Claim, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(&req.key))
            .update_expression("SET inProgressExpiration = :lease, attempt = :attempt")
            .condition_expression(
                "#status = :in_progress AND inProgressExpiration < :now_ms AND payloadHash = :hash \
                 AND expiration >= :now_s",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":lease", n(req.lease_until_ms))
            .expression_attribute_values(":attempt", s(&req.attempt))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":now_ms", n(req.now_ms))
            .expression_attribute_values(":now_s", n(req.now_ms / 1000))
            .expression_attribute_values(":hash", s(&req.payload_hash))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                let record = out.attributes().ok_or_else(|| StoreError::Corrupt("takeover returned no item".into()))?;
                Ok(Claim::TakenOver { order_id: order_id(record)? })
            }
            Err(err) => match err.as_service_error() {
                // Another attempt took over or finished first: answer from what is there now,
                // but never take over twice in one claim (a lapsed record here means "busy").
                Some(UpdateItemError::ConditionalCheckFailedException(e)) => match e.item() {
                    Some(now) => match classify(now, req)? {
                        Existing::Answer(claim) => Ok(claim),
                        Existing::Lapsed => Ok(Claim::InProgress),
                    },
                    None => Ok(Claim::InProgress),
                },
                _ => Err(unavailable(err)),
            },
        }
    }
}

fn order_id(record: &Item) -> Result<crate::domain::OrderId, StoreError> {
    get_s(record, "orderId")?.parse().map_err(|e| StoreError::Corrupt(format!("orderId: {e}")))
}

/// What an existing, unexpired record means for a new request.
enum Existing {
    Answer(Claim),
    /// Held by an attempt whose lease lapsed (it crashed or timed out).
    Lapsed,
}

fn classify(existing: &Item, req: &ClaimRequest) -> Result<Existing, StoreError> {
    if get_s(existing, "payloadHash")? != req.payload_hash {
        return Ok(Existing::Answer(Claim::PayloadMismatch));
    }
    if get_s(existing, "status")? == COMPLETED {
        let body = get_s(existing, "response")?;
        let response = serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        return Ok(Existing::Answer(Claim::Replay(response)));
    }
    let lease: i64 = get_n(existing, "inProgressExpiration")?;
    Ok(if lease < req.now_ms { Existing::Lapsed } else { Existing::Answer(Claim::InProgress) })
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(&req.key))
            .item("status", s(IN_PROGRESS))
            .item("expiration", n(req.expires_at))
            .item("inProgressExpiration", n(req.lease_until_ms))
            .item("attempt", s(&req.attempt))
            .item("payloadHash", s(&req.payload_hash))
            .item("orderId", s(req.order_id.to_string()))
            // Only a new key, or one whose record expired (TTL deletes lazily), is bound afresh.
            .condition_expression("attribute_not_exists(id) OR expiration < :now_s")
            .expression_attribute_values(":now_s", n(req.now_ms / 1000))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claim::Started { order_id: req.order_id }),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    let existing =
                        e.item().ok_or_else(|| StoreError::Corrupt("condition failed without the item".into()))?;
                    match classify(existing, req)? {
                        Existing::Answer(claim) => Ok(claim),
                        Existing::Lapsed => self.take_over(req).await,
                    }
                }
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn complete(&self, key: &str, attempt: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let body = serde_json::to_string(response).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .update_expression("SET #status = :completed, #response = :response REMOVE inProgressExpiration")
            .condition_expression("attempt = :attempt AND #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":response", s(body))
            .expression_attribute_values(":attempt", s(attempt))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(UpdateItemError::ConditionalCheckFailedException(_))) => {
                tracing::info!("a newer attempt holds this key; it will store the answer");
                Ok(())
            }
            Err(err) => Err(unavailable(err)),
        }
    }

    async fn release(&self, key: &str, attempt: &str) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("id", s(key))
            .condition_expression("attempt = :attempt AND #status = :in_progress")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":attempt", s(attempt))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(DeleteItemError::ConditionalCheckFailedException(_))) => {
                tracing::info!("a newer attempt holds this key; not releasing it");
                Ok(())
            }
            Err(err) => Err(unavailable(err)),
        }
    }
}
