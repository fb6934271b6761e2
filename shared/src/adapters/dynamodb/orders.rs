use super::{build_error, get_s, n, s, transact_failure, unavailable, ShardedIndex, TransactFailure};
use crate::domain::{OrderEvent, OrderId, Recorded, SagaStep};
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, Utc};

/// Physical table names, from the environment the template sets.
#[derive(Debug, Clone)]
pub struct ShopTables {
    pub products: String,
    pub orders: String,
    pub outbox: String,
}

/// Catalogue, stock, order events and outbox in DynamoDB. One type because an order's event,
/// its stock effect and its outbox entry must be written in one transaction.
#[derive(Clone)]
pub struct DynamoShop {
    pub(crate) client: Client,
    pub(crate) tables: ShopTables,
}

impl DynamoShop {
    pub fn new(client: Client, tables: ShopTables) -> Self {
        Self { client, tables }
    }
}

fn event_put(tables: &ShopTables, change: &OrderChange<'_>) -> Result<TransactWriteItem, StoreError> {
    let body = serde_json::to_string(change.event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let put = Put::builder()
        .table_name(&tables.orders)
        .item("orderId", s(change.order_id.to_string()))
        .item("version", n(change.version))
        .item("type", s(change.event.name()))
        .item("event", s(body))
        .item("at", s(change.event.at().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
        .item("correlationId", s(change.correlation_id))
        // Optimistic concurrency: this version of this order must not exist yet.
        .condition_expression("attribute_not_exists(orderId)")
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn stock_update(tables: &ShopTables, sku: &str, quantity: u32, reserve: bool) -> Result<TransactWriteItem, StoreError> {
    let (expression, condition) = if reserve {
        // A product loaded without `reserved` (a hand-written seed) starts from zero.
        ("SET available = available - :q, reserved = if_not_exists(reserved, :zero) + :q", "available >= :q")
    } else {
        ("SET available = available + :q, reserved = reserved - :q", "reserved >= :q")
    };
    let update = Update::builder()
        .table_name(&tables.products)
        .key("sku", s(sku))
        .update_expression(expression)
        .condition_expression(condition)
        .expression_attribute_values(":q", n(quantity));
    let update = if reserve { update.expression_attribute_values(":zero", n(0)) } else { update };
    let update = update.build().map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

/// Open orders are found through a sparse index (`OpenOrders`: `openShard`, `openedAt`) over
/// one marker item per open order (`version` 0, never an event), put with `Opened` and deleted
/// with the event that ends the saga, in the same transaction.
pub const OPEN_ORDERS: ShardedIndex = ShardedIndex {
    name: "OpenOrders",
    shard_attribute: "openShard",
    prefix: "OPEN#",
    shards: 4,
    sort_attribute: "openedAt",
};
const MARKER_VERSION: u32 = 0;

/// The marker's put or delete, for an event that starts or ends a saga.
fn open_marker(tables: &ShopTables, change: &OrderChange<'_>) -> Result<Option<TransactWriteItem>, StoreError> {
    let key = |id: OrderId| [("orderId".to_owned(), s(id.to_string())), ("version".to_owned(), n(MARKER_VERSION))];
    Ok(Some(match change.event.saga() {
        SagaStep::None => return Ok(None),
        SagaStep::Starts { at } => {
            let put = Put::builder()
                .table_name(&tables.orders)
                .set_item(Some(key(change.order_id).into_iter().collect()))
                .item(OPEN_ORDERS.shard_attribute, OPEN_ORDERS.shard_of(change.order_id.0))
                .item(OPEN_ORDERS.sort_attribute, s(at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)))
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().put(put).build()
        }
        SagaStep::Ends => {
            let delete = Delete::builder()
                .table_name(&tables.orders)
                .set_key(Some(key(change.order_id).into_iter().collect()))
                .build()
                .map_err(build_error)?;
            TransactWriteItem::builder().delete(delete).build()
        }
    }))
}

/// The outbox entry, written in the same transaction as the event that caused it.
fn outbox_put(tables: &ShopTables, event: &crate::events::Outbound) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(&tables.outbox)
        .item("eventId", s(event.event_id.to_string()))
        .item("source", s(&event.source))
        .item("detailType", s(&event.detail_type))
        .item("detail", s(&event.detail))
        .item("createdAt", s(Utc::now().to_rfc3339()))
        // The relay finds entries through the sparse `pending` index (see outbox.rs).
        .item(super::outbox::PENDING.shard_attribute, super::DynamoOutbox::pending_shard(&event.event_id))
        .condition_expression("attribute_not_exists(eventId)")
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

/// One event item as stored: also what a DynamoDB Streams record's new image holds.
pub fn recorded(item: &super::Item) -> Result<Recorded, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    let event: OrderEvent = serde_json::from_str(get_s(item, "event")?).map_err(|e| corrupt(e.to_string()))?;
    let version: i64 = super::get_n(item, "version")?;
    let version =
        u32::try_from(version).ok().filter(|v| *v > 0).ok_or_else(|| corrupt(format!("version {version}")))?;
    Ok(Recorded {
        version,
        event,
        // Events stored before the audit trail have none.
        correlation_id: item.get("correlationId").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default(),
    })
}

#[async_trait]
impl OrderStore for DynamoShop {
    async fn history(&self, id: OrderId) -> Result<Vec<Recorded>, StoreError> {
        let mut history = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.tables.orders)
                // Events only: version 0 is the open-order marker.
                .key_condition_expression("orderId = :id AND version > :marker")
                .expression_attribute_values(":id", s(id.to_string()))
                .expression_attribute_values(":marker", n(MARKER_VERSION))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                history.push(recorded(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) if !key.is_empty() => start = Some(key.clone()),
                _ => return Ok(history),
            }
        }
    }

    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        let mut items = vec![event_put(&self.tables, &change)?];
        let lines = match change.stock {
            StockEffect::None => &[][..],
            StockEffect::Reserve(lines) | StockEffect::Release(lines) => lines,
        };
        let reserve = matches!(change.stock, StockEffect::Reserve(_));
        for line in lines {
            items.push(stock_update(&self.tables, line.sku.as_str(), line.quantity, reserve)?);
        }
        if let Some(event) = change.outbox {
            items.push(outbox_put(&self.tables, event)?);
        }
        items.extend(open_marker(&self.tables, &change)?);
        let Err(err) = self.client.transact_write_items().set_transact_items(Some(items)).send().await else {
            return Ok(());
        };
        match transact_failure(err) {
            // A cancelled transaction says, per action, which condition failed.
            TransactFailure::Conditions(failed) if failed.contains(&0) => Err(CommitError::VersionConflict),
            TransactFailure::Conditions(failed) => {
                let short = failed.iter().filter_map(|&i| i.checked_sub(1).and_then(|l| lines.get(l)));
                Err(CommitError::InsufficientStock(short.map(|l| l.sku.clone()).collect()))
            }
            TransactFailure::Store(e) => Err(e.into()),
        }
    }

    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        let cutoff = before.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let items = OPEN_ORDERS.oldest_before(&self.client, &self.tables.orders, &cutoff, limit).await?;
        let open_order = |item: &super::Item| -> Result<OpenOrder, StoreError> {
            let order_id = get_s(item, "orderId")?.parse().map_err(|e| StoreError::Corrupt(format!("{e}")))?;
            let opened_at = DateTime::parse_from_rfc3339(get_s(item, OPEN_ORDERS.sort_attribute)?)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?
                .with_timezone(&Utc);
            Ok(OpenOrder { order_id, opened_at })
        };
        let mut open = items.iter().map(open_order).collect::<Result<Vec<_>, _>>()?;
        open.sort_by_key(|o| o.opened_at);
        open.truncate(limit);
        Ok(open)
    }
}
