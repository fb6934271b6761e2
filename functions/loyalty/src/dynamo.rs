//! LoyaltyTable: `customerId` + `entry`. `entry = "BALANCE"` holds `points` and `orders`;
//! `entry = "ORDER#<orderId>"` is the ledger line of one credit.

use crate::{Credit, LoyaltyLedger};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::processed::{marker_put, transact_once};
use shared::adapters::dynamodb::{build_error, n, s};
use shared::ports::{Applied, Marker, StoreError};

pub struct DynamoLedger {
    pub client: Client,
    pub loyalty_table: String,
    pub processed_table: String,
}

#[async_trait]
impl LoyaltyLedger for DynamoLedger {
    async fn credit(&self, marker: &Marker, credit: &Credit) -> Result<Applied, StoreError> {
        let balance = Update::builder()
            .table_name(&self.loyalty_table)
            .key("customerId", s(credit.customer_id.as_str()))
            .key("entry", s("BALANCE"))
            .update_expression("ADD points :p, orders :one")
            .expression_attribute_values(":p", n(credit.points))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_error)?;
        let entry = Put::builder()
            .table_name(&self.loyalty_table)
            .item("customerId", s(credit.customer_id.as_str()))
            .item("entry", s(format!("ORDER#{}", credit.order_id)))
            .item("orderId", s(credit.order_id.to_string()))
            .item("points", n(credit.points))
            .item("creditedAt", s(chrono::Utc::now().to_rfc3339()))
            .build()
            .map_err(build_error)?;
        let items = vec![
            marker_put(&self.processed_table, marker)?,
            TransactWriteItem::builder().update(balance).build(),
            TransactWriteItem::builder().put(entry).build(),
        ];
        transact_once(&self.client, items).await
    }
}
