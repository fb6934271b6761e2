//! DynamoDB adapters: catalogue and stock, the order event store, the outbox, idempotency
//! records and processed-event markers. Attribute names are the contract with `template.yaml` and the seed data.

mod catalogue;
mod idempotency;
pub mod order_records;
mod orders;
mod outbox;
pub mod processed;
mod sandbox_ledger;

pub use idempotency::DynamoIdempotency;
pub use order_records::DynamoOrderRecords;
pub use orders::{recorded, DynamoShop, ShopTables};
pub use outbox::DynamoOutbox;
pub use processed::DynamoProcessedEvents;
pub use sandbox_ledger::DynamoLedger;

use crate::ports::StoreError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

pub type Item = HashMap<String, AttributeValue>;

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a string")))
}

pub fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("attribute {name} missing or not a number")))
}

/// Every SDK failure that is not a condition we asked for is a fault a retry may cure.
pub fn unavailable<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    StoreError::Unavailable(DisplayErrorContext(err).to_string())
}

/// Why a `TransactWriteItems` failed, decoded once from its cancellation reasons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactFailure {
    /// The conditions of these actions (by index) failed: a business answer for the caller.
    Conditions(Vec<usize>),
    /// Anything else, classified: `Conflict` when a concurrent transaction or write touched
    /// one of its items (nothing applied; retry now), `Unavailable` for throttling and faults,
    /// `Corrupt` when DynamoDB says the request itself is invalid.
    Store(StoreError),
}

pub fn transact_failure<R: std::fmt::Debug>(
    err: SdkError<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError, R>,
) -> TransactFailure {
    use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException;
    let codes: Vec<Option<String>> = match err.as_service_error() {
        Some(TransactionCanceledException(cancel)) => {
            cancel.cancellation_reasons().iter().map(|r| r.code().map(str::to_owned)).collect()
        }
        _ => return TransactFailure::Store(store_error(err)),
    };
    let failed: Vec<usize> = codes
        .iter()
        .enumerate()
        .filter(|(_, c)| c.as_deref() == Some("ConditionalCheckFailed"))
        .map(|(i, _)| i)
        .collect();
    if !failed.is_empty() {
        return TransactFailure::Conditions(failed);
    }
    let has = |code: &str| codes.iter().any(|c| c.as_deref() == Some(code));
    let detail = DisplayErrorContext(&err).to_string();
    TransactFailure::Store(if has("TransactionConflict") {
        StoreError::Conflict(detail)
    } else if has("ValidationError") {
        StoreError::Corrupt(detail)
    } else {
        StoreError::Unavailable(detail)
    })
}

/// Any other SDK failure, by its error code: a request DynamoDB will always refuse is
/// permanent; everything else (throttling, timeouts, 5xx, network) may pass.
pub fn store_error<E, R>(err: SdkError<E, R>) -> StoreError
where
    E: std::error::Error + aws_sdk_dynamodb::error::ProvideErrorMetadata + 'static,
    R: std::fmt::Debug,
{
    match err.as_service_error().and_then(|e| e.code()) {
        Some("ValidationException" | "SerializationException") => {
            StoreError::Corrupt(DisplayErrorContext(err).to_string())
        }
        _ => unavailable(err),
    }
}

/// A sparse index whose partition key is spread over a few shard values (every write to the
/// table also writes the index, and one index partition takes ~1,000 writes/s, so a single
/// value would throttle the writers), sorted by a timestamp. The outbox's pending entries and
/// the open orders are both found through one.
pub struct ShardedIndex {
    pub name: &'static str,
    /// The partition attribute and its values are `<prefix><n>`, n in `0..shards`.
    pub shard_attribute: &'static str,
    pub prefix: &'static str,
    pub shards: u128,
    /// The sort attribute: RFC 3339 timestamps in UTC, whose strings sort as their instants.
    pub sort_attribute: &'static str,
}

impl ShardedIndex {
    /// The shard value of an item keyed by `id`: the random part of a ULID spreads items evenly,
    /// and the same ID always lands in the same shard.
    pub fn shard_of(&self, id: ulid::Ulid) -> AttributeValue {
        s(format!("{}{}", self.prefix, id.random() % self.shards))
    }

    /// Of every shard, its oldest `limit` items sorted before `before` (so the oldest `limit`
    /// overall are among them); the caller orders and truncates. An index is read eventually
    /// consistent: an item just written shows up a moment later, one just removed may still show.
    pub async fn oldest_before(
        &self,
        client: &aws_sdk_dynamodb::Client,
        table: &str,
        before: &str,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for shard in 0..self.shards {
            let mut in_shard = 0;
            let mut start: Option<Item> = None;
            while in_shard < limit {
                let out = client
                    .query()
                    .table_name(table)
                    .index_name(self.name)
                    .key_condition_expression("#shard = :shard AND #sort < :before")
                    .expression_attribute_names("#shard", self.shard_attribute)
                    .expression_attribute_names("#sort", self.sort_attribute)
                    .expression_attribute_values(":shard", s(format!("{}{shard}", self.prefix)))
                    .expression_attribute_values(":before", s(before))
                    .scan_index_forward(true)
                    .limit(i32::try_from(limit - in_shard).unwrap_or(i32::MAX))
                    .set_exclusive_start_key(start.take())
                    .send()
                    .await
                    .map_err(unavailable)?;
                in_shard += out.items().len();
                found.extend(out.items().iter().cloned());
                match out.last_evaluated_key() {
                    Some(key) if !key.is_empty() => start = Some(key.clone()),
                    _ => break,
                }
            }
        }
        Ok(found)
    }
}

/// Sends one `BatchWriteItem` chunk (at most 25 requests) to `table`, sending again, after
/// `backoff`, what DynamoDB leaves unprocessed under load.
pub async fn batch_write(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    backoff: crate::retry::Backoff,
) -> Result<(), StoreError> {
    for attempt in 0..backoff.attempts {
        if attempt > 0 {
            tokio::time::sleep(backoff.delay(attempt)).await;
        }
        let out = client.batch_write_item().request_items(table, requests).send().await.map_err(unavailable)?;
        requests = out.unprocessed_items().and_then(|u| u.get(table)).cloned().unwrap_or_default();
        if requests.is_empty() {
            return Ok(());
        }
    }
    Err(StoreError::Unavailable(format!(
        "{} writes to {table} still unprocessed after {} attempts",
        requests.len(),
        backoff.attempts
    )))
}

/// `BatchGetItem` takes at most 100 keys per call.
const MAX_BATCH_KEYS: usize = 100;

/// The items of `skus` in `table` (keyed by `sku`), projected to `projection` (with `#`-names
/// from `names`). Unknown SKUs are simply absent. Keys DynamoDB leaves unprocessed under load
/// are asked for again.
pub async fn batch_get_skus(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    skus: &[crate::domain::Sku],
    projection: &str,
    names: &[(&str, &str)],
    consistent: bool,
) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::new();
    for chunk in skus.chunks(MAX_BATCH_KEYS) {
        let keys: Vec<Item> = chunk.iter().map(|sku| HashMap::from([("sku".to_owned(), s(sku.as_str()))])).collect();
        let mut request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .projection_expression(projection)
            .consistent_read(consistent);
        for (alias, name) in names {
            request = request.expression_attribute_names(*alias, *name);
        }
        let mut pending = Some(request.build().map_err(build_error)?);
        while let Some(keys) = pending.take() {
            let out = client.batch_get_item().request_items(table, keys).send().await.map_err(unavailable)?;
            found.extend(out.responses().and_then(|r| r.get(table)).into_iter().flatten().cloned());
            pending = out.unprocessed_keys().and_then(|u| u.get(table)).cloned();
        }
    }
    Ok(found)
}

pub fn build_error(err: aws_sdk_dynamodb::error::BuildError) -> StoreError {
    StoreError::Unavailable(format!("request could not be built: {err}"))
}
