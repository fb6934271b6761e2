//! In-memory views for tests, with the DynamoDB adapter's semantics: a conditional put on the
//! stored version, the `ByCustomer` order (list key descending) and its exclusive start key.
//! Each call yields once, as a network round trip would, so that concurrent projectors really
//! interleave. Also the event log of `MemoryShop`, for rebuilds in memory.

use crate::ports::{CustomerViews, EventLog, Histories, Saved, Scanned, ViewStore, ViewTable};
use crate::view::{Page, PageKey, View};
use async_trait::async_trait;
use shared::adapters::memory::MemoryShop;
use shared::domain::{CustomerId, OrderId};
use shared::ports::{OrderStore, StoreError};
use std::collections::BTreeMap;
use std::sync::Mutex;

#[derive(Default)]
struct State {
    views: BTreeMap<OrderId, View>,
    fail_reads: u32,
    fail_writes: u32,
    /// Written just before the next conditional put is checked: another writer got there first.
    interference: Vec<View>,
    puts: u32,
}

#[derive(Default)]
pub struct MemoryViews {
    state: Mutex<State>,
}

fn take_fault(remaining: &mut u32) -> Result<(), StoreError> {
    if *remaining == 0 {
        return Ok(());
    }
    *remaining -= 1;
    Err(StoreError::Unavailable("injected fault".into()))
}

impl MemoryViews {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; its data is still usable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn view(&self, id: OrderId) -> Option<View> {
        self.lock().views.get(&id).cloned()
    }

    /// Every view, by order.
    pub fn views(&self) -> BTreeMap<OrderId, View> {
        self.lock().views.clone()
    }

    /// Stores `view` as it is, bypassing every condition (a fixture, or a tampering).
    pub fn insert(&self, view: View) {
        self.lock().views.insert(view.order_id, view);
    }

    pub fn remove(&self, id: OrderId) {
        self.lock().views.remove(&id);
    }

    /// How many conditional puts were attempted.
    pub fn puts(&self) -> u32 {
        self.lock().puts
    }

    pub fn fail_next_reads(&self, n: u32) {
        self.lock().fail_reads = n;
    }

    pub fn fail_next_writes(&self, n: u32) {
        self.lock().fail_writes = n;
    }

    /// Before the next conditional put, `view` is written as if by another projector.
    pub fn interfere_with_next_put(&self, view: View) {
        self.lock().interference.push(view);
    }
}

#[async_trait]
impl ViewStore for MemoryViews {
    async fn get(&self, id: OrderId) -> Result<Option<View>, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.lock();
        take_fault(&mut s.fail_reads)?;
        Ok(s.views.get(&id).cloned())
    }

    async fn put_if(&self, view: &View, previous: u32) -> Result<Saved, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.lock();
        take_fault(&mut s.fail_writes)?;
        s.puts += 1;
        if let Some(other) = s.interference.pop() {
            s.views.insert(other.order_id, other);
        }
        // As `attribute_not_exists(orderId)` for 0 and `version = :previous` otherwise: a
        // stored view is never at version 0.
        if s.views.get(&view.order_id).map_or(0, |v| v.version) != previous {
            return Ok(Saved::Moved);
        }
        s.views.insert(view.order_id, view.clone());
        Ok(Saved::Written)
    }
}

#[async_trait]
impl CustomerViews for MemoryViews {
    async fn page(&self, customer: &CustomerId, limit: usize, after: Option<&PageKey>) -> Result<Page, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.lock();
        take_fault(&mut s.fail_reads)?;
        let mut mine: Vec<&View> = s.views.values().filter(|v| &v.customer_id == customer).collect();
        mine.sort_by(|a, b| b.list_key.cmp(&a.list_key));
        let listed = mine
            .into_iter()
            .filter(|v| after.is_none_or(|k| v.list_key < k.list_key))
            .take(limit + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(listed, limit))
    }
}

#[async_trait]
impl ViewTable for MemoryViews {
    async fn scan(&self) -> Result<Scanned, StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.lock();
        take_fault(&mut s.fail_reads)?;
        Ok(s.views.values().map(|v| (v.order_id.to_string(), Ok(v.clone()))).collect())
    }

    async fn put_all(&self, views: &[View]) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        let mut s = self.lock();
        take_fault(&mut s.fail_writes)?;
        s.views.extend(views.iter().map(|v| (v.order_id, v.clone())));
        Ok(())
    }
}

/// The in-memory event store, read whole.
#[async_trait]
impl EventLog for MemoryShop {
    async fn histories(&self) -> Result<Histories, StoreError> {
        let mut histories = Histories::new();
        for id in self.order_ids() {
            histories.insert(id, Ok(self.history(id).await?));
        }
        Ok(histories)
    }
}
