use super::{build_error, failed_conditions, get_s, n, s, unavailable};
use crate::domain::{Order, OrderEvent, OrderId};
use crate::ports::*;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::Utc;

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
        // Optimistic concurrency: this version of this order must not exist yet.
        .condition_expression("attribute_not_exists(orderId)")
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

fn stock_update(tables: &ShopTables, sku: &str, quantity: u32, reserve: bool) -> Result<TransactWriteItem, StoreError> {
    let (expression, condition) = if reserve {
        ("SET available = available - :q, reserved = reserved + :q", "available >= :q")
    } else {
        ("SET available = available + :q, reserved = reserved - :q", "reserved >= :q")
    };
    let update = Update::builder()
        .table_name(&tables.products)
        .key("sku", s(sku))
        .update_expression(expression)
        .condition_expression(condition)
        .expression_attribute_values(":q", n(quantity))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
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
        .condition_expression("attribute_not_exists(eventId)")
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().put(put).build())
}

#[async_trait]
impl OrderStore for DynamoShop {
    async fn load(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.tables.orders)
            .key_condition_expression("orderId = :id")
            .expression_attribute_values(":id", s(id.to_string()))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        let events: Vec<OrderEvent> = out
            .items()
            .iter()
            .map(|item| serde_json::from_str(get_s(item, "event")?).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<_, _>>()?;
        Order::replay(id, &events).map_err(|e| StoreError::Corrupt(e.to_string()))
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
        let result = self.client.transact_write_items().set_transact_items(Some(items)).send().await;
        let Err(err) = result else { return Ok(()) };
        // A cancelled transaction says, per action, which condition failed.
        let failed = failed_conditions(&err);
        if failed.contains(&0) {
            return Err(CommitError::VersionConflict);
        }
        let short: Vec<_> =
            failed.iter().filter(|&&i| i >= 1 && i <= lines.len()).map(|&i| lines[i - 1].sku.clone()).collect();
        if !short.is_empty() {
            return Err(CommitError::InsufficientStock(short));
        }
        Err(unavailable(err).into())
    }
}
