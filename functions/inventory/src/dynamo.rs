//! ProductsTable (`sku`: `available`, `reserved`, `lowStockThreshold`); the order records live
//! in the ProcessedEvents table and are written in the same transaction as the stock.

use crate::{CommitError, Level, Movement, Stock};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::order_records::{self, record_put, transact_in_order, InOrder};
use shared::adapters::dynamodb::{batch_get_skus, build_error, get_n, get_s, n, s, Item};
use shared::domain::{OrderId, Sku};
use shared::out_of_order::OrderRecord;
use shared::ports::StoreError;
use std::collections::HashMap;

pub struct DynamoStock {
    pub client: Client,
    pub products_table: String,
    pub processed_table: String,
}

fn level(item: &Item) -> Result<(Sku, Level), StoreError> {
    let threshold = item.contains_key("lowStockThreshold").then(|| get_n(item, "lowStockThreshold")).transpose()?;
    Ok((Sku::from(get_s(item, "sku")?), Level { available: get_n(item, "available")?, threshold }))
}

/// One line's update. Every condition is also false when the product does not exist, so that
/// no movement ever creates a product item.
fn movement(table: &str, movement: Movement, sku: &Sku, quantity: u64) -> Result<TransactWriteItem, StoreError> {
    let (update, condition) = match movement {
        Movement::Commit => ("SET #reserved = #reserved - :q", "#reserved >= :q"),
        Movement::Restock => ("SET #available = #available + :q", "attribute_exists(#available)"),
        Movement::Release => ("SET #reserved = #reserved - :q, #available = #available + :q", "#reserved >= :q"),
    };
    let mut builder = Update::builder()
        .table_name(table)
        .key("sku", s(sku.as_str()))
        .update_expression(update)
        .condition_expression(condition)
        .expression_attribute_values(":q", n(quantity));
    for name in ["reserved", "available"] {
        if update.contains(&format!("#{name}")) || condition.contains(&format!("#{name}")) {
            builder = builder.expression_attribute_names(format!("#{name}"), name);
        }
    }
    Ok(TransactWriteItem::builder().update(builder.build().map_err(build_error)?).build())
}

#[async_trait]
impl Stock for DynamoStock {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        order_records::load(&self.client, &self.processed_table, consumer, order_id).await
    }

    async fn levels(&self, skus: &[Sku]) -> Result<HashMap<Sku, Level>, StoreError> {
        let projection = "sku, #available, lowStockThreshold";
        // The checkout's reservation was just written: read it, not an older copy.
        let items =
            batch_get_skus(&self.client, &self.products_table, skus, projection, &[("#available", "available")], true)
                .await?;
        items.iter().map(level).collect()
    }

    async fn apply(&self, record: &OrderRecord, kind: Movement, lines: &[(Sku, u64)]) -> Result<(), CommitError> {
        let mut items = vec![record_put(&self.processed_table, record)?];
        for (sku, quantity) in lines {
            items.push(movement(&self.products_table, kind, sku, *quantity)?);
        }
        match transact_in_order(&self.client, items).await? {
            InOrder::Applied => Ok(()),
            InOrder::ConditionsFailed(actions) => {
                // Action i + 1 is line i (action 0 is the record).
                let skus = actions.iter().filter_map(|i| lines.get(i.wrapping_sub(1))).map(|(sku, _)| sku.clone());
                Err(match kind {
                    Movement::Commit | Movement::Release => CommitError::NotReserved(skus.collect()),
                    Movement::Restock => CommitError::UnknownProducts(skus.collect()),
                })
            }
        }
    }
}
