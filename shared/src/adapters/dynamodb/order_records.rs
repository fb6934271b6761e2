//! Order records of the out-of-order rule ([`crate::out_of_order`]) in the ProcessedEvents
//! table: `id` = `<consumer>#ORDER#<orderId>`, `applied` (string set of stage names, absent
//! while empty), `revision`, `leaseUntil` (epoch ms, only while an effect outside DynamoDB
//! holds the order), `expiresAt` (TTL, epoch s).
//!
//! A consumer whose effect is a DynamoDB write puts [`record_put`] first in its own
//! transaction and runs it with [`transact_in_order`]; [`DynamoOrderRecords`] writes the record
//! alone, for an effect outside DynamoDB.

use super::{build_error, get_n, get_s, n, s, store_error, transact_failure, Item, TransactFailure};
use crate::domain::OrderId;
use crate::out_of_order::{record_key, OrderRecord, OrderRecords, Stage, Stages};
use crate::ports::StoreError;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;

#[derive(Clone)]
pub struct DynamoOrderRecords {
    client: Client,
    table: String,
}

impl DynamoOrderRecords {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

/// The consumer's record of the order, read strongly consistent (a record just written by a
/// delivery of another event of the order must be seen); empty when there is none.
pub async fn load(
    client: &Client,
    table: &str,
    consumer: &'static str,
    order_id: OrderId,
) -> Result<OrderRecord, StoreError> {
    let out = client
        .get_item()
        .table_name(table)
        .key("id", s(record_key(consumer, order_id)))
        .consistent_read(true)
        .send()
        .await
        .map_err(store_error)?;
    match out.item() {
        None => Ok(OrderRecord::empty(consumer, order_id)),
        Some(item) => from_item(consumer, order_id, item),
    }
}

fn from_item(consumer: &'static str, order_id: OrderId, item: &Item) -> Result<OrderRecord, StoreError> {
    let applied = match item.get("applied") {
        None => Stages::NONE,
        Some(names) => {
            let names =
                names.as_ss().map_err(|_| StoreError::Corrupt("attribute applied is not a string set".into()))?;
            let stage = |name: &String| {
                Stage::from_name(name).ok_or_else(|| {
                    StoreError::Corrupt(format!("unknown stage {name:?} in {}", get_s(item, "id").unwrap_or("?")))
                })
            };
            names.iter().map(stage).collect::<Result<Stages, _>>()?
        }
    };
    let lease_until_ms = item.contains_key("leaseUntil").then(|| get_n(item, "leaseUntil")).transpose()?;
    Ok(OrderRecord {
        consumer,
        order_id,
        applied,
        revision: get_n(item, "revision")?,
        lease_until_ms,
        expires_at: get_n(item, "expiresAt")?,
    })
}

fn put(table: &str, record: &OrderRecord) -> Result<Put, StoreError> {
    let mut put = Put::builder()
        .table_name(table)
        .item("id", s(record.key()))
        .item("revision", n(record.revision))
        .item("expiresAt", n(record.expires_at));
    if !record.applied.is_empty() {
        put = put.item("applied", AttributeValue::Ss(record.applied.iter().map(|st| st.name().to_owned()).collect()));
    }
    if let Some(until) = record.lease_until_ms {
        put = put.item("leaseUntil", n(until));
    }
    // Optimistic concurrency: written only over the revision it was derived from.
    put = match record.previous_revision() {
        0 => put.condition_expression("attribute_not_exists(id)"),
        previous => {
            put.condition_expression("revision = :previous").expression_attribute_values(":previous", n(previous))
        }
    };
    put.build().map_err(build_error)
}

/// The record as the first action of a consumer's effect transaction.
pub fn record_put(table: &str, record: &OrderRecord) -> Result<TransactWriteItem, StoreError> {
    Ok(TransactWriteItem::builder().put(put(table, record)?).build())
}

/// What a transaction led by [`record_put`] did, when the effects carry conditions of their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InOrder {
    Applied,
    /// The record was current, but the conditions of these actions (indices into the items)
    /// failed, so nothing was written: a business answer for the consumer.
    ConditionsFailed(Vec<usize>),
}

/// Runs `[record_put(..), effects..]` as one transaction. The record's condition failing means
/// another delivery for the order wrote first: `Conflict`, retried in place by the harness,
/// which reads the record again and decides again.
pub async fn transact_in_order(client: &Client, items: Vec<TransactWriteItem>) -> Result<InOrder, StoreError> {
    let Err(err) = client.transact_write_items().set_transact_items(Some(items)).send().await else {
        return Ok(InOrder::Applied);
    };
    match transact_failure(err) {
        TransactFailure::Conditions(failed) if failed.first() == Some(&0) => {
            Err(StoreError::Conflict("the order's record changed since it was read".into()))
        }
        TransactFailure::Conditions(failed) => Ok(InOrder::ConditionsFailed(failed)),
        TransactFailure::Store(e) => Err(e),
    }
}

#[async_trait]
impl OrderRecords for DynamoOrderRecords {
    async fn load(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        load(&self.client, &self.table, consumer, order_id).await
    }

    async fn save(&self, record: &OrderRecord) -> Result<(), StoreError> {
        let put = put(&self.table, record)?;
        let result = self
            .client
            .put_item()
            .set_table_name(Some(put.table_name().to_owned()))
            .set_item(Some(put.item().clone()))
            .set_condition_expression(put.condition_expression().map(str::to_owned))
            .set_expression_attribute_values(put.expression_attribute_values().cloned())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) if matches!(err.as_service_error(), Some(PutItemError::ConditionalCheckFailedException(_))) => {
                Err(StoreError::Conflict("the order's record changed since it was read".into()))
            }
            Err(err) => Err(store_error(err)),
        }
    }
}
