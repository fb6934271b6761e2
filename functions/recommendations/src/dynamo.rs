//! RecommendationsTable: `sku` + `otherSku` → `count`, one counter per ordered pair.

use crate::{BoughtWith, CoPurchases, Pair, Recommendation};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use aws_sdk_dynamodb::Client;
use shared::adapters::dynamodb::processed::{marker_put, transact_once};
use shared::adapters::dynamodb::{build_error, get_n, get_s, n, s, unavailable};
use shared::config::{Env, MissingEnv};
use shared::domain::Sku;
use shared::ports::{Applied, Marker, StoreError};

/// The consumer's side: counters and markers.
pub struct DynamoCoPurchases {
    pub client: Client,
    pub recommendations_table: String,
    pub processed_table: String,
}

impl DynamoCoPurchases {
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        Ok(DynamoCoPurchases {
            client: shared::config::dynamodb(aws),
            recommendations_table: env.get("RECOMMENDATIONS_TABLE")?,
            processed_table: env.get("PROCESSED_EVENTS_TABLE")?,
        })
    }

    fn increment(&self, pair: &Pair) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.recommendations_table)
            .key("sku", s(pair.sku.as_str()))
            .key("otherSku", s(pair.other.as_str()))
            .update_expression("ADD #count :one")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(build_error)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

#[async_trait]
impl CoPurchases for DynamoCoPurchases {
    async fn count(&self, marker: &Marker, pairs: &[Pair]) -> Result<Applied, StoreError> {
        let mut items = vec![marker_put(&self.processed_table, marker)?];
        for pair in pairs {
            items.push(self.increment(pair)?);
        }
        transact_once(&self.client, items).await
    }
}

/// The API's side: it only reads counters.
pub struct DynamoBoughtWith {
    pub client: Client,
    pub recommendations_table: String,
}

impl DynamoBoughtWith {
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        Ok(DynamoBoughtWith {
            client: shared::config::dynamodb(aws),
            recommendations_table: env.get("RECOMMENDATIONS_TABLE")?,
        })
    }
}

#[async_trait]
impl BoughtWith for DynamoBoughtWith {
    async fn bought_with(&self, sku: &Sku) -> Result<Vec<Recommendation>, StoreError> {
        // The partition is sorted by SKU, not by count: the top five need all of it. (At a
        // scale where one partition is many pages, keep a precomputed top-N item instead.)
        let mut found = Vec::new();
        let mut start = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.recommendations_table)
                .key_condition_expression("sku = :sku")
                .expression_attribute_values(":sku", s(sku.as_str()))
                .projection_expression("otherSku, #count")
                .expression_attribute_names("#count", "count")
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(unavailable)?;
            for item in out.items() {
                found.push(Recommendation { sku: Sku::from(get_s(item, "otherSku")?), count: get_n(item, "count")? });
            }
            start = out.last_evaluated_key().cloned();
            if start.is_none() {
                return Ok(found);
            }
        }
    }
}
