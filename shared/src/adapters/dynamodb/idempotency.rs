//! Idempotency records with the semantics of Powertools for AWS Lambda: one conditional put
//! claims the key; COMPLETED keeps the response; a failed attempt deletes its record.
//!
//! Item: `id` (key), `status` (IN_PROGRESS | COMPLETED), `expiration` (epoch s, the table's
//! TTL attribute), `inProgressExpiration` (epoch ms, the lease), `payloadHash`, `orderId`,
//! `response` (JSON of the stored response).

use super::{get_n, get_s, n, s, unavailable, Item};
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
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
}

/// Decides what an existing, unexpired record means for a new request with `hash`.
fn classify(existing: &Item, hash: &str) -> Result<Claim, StoreError> {
    if get_s(existing, "payloadHash")? != hash {
        return Ok(Claim::PayloadMismatch);
    }
    if get_s(existing, "status")? == COMPLETED {
        let body = get_s(existing, "response")?;
        let response = serde_json::from_str(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        return Ok(Claim::Replay(response));
    }
    Ok(Claim::InProgress)
}

#[async_trait]
impl IdempotencyStore for DynamoIdempotency {
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, StoreError> {
        let now_s = req.now_ms / 1000;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("id", s(&req.key))
            .item("status", s(IN_PROGRESS))
            .item("expiration", n(req.expires_at))
            .item("inProgressExpiration", n(req.lease_until_ms))
            .item("payloadHash", s(&req.payload_hash))
            .item("orderId", s(req.order_id.to_string()))
            // Free, expired, or held by an attempt whose lease lapsed (it crashed) for the same body.
            .condition_expression(
                "attribute_not_exists(id) OR expiration < :now_s \
                 OR (#status = :in_progress AND inProgressExpiration < :now_ms AND payloadHash = :hash)",
            )
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":now_s", n(now_s))
            .expression_attribute_values(":now_ms", n(req.now_ms))
            .expression_attribute_values(":in_progress", s(IN_PROGRESS))
            .expression_attribute_values(":hash", s(&req.payload_hash))
            .return_values(ReturnValue::AllOld)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => {
                // Taking over from a crashed attempt: resume its order, not a new one.
                let crashed = out
                    .attributes()
                    .filter(|old| get_n::<i64>(old, "expiration").is_ok_and(|exp| exp >= now_s))
                    .filter(|old| get_s(old, "status").is_ok_and(|st| st == IN_PROGRESS));
                let Some(old) = crashed else {
                    return Ok(Claim::Acquired { order_id: req.order_id, resumed: false });
                };
                let old_order: crate::domain::OrderId =
                    get_s(old, "orderId")?.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?;
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("id", s(&req.key))
                    .update_expression("SET orderId = :order")
                    .expression_attribute_values(":order", s(old_order.to_string()))
                    .send()
                    .await
                    .map_err(unavailable)?;
                Ok(Claim::Acquired { order_id: old_order, resumed: true })
            }
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => match e.item() {
                    Some(existing) => classify(existing, &req.payload_hash),
                    None => Err(StoreError::Corrupt("condition failed without the item".into())),
                },
                _ => Err(unavailable(err)),
            },
        }
    }

    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let body = serde_json::to_string(response).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.client
            .update_item()
            .table_name(&self.table)
            .key("id", s(key))
            .update_expression("SET #status = :completed, #response = :response REMOVE inProgressExpiration")
            .expression_attribute_names("#status", "status")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":completed", s(COMPLETED))
            .expression_attribute_values(":response", s(body))
            .send()
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.client.delete_item().table_name(&self.table).key("id", s(key)).send().await.map_err(unavailable)?;
        Ok(())
    }
}
