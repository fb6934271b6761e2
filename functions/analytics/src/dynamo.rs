//! AnalyticsTable (`pk`, `sk`), one item per counter set:
//! - `DAY#<yyyy-mm-dd>` / `CURRENCY#<code>#SHARD#<n>`, n in `0..DAY_SHARDS`: `revenue`,
//!   `orders`, `units`; a day's totals in a currency are the sum of its shards, read with one
//!   Query (`sk` begins with `CURRENCY#<code>#SHARD#`, [`DynamoCounters::day`]);
//! - `SKU#<sku>` / `DAY#<yyyy-mm-dd>#<code>#SHARD#<n>`: `units`, `revenue`; sharded the same
//!   way, because a popular SKU's day item is as hot as the day's own ([`DynamoCounters::sku_day`]).
//!
//! Why shards: every order of a day updated the one day item inside its marker transaction,
//! and DynamoDB serialises transactions on an item (a partition takes about 500 transactional
//! writes a second); concurrent pollers then cancel each other with `TransactionConflict`, and
//! a conflict cancels the whole transaction. With the order's event ID choosing one of
//! `DAY_SHARDS` items, concurrent orders rarely meet on one item, and the harness retries the
//! conflicts that remain in process.
//!
//! A SKU's days sort by date within its partition, so a date range is one Query.

use crate::{Counters, DayTotals, Tally};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use chrono::NaiveDate;
use shared::adapters::dynamodb::processed::{marker_put, transact_once};
use shared::adapters::dynamodb::{build_error, n, s, store_error};
use shared::domain::Currency;
use shared::ports::{Applied, Marker, StoreError};
use std::collections::HashMap;

/// The sort key of shard `shard` of a day's counters in `currency`.
pub fn day_shard_key(currency: &str, shard: u8) -> String {
    format!("CURRENCY#{currency}#SHARD#{shard}")
}

/// The sort key of shard `shard` of a SKU's counters of `day` (yyyy-mm-dd) in `currency`.
pub fn sku_shard_key(day: &str, currency: &str, shard: u8) -> String {
    format!("DAY#{day}#{currency}#SHARD#{shard}")
}

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

impl DynamoCounters {
    /// A day's totals in `currency`: one strongly consistent Query over the day's partition
    /// for the currency's shards, summed.
    pub async fn day(&self, day: NaiveDate, currency: Currency) -> Result<DayTotals, StoreError> {
        let pk = format!("DAY#{}", day.format("%Y-%m-%d"));
        let [revenue, orders, units] =
            self.sum_shards(pk, format!("CURRENCY#{}#SHARD#", currency.code()), ["revenue", "orders", "units"]).await?;
        Ok(DayTotals {
            revenue,
            orders: orders.try_into().unwrap_or_default(),
            units: units.try_into().unwrap_or_default(),
        })
    }

    /// A SKU's `(units, revenue)` of one day in `currency`, summed over its shards.
    pub async fn sku_day(&self, sku: &str, day: NaiveDate, currency: Currency) -> Result<(i64, i64), StoreError> {
        let prefix = format!("DAY#{}#{}#SHARD#", day.format("%Y-%m-%d"), currency.code());
        let [units, revenue] = self.sum_shards(format!("SKU#{sku}"), prefix, ["units", "revenue"]).await?;
        Ok((units, revenue))
    }

    /// The counters `names` summed over the items of partition `pk` whose sort key starts
    /// with `prefix`: one strongly consistent Query.
    async fn sum_shards<const N: usize>(
        &self,
        pk: String,
        prefix: String,
        names: [&str; N],
    ) -> Result<[i64; N], StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.analytics_table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :shards)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":shards", s(prefix))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut sums = [0i64; N];
        while let Some(item) = pages.next().await {
            let item: HashMap<String, AttributeValue> = item.map_err(store_error)?;
            for (sum, name) in sums.iter_mut().zip(names) {
                *sum += match item.get(name) {
                    None => 0,
                    Some(v) => v
                        .as_n()
                        .ok()
                        .and_then(|n| n.parse::<i64>().ok())
                        .ok_or_else(|| StoreError::Corrupt(format!("analytics counter {name} is not a number")))?,
                };
            }
        }
        Ok(sums)
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
                day_shard_key(currency, tally.shard),
                &[("revenue", tally.revenue.to_string()), ("orders", "1".into()), ("units", tally.units.to_string())],
            )?,
        ];
        for sku in &tally.skus {
            items.push(self.add(
                format!("SKU#{}", sku.sku),
                sku_shard_key(&day.to_string(), currency, tally.shard),
                &[("units", sku.quantity.to_string()), ("revenue", sku.revenue.to_string())],
            )?);
        }
        transact_once(&self.client, items).await
    }
}
