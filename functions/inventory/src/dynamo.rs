//! ProductsTable (`sku`: `available`, `reserved`, `lowStockThreshold`) and the
//! ProcessedEvents markers.

use crate::{CommitError, Level, Stock};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::processed::{marker_put, transact_once_guarded, Guarded};
use shared::adapters::dynamodb::{batch_get_skus, build_error, get_n, get_s, n, s, unavailable, Item};
use shared::domain::Sku;
use shared::ports::{Applied, Marker, StoreError};
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

fn take_reserved(table: &str, sku: &Sku, quantity: u64) -> Result<TransactWriteItem, StoreError> {
    let update = Update::builder()
        .table_name(table)
        .key("sku", s(sku.as_str()))
        .update_expression("SET #reserved = #reserved - :q")
        // Also false when the product does not exist: nothing was reserved for it.
        .condition_expression("#reserved >= :q")
        .expression_attribute_names("#reserved", "reserved")
        .expression_attribute_values(":q", n(quantity))
        .build()
        .map_err(build_error)?;
    Ok(TransactWriteItem::builder().update(update).build())
}

#[async_trait]
impl Stock for DynamoStock {
    async fn is_processed(&self, marker: &Marker) -> Result<bool, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.processed_table)
            .key("id", s(marker.key()))
            .projection_expression("id")
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item().is_some())
    }

    async fn levels(&self, skus: &[Sku]) -> Result<HashMap<Sku, Level>, StoreError> {
        let projection = "sku, #available, lowStockThreshold";
        // The checkout's reservation was just written: read it, not an older copy.
        let items =
            batch_get_skus(&self.client, &self.products_table, skus, projection, &[("#available", "available")], true)
                .await?;
        items.iter().map(level).collect()
    }

    async fn commit(&self, marker: &Marker, lines: &[(Sku, u64)]) -> Result<Applied, CommitError> {
        let mut items = vec![marker_put(&self.processed_table, marker)?];
        for (sku, quantity) in lines {
            items.push(take_reserved(&self.products_table, sku, *quantity)?);
        }
        match transact_once_guarded(&self.client, items).await? {
            Guarded::Applied(applied) => Ok(applied),
            // Action i + 1 is line i (action 0 is the marker).
            Guarded::ConditionsFailed(actions) => Err(CommitError::NotReserved(
                actions.iter().filter_map(|i| lines.get(i.wrapping_sub(1))).map(|(sku, _)| sku.clone()).collect(),
            )),
        }
    }
}
