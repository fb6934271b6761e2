//! In-memory counters for tests: counters and markers change under one lock, as they change
//! in one DynamoDB transaction. Each call yields once, as a network round trip would, so that
//! concurrent deliveries really interleave. The day's counters are kept per shard, as the
//! table keeps them, and read as their sum.

use crate::{Counters, DayTotals, Tally};
use async_trait::async_trait;
use chrono::NaiveDate;
use shared::domain::{Currency, Sku};
use shared::ports::{Applied, Marker, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

/// A day's counters in one currency (one shard's, or their sum).
pub type DayCounters = DayTotals;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SkuCounters {
    pub units: u64,
    pub revenue: i64,
}

#[derive(Default)]
struct State {
    days: HashMap<(NaiveDate, Currency, u8), DayCounters>,
    skus: HashMap<(Sku, NaiveDate, Currency), SkuCounters>,
    markers: HashSet<String>,
    fail_next: u32,
}

#[derive(Default)]
pub struct MemoryCounters {
    state: Mutex<State>,
}

impl MemoryCounters {
    /// The day's totals: the sum of its shards, as a reader of the table computes them.
    pub fn day(&self, day: NaiveDate, currency: Currency) -> DayCounters {
        DayTotals::sum(self.day_shards(day, currency).into_iter().map(|(_, counters)| counters))
    }

    /// The day's shards that were written, by shard number.
    pub fn day_shards(&self, day: NaiveDate, currency: Currency) -> Vec<(u8, DayCounters)> {
        let s = self.state.lock().unwrap();
        let mut shards: Vec<(u8, DayCounters)> =
            s.days.iter().filter(|((d, c, _), _)| *d == day && *c == currency).map(|((_, _, n), v)| (*n, *v)).collect();
        shards.sort_by_key(|(n, _)| *n);
        shards
    }

    pub fn sku(&self, sku: &str, day: NaiveDate, currency: Currency) -> SkuCounters {
        self.state.lock().unwrap().skus.get(&(sku.into(), day, currency)).copied().unwrap_or_default()
    }

    /// The next `n` writes fail as if DynamoDB were unavailable.
    pub fn fail_next(&self, n: u32) {
        self.state.lock().unwrap().fail_next = n;
    }
}

#[async_trait]
impl Counters for MemoryCounters {
    async fn add(&self, marker: &Marker, tally: &Tally) -> Result<Applied, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        if !s.markers.insert(marker.key()) {
            return Ok(Applied::AlreadyProcessed);
        }
        let day = s.days.entry((tally.day, tally.currency, tally.shard)).or_default();
        day.revenue += tally.revenue;
        day.orders += 1;
        day.units += tally.units;
        for line in &tally.skus {
            let sku = s.skus.entry((line.sku.clone(), tally.day, tally.currency)).or_default();
            sku.units += line.quantity;
            sku.revenue += line.revenue;
        }
        Ok(Applied::Done)
    }
}
