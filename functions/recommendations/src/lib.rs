//! Recommendations: "bought together with", from co-purchase counts.
//!
//! The consumer adds one to a counter for every ordered pair of distinct SKUs in an order (both
//! directions), in one transaction with the processed-event marker. The API reads a SKU's
//! counters and answers its top five.
//!
//! A transaction takes 100 actions and an order of n SKUs has n·(n−1) ordered pairs (50 SKUs:
//! 2450). Only the first `MAX_SKUS_PAIRED` distinct SKUs of an order are paired: 10 SKUs give
//! 90 pairs, which with the marker fit one transaction, so an order still counts exactly once
//! by the same mechanism as every other consumer. Splitting into several transactions would
//! need a marker per part and would expose half-counted orders; for a popularity signal, the
//! pairs beyond the tenth SKU of a rare very large order (a bulk buy, a weak signal) are not
//! worth that. Capped orders are logged.

pub mod api;
pub mod dynamo;
pub mod memory;

use async_trait::async_trait;
use serde::Serialize;
use shared::config::{Env, MissingEnv};
use shared::consumer::{Consumer, ConsumerError, Delivery, Outcome};
use shared::domain::Sku;
use shared::events::{Envelope, OrderPlacedV2};
use shared::ports::{Applied, Marker, StoreError};

/// 10 · 9 = 90 pair counters + 1 marker ≤ 100 actions of one transaction.
pub const MAX_SKUS_PAIRED: usize = 10;

/// How many recommendations the API answers.
pub const TOP: usize = 5;

/// "`other` was bought together with `sku`".
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pair {
    pub sku: Sku,
    pub other: Sku,
}

/// Both directions of every pair of distinct SKUs among the order's first `MAX_SKUS_PAIRED`.
pub fn pairs(order: &OrderPlacedV2) -> Vec<Pair> {
    let mut skus: Vec<&Sku> = Vec::new();
    for line in &order.lines {
        if !skus.contains(&&line.sku) {
            skus.push(&line.sku);
        }
    }
    if skus.len() > MAX_SKUS_PAIRED {
        tracing::info!(skus = skus.len(), paired = MAX_SKUS_PAIRED, "order has more SKUs than are paired");
        skus.truncate(MAX_SKUS_PAIRED);
    }
    skus.iter()
        .flat_map(|a| {
            skus.iter().filter(move |b| a != *b).map(move |b| Pair { sku: (*a).clone(), other: (*b).clone() })
        })
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommendation {
    pub sku: Sku,
    pub count: u64,
}

/// The most often co-purchased first, ties by SKU so that the answer is stable.
pub fn top(mut all: Vec<Recommendation>, n: usize) -> Vec<Recommendation> {
    all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.sku.cmp(&b.sku)));
    all.truncate(n);
    all
}

/// The co-purchase counters, as the consumer writes them.
#[async_trait]
pub trait CoPurchases: Send + Sync {
    /// Adds one to each pair's counter, atomically with `marker`: if it exists, nothing changes.
    async fn count(&self, marker: &Marker, pairs: &[Pair]) -> Result<Applied, StoreError>;
}

/// The co-purchase counters, as the API reads them.
#[async_trait]
pub trait BoughtWith: Send + Sync {
    /// Every SKU bought together with `sku`, with its count, in no particular order.
    async fn bought_with(&self, sku: &Sku) -> Result<Vec<Recommendation>, StoreError>;
}

pub struct Recommendations<S> {
    pub store: S,
}

#[async_trait]
impl<S: CoPurchases> Consumer for Recommendations<S> {
    type Event = OrderPlacedV2;
    const NAME: &'static str = "recommendations";

    async fn handle(&self, event: &Envelope<OrderPlacedV2>, delivery: &Delivery) -> Result<Outcome, ConsumerError> {
        let pairs = pairs(&event.data);
        Ok(self.store.count(&delivery.marker(Self::NAME, event.event_id), &pairs).await?.into())
    }
}

impl Recommendations<dynamo::DynamoCoPurchases> {
    /// Wired to AWS from its environment: the same for Lambda and the local runner.
    pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Self, MissingEnv> {
        Ok(Recommendations { store: dynamo::DynamoCoPurchases::from_env(env, aws)? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::testing::order_placed;

    fn pair(sku: &str, other: &str) -> Pair {
        Pair { sku: sku.into(), other: other.into() }
    }

    #[test]
    fn every_pair_of_distinct_skus_is_counted_in_both_directions() {
        let order = order_placed("ada", &[("MUG", 1, 1), ("TEE", 1, 1), ("CAP", 1, 1)]).data;
        let mut found = pairs(&order);
        found.sort();
        let mut expected = vec![
            pair("MUG", "TEE"),
            pair("TEE", "MUG"),
            pair("MUG", "CAP"),
            pair("CAP", "MUG"),
            pair("TEE", "CAP"),
            pair("CAP", "TEE"),
        ];
        expected.sort();
        assert_eq!(found, expected);
    }

    #[test]
    fn a_repeated_sku_is_one_sku_and_never_its_own_pair() {
        let order = order_placed("ada", &[("MUG", 1, 1), ("MUG", 2, 1)]).data;
        assert!(pairs(&order).is_empty());
    }

    #[test]
    fn the_largest_order_pairs_its_first_ten_skus_which_fit_one_transaction_with_the_marker() {
        let skus: Vec<String> = (0..50).map(|i| format!("SKU-{i:02}")).collect();
        let lines: Vec<(&str, u32, i64)> = skus.iter().map(|s| (s.as_str(), 1, 1)).collect();
        let found = pairs(&order_placed("ada", &lines).data);
        // With the marker: 91 of the 100 actions a transaction takes.
        assert_eq!(found.len(), 90);
        assert!(found.iter().all(|p| p.sku.as_str() < "SKU-10" && p.other.as_str() < "SKU-10"), "only the first ten");
    }

    #[test]
    fn top_orders_by_count_then_sku_and_keeps_n() {
        let r = |sku: &str, count| Recommendation { sku: sku.into(), count };
        let all = vec![r("A", 1), r("C", 5), r("B", 5), r("D", 3)];
        assert_eq!(top(all, 3), vec![r("B", 5), r("C", 5), r("D", 3)]);
    }
}
