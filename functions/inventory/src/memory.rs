//! In-memory stock for tests: conditions checked first, then everything applied under one
//! lock, as one DynamoDB transaction does. Each call yields once, as a network round trip
//! would, so that concurrent deliveries really interleave.

use crate::{CommitError, Level, Stock};
use async_trait::async_trait;
use shared::domain::Sku;
use shared::ports::{Applied, Marker, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Product {
    pub available: i64,
    pub reserved: i64,
    pub threshold: Option<i64>,
}

#[derive(Default)]
struct State {
    products: HashMap<Sku, Product>,
    markers: HashSet<String>,
    fail_commits: u32,
}

#[derive(Default)]
pub struct MemoryStock {
    state: Mutex<State>,
}

impl MemoryStock {
    pub fn with(self, sku: &str, product: Product) -> Self {
        self.state.lock().unwrap().products.insert(sku.into(), product);
        self
    }

    pub fn product(&self, sku: &str) -> Option<Product> {
        self.state.lock().unwrap().products.get(&Sku::from(sku)).copied()
    }

    pub fn markers(&self) -> usize {
        self.state.lock().unwrap().markers.len()
    }

    /// The next `n` commits fail as if DynamoDB were unavailable.
    pub fn fail_next_commits(&self, n: u32) {
        self.state.lock().unwrap().fail_commits = n;
    }
}

#[async_trait]
impl Stock for MemoryStock {
    async fn is_processed(&self, marker: &Marker) -> Result<bool, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.state.lock().unwrap().markers.contains(&marker.key()))
    }

    async fn levels(&self, skus: &[Sku]) -> Result<HashMap<Sku, Level>, StoreError> {
        tokio::task::yield_now().await;
        let s = self.state.lock().unwrap();
        Ok(skus
            .iter()
            .filter_map(|sku| {
                s.products.get(sku).map(|p| (sku.clone(), Level { available: p.available, threshold: p.threshold }))
            })
            .collect())
    }

    async fn commit(&self, marker: &Marker, lines: &[(Sku, u64)]) -> Result<Applied, CommitError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if s.fail_commits > 0 {
            s.fail_commits -= 1;
            return Err(StoreError::Unavailable("injected fault".into()).into());
        }
        if s.markers.contains(&marker.key()) {
            return Ok(Applied::AlreadyProcessed);
        }
        let covered =
            |sku: &Sku, q: u64| s.products.get(sku).is_some_and(|p| i64::try_from(q).is_ok_and(|q| p.reserved >= q));
        let short: Vec<Sku> = lines.iter().filter(|(sku, q)| !covered(sku, *q)).map(|(sku, _)| sku.clone()).collect();
        if !short.is_empty() {
            return Err(CommitError::NotReserved(short));
        }
        for (sku, q) in lines {
            if let Some(p) = s.products.get_mut(sku) {
                p.reserved -= *q as i64;
            }
        }
        s.markers.insert(marker.key());
        Ok(Applied::Done)
    }
}
