//! In-memory co-purchase counters for tests, both sides of the table: counters and markers
//! change under one lock, as in one DynamoDB transaction. Each call yields once, as a network
//! round trip would, so that concurrent deliveries really interleave.

use crate::{BoughtWith, CoPurchases, Pair, Recommendation};
use async_trait::async_trait;
use shared::domain::Sku;
use shared::ports::{Applied, Marker, StoreError};
use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    counts: BTreeMap<Pair, u64>,
    markers: HashSet<String>,
    fail_writes: u32,
    fail_reads: u32,
}

#[derive(Default)]
pub struct MemoryCoPurchases {
    state: Mutex<State>,
}

impl MemoryCoPurchases {
    /// A counter as if `count` orders had bought `sku` with `other`.
    pub fn with(self, sku: &str, other: &str, count: u64) -> Self {
        self.state.lock().unwrap().counts.insert(Pair { sku: sku.into(), other: other.into() }, count);
        self
    }

    pub fn count(&self, sku: &str, other: &str) -> u64 {
        self.state.lock().unwrap().counts.get(&Pair { sku: sku.into(), other: other.into() }).copied().unwrap_or(0)
    }

    pub fn counters(&self) -> usize {
        self.state.lock().unwrap().counts.len()
    }

    /// The next `n` writes fail as if DynamoDB were unavailable.
    pub fn fail_next_writes(&self, n: u32) {
        self.state.lock().unwrap().fail_writes = n;
    }

    /// The next `n` reads fail as if DynamoDB were unavailable.
    pub fn fail_next_reads(&self, n: u32) {
        self.state.lock().unwrap().fail_reads = n;
    }
}

fn take_fault(remaining: &mut u32) -> Result<(), StoreError> {
    if *remaining == 0 {
        return Ok(());
    }
    *remaining -= 1;
    Err(StoreError::Unavailable("injected fault".into()))
}

#[async_trait]
impl CoPurchases for MemoryCoPurchases {
    async fn count(&self, marker: &Marker, pairs: &[Pair]) -> Result<Applied, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        take_fault(&mut s.fail_writes)?;
        if !s.markers.insert(marker.key()) {
            return Ok(Applied::AlreadyProcessed);
        }
        for pair in pairs {
            *s.counts.entry(pair.clone()).or_default() += 1;
        }
        Ok(Applied::Done)
    }
}

#[async_trait]
impl BoughtWith for MemoryCoPurchases {
    async fn bought_with(&self, sku: &Sku) -> Result<Vec<Recommendation>, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        take_fault(&mut s.fail_reads)?;
        Ok(s.counts
            .iter()
            .filter(|(p, _)| &p.sku == sku)
            .map(|(p, c)| Recommendation { sku: p.other.clone(), count: *c })
            .collect())
    }
}
