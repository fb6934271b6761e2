//! The in-memory ledger for tests: balance, ledger and the order records change under one
//! lock, conditions checked first, as they change in one DynamoDB transaction. Each call
//! yields once, as a network round trip would, so that concurrent deliveries interleave.

use crate::{Change, Credit, LedgerError, LoyaltyLedger};
use async_trait::async_trait;
use shared::adapters::memory_records::RecordTable;
use shared::domain::{CustomerId, OrderId};
use shared::out_of_order::OrderRecord;
use shared::ports::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
struct State {
    balances: HashMap<CustomerId, i64>,
    entries: Vec<Credit>,
    records: RecordTable,
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

    /// The ledger entries, one per credited order, in the order they were written.
    pub fn entries(&self) -> Vec<Credit> {
        self.state.lock().unwrap().entries.clone()
    }

    /// The consumer's record of an order.
    pub fn order_record(&self, consumer: &'static str, order_id: OrderId) -> OrderRecord {
        self.state.lock().unwrap().records.get(consumer, order_id)
    }

    pub fn fail_next(&self) {
        self.state.lock().unwrap().fail_next = true;
    }
}

#[async_trait]
impl LoyaltyLedger for MemoryLedger {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.order_record(consumer, order_id))
    }

    async fn apply(&self, record: &OrderRecord, change: &Change) -> Result<(), LedgerError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if std::mem::take(&mut s.fail_next) {
            return Err(StoreError::Unavailable("injected fault".into()).into());
        }
        s.records.check(record)?;
        match change {
            Change::Credit(credit) => {
                *s.balances.entry(credit.customer_id.clone()).or_default() += credit.points;
                s.entries.push(credit.clone());
            }
            Change::Reverse(credit) => {
                let balance = s.balances.get(&credit.customer_id).copied().unwrap_or(0);
                if balance < credit.points {
                    return Err(LedgerError::Overdrawn { customer: credit.customer_id.clone(), points: credit.points });
                }
                s.balances.insert(credit.customer_id.clone(), balance - credit.points);
                s.entries.retain(|entry| entry.order_id != credit.order_id);
            }
            Change::Nothing => {}
        }
        s.records.put(record.clone());
        Ok(())
    }
}
