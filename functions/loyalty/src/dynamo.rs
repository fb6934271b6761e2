//! LoyaltyTable: `customerId` + `entry`. `entry = "BALANCE"` holds `points` and `orders`;
//! `entry = "ORDER#<orderId>"` is the ledger line of one credit. The order records live in
//! the ProcessedEvents table and are written in the same transaction as the ledger.

use crate::{Change, Credit, LedgerError, LoyaltyLedger};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{Delete, Put, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::order_records::{self, record_put, transact_in_order, InOrder};
use shared::adapters::dynamodb::{build_error, n, s};
use shared::domain::OrderId;
use shared::out_of_order::OrderRecord;
use shared::ports::StoreError;

pub struct DynamoLedger {
    pub client: Client,
    pub loyalty_table: String,
    pub processed_table: String,
}

impl DynamoLedger {
    fn entry_key(credit: &Credit) -> String {
        format!("ORDER#{}", credit.order_id)
    }

    fn credit(&self, credit: &Credit) -> Result<[TransactWriteItem; 2], StoreError> {
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
            .item("entry", s(Self::entry_key(credit)))
            .item("orderId", s(credit.order_id.to_string()))
            .item("points", n(credit.points))
            .item("creditedAt", s(chrono::Utc::now().to_rfc3339()))
            .build()
            .map_err(build_error)?;
        Ok([TransactWriteItem::builder().update(balance).build(), TransactWriteItem::builder().put(entry).build()])
    }

    fn reverse(&self, credit: &Credit) -> Result<[TransactWriteItem; 2], StoreError> {
        let balance = Update::builder()
            .table_name(&self.loyalty_table)
            .key("customerId", s(credit.customer_id.as_str()))
            .key("entry", s("BALANCE"))
            .update_expression("ADD points :minus, orders :minus_one")
            // Never below zero: also false when there is no balance at all.
            .condition_expression("points >= :p")
            .expression_attribute_values(":p", n(credit.points))
            .expression_attribute_values(":minus", n(-credit.points))
            .expression_attribute_values(":minus_one", n(-1))
            .build()
            .map_err(build_error)?;
        let entry = Delete::builder()
            .table_name(&self.loyalty_table)
            .key("customerId", s(credit.customer_id.as_str()))
            .key("entry", s(Self::entry_key(credit)))
            .build()
            .map_err(build_error)?;
        Ok([TransactWriteItem::builder().update(balance).build(), TransactWriteItem::builder().delete(entry).build()])
    }
}

#[async_trait]
impl LoyaltyLedger for DynamoLedger {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        order_records::load(&self.client, &self.processed_table, consumer, order_id).await
    }

    async fn apply(&self, record: &OrderRecord, change: &Change) -> Result<(), LedgerError> {
        let mut items = vec![record_put(&self.processed_table, record)?];
        match change {
            Change::Credit(credit) => items.extend(self.credit(credit)?),
            Change::Reverse(credit) => items.extend(self.reverse(credit)?),
            Change::Nothing => {}
        }
        match transact_in_order(&self.client, items).await? {
            InOrder::Applied => Ok(()),
            // Only the reversal's balance (action 1) carries a condition of its own.
            InOrder::ConditionsFailed(_) => match change {
                Change::Reverse(credit) => {
                    Err(LedgerError::Overdrawn { customer: credit.customer_id.clone(), points: credit.points })
                }
                _ => Err(StoreError::Corrupt("a ledger condition failed that the ledger never sets".into()).into()),
            },
        }
    }
}
