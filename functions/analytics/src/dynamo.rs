//! AnalyticsTable (`pk`, `sk`), one item per counter set:
//! - `DAY#<yyyy-mm-dd>` / `CURRENCY#<code>`: `revenue`, `orders`, `units`;
//! - `SKU#<sku>` / `DAY#<yyyy-mm-dd>#<code>`: `units`, `revenue`.
//!
//! A SKU's days sort by date within its partition, so a date range is one Query.

use crate::{Counters, Tally};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::processed::{marker_put, transact_once};
use shared::adapters::dynamodb::{build_error, n, s};
use shared::ports::{Applied, Marker, StoreError};

pub struct DynamoCounters {
    pub client: Client,
    pub analytics_table: String,
    pub processed_table: String,
}

impl DynamoCounters {
    /// `ADD` to each named counter; names are aliased, so no counter can collide with one of
    /// DynamoDB's reserved words.
    fn add(&self, pk: String, sk: String, counters: &[(&str, String)]) -> Result<TransactWriteItem, StoreError> {
        let expression = counters.iter().map(|(name, _)| format!("#{name} :{name}")).collect::<Vec<_>>().join(", ");
        let update = counters
            .iter()
            .fold(Update::builder(), |u, (name, value)| {
                u.expression_attribute_names(format!("#{name}"), *name)
                    .expression_attribute_values(format!(":{name}"), n(value))
            })
            .table_name(&self.analytics_table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression(format!("ADD {expression}"))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl Counters for DynamoCounters {
    async fn add(&self, marker: &Marker, tally: &Tally) -> Result<Applied, StoreError> {
        let (day, currency) = (tally.day.format("%Y-%m-%d"), tally.currency.code());
        let mut items = vec![
            marker_put(&self.processed_table, marker)?,
            self.add(
                format!("DAY#{day}"),
                format!("CURRENCY#{currency}"),
                &[("revenue", tally.revenue.to_string()), ("orders", "1".into()), ("units", tally.units.to_string())],
            )?,
        ];
        for sku in &tally.skus {
            items.push(self.add(
                format!("SKU#{}", sku.sku),
                format!("DAY#{day}#{currency}"),
                &[("units", sku.quantity.to_string()), ("revenue", sku.revenue.to_string())],
            )?);
        }
        transact_once(&self.client, items).await
    }
}
