//! The sandbox gateway's ledger in DynamoDB (SandboxPaymentsTable, key `paymentKey`), so
//! that the checkout and the recovery sweeper, in separate functions, see the same charges,
//! as they would through a real gateway's API. `outcome` is CHARGED | DECLINED | VOIDED | REFUNDED,
//! with `chargeId` or `refundId` and `amount`/`currency`, or `code`. The first entry written for a key stands.

use super::{get_n, get_s, n, s, unavailable, Item};
use crate::adapters::sandbox_payments::{LedgerEntry, SandboxLedger};
use crate::domain::Money;
use crate::ports::StoreError;
use async_trait::async_trait;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure;
use aws_sdk_dynamodb::Client;

#[derive(Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }
}

fn to_item(key: &str, entry: &LedgerEntry) -> Item {
    let mut item = Item::from([("paymentKey".to_owned(), s(key))]);
    match entry {
        LedgerEntry::Charged { charge_id, amount } => {
            item.insert("outcome".into(), s("CHARGED"));
            item.insert("chargeId".into(), s(charge_id));
            item.insert("amount".into(), n(amount.amount));
            item.insert("currency".into(), s(amount.currency.code()));
        }
        LedgerEntry::Declined { code } => {
            item.insert("outcome".into(), s("DECLINED"));
            item.insert("code".into(), s(code));
        }
        LedgerEntry::Voided => {
            item.insert("outcome".into(), s("VOIDED"));
        }
        LedgerEntry::Refunded { refund_id, amount } => {
            item.insert("outcome".into(), s("REFUNDED"));
            item.insert("refundId".into(), s(refund_id));
            item.insert("amount".into(), n(amount.amount));
            item.insert("currency".into(), s(amount.currency.code()));
        }
    }
    item
}

fn from_item(item: &Item) -> Result<LedgerEntry, StoreError> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    Ok(match get_s(item, "outcome")? {
        "CHARGED" => LedgerEntry::Charged {
            charge_id: get_s(item, "chargeId")?.to_owned(),
            amount: Money::new(
                get_n(item, "amount")?,
                get_s(item, "currency")?.parse().map_err(|e| corrupt(format!("{e}")))?,
            ),
        },
        "DECLINED" => LedgerEntry::Declined { code: get_s(item, "code")?.to_owned() },
        "VOIDED" => LedgerEntry::Voided,
        "REFUNDED" => LedgerEntry::Refunded {
            refund_id: get_s(item, "refundId")?.to_owned(),
            amount: Money::new(
                get_n(item, "amount")?,
                get_s(item, "currency")?.parse().map_err(|e| corrupt(format!("{e}")))?,
            ),
        },
        other => return Err(corrupt(format!("unknown ledger outcome {other}"))),
    })
}

#[async_trait]
impl SandboxLedger for DynamoLedger {
    async fn record(&self, key: &str, entry: &LedgerEntry) -> Result<(LedgerEntry, bool), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(key, entry)))
            .condition_expression("attribute_not_exists(paymentKey)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok((entry.clone(), true)),
            Err(err) => match err.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(e)) => {
                    let standing =
                        e.item().ok_or_else(|| StoreError::Corrupt("condition failed without the item".into()))?;
                    Ok((from_item(standing)?, false))
                }
                _ => Err(unavailable(err)),
            },
        }
    }
}
