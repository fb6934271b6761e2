//! In-memory stock for tests: conditions checked first, then everything applied under one
//! lock, as one DynamoDB transaction does. Each call yields once, as a network round trip
//! would, so that concurrent deliveries really interleave.

use crate::{CommitError, Level, Movement, Stock};
use async_trait::async_trait;
use shared::adapters::memory_records::RecordTable;
use shared::domain::{OrderId, Sku};
use shared::out_of_order::OrderRecord;
use shared::ports::StoreError;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Product {
    pub available: i64,
    pub reserved: i64,
    pub threshold: Option<i64>,
}

impl Product {
    /// The product after `movement` of `q`, or `None` when its condition fails.
    pub fn moved(self, movement: Movement, q: i64) -> Option<Product> {
        match movement {
            Movement::Commit => (self.reserved >= q).then_some(Product { reserved: self.reserved - q, ..self }),
            Movement::Restock => Some(Product { available: self.available + q, ..self }),
            Movement::Release => (self.reserved >= q).then_some(Product {
                reserved: self.reserved - q,
                available: self.available + q,
                ..self
            }),
        }
    }
}

#[derive(Default)]
struct State {
    products: HashMap<Sku, Product>,
    records: RecordTable,
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

    /// The consumer's record of an order.
    pub fn order_record(&self, consumer: &'static str, order_id: OrderId) -> OrderRecord {
        self.state.lock().unwrap().records.get(consumer, order_id)
    }

    /// How many orders have a record: those whose stock moved at least once.
    pub fn records(&self) -> usize {
        self.state.lock().unwrap().records.len()
    }

    /// The next `n` stock movements fail as if DynamoDB were unavailable.
    pub fn fail_next_commits(&self, n: u32) {
        self.state.lock().unwrap().fail_commits = n;
    }
}

#[async_trait]
impl Stock for MemoryStock {
    async fn record(&self, consumer: &'static str, order_id: OrderId) -> Result<OrderRecord, StoreError> {
        tokio::task::yield_now().await;
        Ok(self.order_record(consumer, order_id))
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

    async fn apply(&self, record: &OrderRecord, movement: Movement, lines: &[(Sku, u64)]) -> Result<(), CommitError> {
        tokio::task::yield_now().await;
        let mut s = self.state.lock().unwrap();
        if s.fail_commits > 0 {
            s.fail_commits -= 1;
            return Err(StoreError::Unavailable("injected fault".into()).into());
        }
        s.records.check(record)?;
        let (mut moved, mut refused) = (Vec::new(), Vec::new());
        for (sku, q) in lines {
            match s.products.get(sku).and_then(|p| p.moved(movement, i64::try_from(*q).ok()?)) {
                Some(product) => moved.push((sku.clone(), product)),
                None => refused.push(sku.clone()),
            }
        }
        if !refused.is_empty() {
            return Err(match movement {
                Movement::Commit | Movement::Release => CommitError::NotReserved(refused),
                Movement::Restock => CommitError::UnknownProducts(refused),
            });
        }
        s.products.extend(moved);
        s.records.put(record.clone());
        Ok(())
    }
}
