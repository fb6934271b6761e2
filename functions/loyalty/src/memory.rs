//! The in-memory ledger for tests: balance, ledger and markers change under one lock, as
//! they change in one DynamoDB transaction.

use crate::{Credit, LoyaltyLedger};
use async_trait::async_trait;
use shared::domain::CustomerId;
use shared::ports::{Applied, Marker, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

#[derive(Default)]
struct State {
    balances: HashMap<CustomerId, i64>,
    entries: Vec<Credit>,
    markers: HashSet<String>,
    fail_next: bool,
}

#[derive(Default)]
pub struct MemoryLedger {
    state: Mutex<State>,
}

impl MemoryLedger {
    pub fn balance(&self, customer: &str) -> i64 {
        self.state.lock().unwrap().balances.get(&CustomerId(customer.to_owned())).copied().unwrap_or(0)
    }

    pub fn entries(&self) -> Vec<Credit> {
        self.state.lock().unwrap().entries.clone()
    }

    pub fn fail_next(&self) {
        self.state.lock().unwrap().fail_next = true;
    }
}

#[async_trait]
impl LoyaltyLedger for MemoryLedger {
    async fn credit(&self, marker: &Marker, credit: &Credit) -> Result<Applied, StoreError> {
        let mut s = self.state.lock().unwrap();
        if std::mem::take(&mut s.fail_next) {
            return Err(StoreError::Unavailable("injected fault".into()));
        }
        if !s.markers.insert(marker.key()) {
            return Ok(Applied::AlreadyProcessed);
        }
        *s.balances.entry(credit.customer_id.clone()).or_default() += credit.points;
        s.entries.push(credit.clone());
        Ok(Applied::Done)
    }
}
