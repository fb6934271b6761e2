//! In-memory fakes of every port, with the same semantics as the AWS adapters (conditions,
//! all-or-nothing transactions, partial PutEvents failures), for fast unit tests.

use crate::domain::pricing::Product;
use crate::domain::{EventId, OrderEvent, OrderId, Recorded, SagaStep, Sku};
use crate::events::Outbound;
use crate::ports::*;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StockLevel {
    pub available: i64,
    pub reserved: i64,
}

#[derive(Default)]
struct ShopState {
    products: HashMap<Sku, Product>,
    stock: HashMap<Sku, StockLevel>,
    orders: HashMap<OrderId, BTreeMap<u32, Recorded>>,
    /// Orders whose saga is open, as the DynamoDB adapter's sparse index holds them.
    open: BTreeMap<OrderId, DateTime<Utc>>,
    outbox: BTreeMap<EventId, Pending>,
    fail_commits: u32,
    fail_commits_of: HashMap<&'static str, u32>,
}

/// Catalogue, stock, the order event store and the outbox, as one DynamoDB account would hold them.
#[derive(Default)]
pub struct MemoryShop {
    state: Mutex<ShopState>,
}

impl MemoryShop {
    pub fn with_product(self, product: Product, available: i64) -> Self {
        {
            let mut s = self.state.lock().unwrap();
            s.stock.insert(product.sku.clone(), StockLevel { available, reserved: 0 });
            s.products.insert(product.sku.clone(), product);
        }
        self
    }

    pub fn stock(&self, sku: &str) -> StockLevel {
        self.state.lock().unwrap().stock.get(&Sku::from(sku)).copied().unwrap_or_default()
    }

    /// The order's events, oldest first, without their records.
    pub fn events(&self, id: OrderId) -> Vec<OrderEvent> {
        let s = self.state.lock().unwrap();
        s.orders.get(&id).map(|h| h.values().map(|r| r.event.clone()).collect()).unwrap_or_default()
    }

    pub fn order_count(&self) -> usize {
        self.state.lock().unwrap().orders.len()
    }

    pub fn outbox_len(&self) -> usize {
        self.state.lock().unwrap().outbox.len()
    }

    pub fn order_ids(&self) -> Vec<OrderId> {
        self.state.lock().unwrap().orders.keys().copied().collect()
    }

    /// Takes `lines` out of reserved stock, all or none (the inventory consumer's commit, on
    /// the same products table); the SKUs without enough reserved stock when it refuses.
    pub fn commit_reserved(&self, lines: &[(Sku, u64)]) -> Result<(), Vec<Sku>> {
        let mut s = self.state.lock().unwrap();
        let covered =
            |sku: &Sku, q: u64| s.stock.get(sku).is_some_and(|st| i64::try_from(q).is_ok_and(|q| st.reserved >= q));
        let short: Vec<Sku> = lines.iter().filter(|(sku, q)| !covered(sku, *q)).map(|(sku, _)| sku.clone()).collect();
        if !short.is_empty() {
            return Err(short);
        }
        for (sku, q) in lines {
            if let Some(st) = s.stock.get_mut(sku) {
                st.reserved -= *q as i64;
            }
        }
        Ok(())
    }

    /// The next `n` commits fail as if DynamoDB were unavailable.
    pub fn fail_next_commits(&self, n: u32) {
        self.state.lock().unwrap().fail_commits = n;
    }

    /// The next commit of an event named `event` (e.g. "PaymentCaptured") fails.
    pub fn fail_next_commit_of(&self, event: &'static str) {
        *self.state.lock().unwrap().fail_commits_of.entry(event).or_default() += 1;
    }
}

#[async_trait]
impl Catalogue for MemoryShop {
    async fn products(&self, skus: &[Sku]) -> Result<HashMap<Sku, Product>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(skus.iter().filter_map(|sku| s.products.get(sku).map(|p| (sku.clone(), p.clone()))).collect())
    }
}

#[async_trait]
impl OrderStore for MemoryShop {
    async fn history(&self, id: OrderId) -> Result<Vec<Recorded>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.orders.get(&id).map(|h| h.values().cloned().collect()).unwrap_or_default())
    }

    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError> {
        let s = self.state.lock().unwrap();
        let mut open: Vec<OpenOrder> = s
            .open
            .iter()
            .filter(|(_, at)| **at < before)
            .map(|(id, at)| OpenOrder { order_id: *id, opened_at: *at })
            .collect();
        open.sort_by_key(|o| o.opened_at);
        open.truncate(limit);
        Ok(open)
    }

    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        let mut s = self.state.lock().unwrap();
        let targeted = s.fail_commits_of.get_mut(change.event.name()).filter(|n| **n > 0);
        if let Some(n) = targeted {
            *n -= 1;
            return Err(StoreError::Unavailable("injected fault".into()).into());
        }
        if s.fail_commits > 0 {
            s.fail_commits -= 1;
            return Err(StoreError::Unavailable("injected fault".into()).into());
        }
        // Check every condition first, then apply everything: all or nothing.
        if s.orders.get(&change.order_id).is_some_and(|h| h.contains_key(&change.version)) {
            return Err(CommitError::VersionConflict);
        }
        let mut next = s.stock.clone();
        match change.stock {
            StockEffect::None => {}
            StockEffect::Reserve(lines) => {
                let short: Vec<Sku> = lines
                    .iter()
                    .filter(|l| next.get(&l.sku).is_none_or(|st| st.available < i64::from(l.quantity)))
                    .map(|l| l.sku.clone())
                    .collect();
                if !short.is_empty() {
                    return Err(CommitError::InsufficientStock(short));
                }
                for l in lines {
                    let st = next.get_mut(&l.sku).expect("checked above");
                    st.available -= i64::from(l.quantity);
                    st.reserved += i64::from(l.quantity);
                }
            }
            StockEffect::Release(lines) => {
                for l in lines {
                    let st = next.entry(l.sku.clone()).or_default();
                    st.available += i64::from(l.quantity);
                    st.reserved -= i64::from(l.quantity);
                }
            }
        }
        s.stock = next;
        let recorded = Recorded {
            version: change.version,
            event: change.event.clone(),
            correlation_id: change.correlation_id.to_owned(),
        };
        s.orders.entry(change.order_id).or_default().insert(change.version, recorded);
        match change.event.saga() {
            SagaStep::Starts { at } => {
                s.open.insert(change.order_id, at);
            }
            SagaStep::Ends => {
                s.open.remove(&change.order_id);
            }
            SagaStep::None => {}
        }
        if let Some(event) = change.outbox {
            s.outbox.insert(event.event_id, Pending { event: event.clone(), created_at: Utc::now() });
        }
        Ok(())
    }
}

#[async_trait]
impl Outbox for MemoryShop {
    async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError> {
        let s = self.state.lock().unwrap();
        Ok(s.outbox.values().filter(|p| p.created_at < before).take(limit).cloned().collect())
    }

    async fn clear(&self, ids: &[EventId]) -> Result<(), StoreError> {
        let mut s = self.state.lock().unwrap();
        ids.iter().for_each(|id| {
            s.outbox.remove(id);
        });
        Ok(())
    }
}

#[derive(Default)]
struct BusState {
    published: Vec<Outbound>,
    refuse: HashMap<EventId, u32>,
    refuse_any: u32,
    fail_calls: u32,
    put_calls: u32,
}

/// An event bus that records what it receives and can be told to refuse entries, as
/// `PutEvents` does when it answers with `FailedEntryCount > 0`.
#[derive(Default)]
pub struct MemoryBus {
    state: Mutex<BusState>,
}

impl MemoryBus {
    pub fn published(&self) -> Vec<Outbound> {
        self.state.lock().unwrap().published.clone()
    }

    pub fn put_calls(&self) -> u32 {
        self.state.lock().unwrap().put_calls
    }

    /// Refuse this entry on its next `times` puts.
    pub fn refuse_next(&self, id: EventId, times: u32) {
        self.state.lock().unwrap().refuse.insert(id, times);
    }

    /// Refuse the next `n` entries, whichever they are.
    pub fn refuse_next_entries(&self, n: u32) {
        self.state.lock().unwrap().refuse_any = n;
    }

    /// Fail the next `n` calls outright, as an unreachable endpoint would.
    pub fn fail_next_calls(&self, n: u32) {
        self.state.lock().unwrap().fail_calls = n;
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError> {
        assert!(events.len() <= crate::publishing::MAX_ENTRIES_PER_PUT, "PutEvents takes at most 10 entries");
        let mut s = self.state.lock().unwrap();
        s.put_calls += 1;
        if s.fail_calls > 0 {
            s.fail_calls -= 1;
            return Err(PublishError::Unavailable("injected fault".into()));
        }
        let mut rejected = Vec::new();
        for event in events {
            let refused_by_id = s.refuse.get_mut(&event.event_id).filter(|n| **n > 0).map(|n| *n -= 1).is_some();
            let refused_any = !refused_by_id && s.refuse_any > 0;
            if refused_any {
                s.refuse_any -= 1;
            }
            if refused_by_id || refused_any {
                rejected.push(Rejected { event_id: event.event_id, code: "InternalFailure".into() });
            } else {
                s.published.push(event.clone());
            }
        }
        Ok(rejected)
    }
}

#[derive(Debug, Clone)]
struct IdemRecord {
    payload_hash: String,
    order_id: OrderId,
    attempt: String,
    in_progress_until_ms: Option<i64>,
    response: Option<StoredResponse>,
    expires_at: i64,
}

/// Idempotency records as the DynamoDB adapter keeps them, including lease expiry and the
/// lease holder.
#[derive(Default)]
pub struct MemoryIdempotency {
    records: Mutex<HashMap<String, IdemRecord>>,
}

impl MemoryIdempotency {
    pub fn len(&self) -> usize {
        self.records.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The order bound to `key`, if the key is remembered.
    pub fn order_of(&self, key: &str) -> Option<OrderId> {
        self.records.lock().unwrap().get(key).map(|r| r.order_id)
    }
}

#[async_trait]
impl IdempotencyStore for MemoryIdempotency {
    async fn claim(&self, req: &ClaimRequest) -> Result<Claim, StoreError> {
        let mut records = self.records.lock().unwrap();
        let now_s = req.now_ms / 1000;
        let Some(old) = records.get_mut(&req.key).filter(|r| r.expires_at >= now_s) else {
            records.insert(
                req.key.clone(),
                IdemRecord {
                    payload_hash: req.payload_hash.clone(),
                    order_id: req.order_id,
                    attempt: req.attempt.clone(),
                    in_progress_until_ms: Some(req.lease_until_ms),
                    response: None,
                    expires_at: req.expires_at,
                },
            );
            return Ok(Claim::Started { order_id: req.order_id });
        };
        if old.payload_hash != req.payload_hash {
            return Ok(Claim::PayloadMismatch);
        }
        if let Some(response) = &old.response {
            return Ok(Claim::Replay(response.clone()));
        }
        if old.in_progress_until_ms.is_some_and(|until| until >= req.now_ms) {
            return Ok(Claim::InProgress);
        }
        // Take over the lease; the order bound to the key stays.
        old.attempt = req.attempt.clone();
        old.in_progress_until_ms = Some(req.lease_until_ms);
        Ok(Claim::TakenOver { order_id: old.order_id })
    }

    async fn complete(&self, key: &str, attempt: &str, response: &StoredResponse) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        if let Some(r) = records.get_mut(key).filter(|r| r.attempt == attempt && r.response.is_none()) {
            r.in_progress_until_ms = None;
            r.response = Some(response.clone());
        }
        Ok(())
    }

    async fn release(&self, key: &str, attempt: &str) -> Result<(), StoreError> {
        let mut records = self.records.lock().unwrap();
        if records.get(key).is_some_and(|r| r.attempt == attempt && r.response.is_none()) {
            records.remove(key);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MarkerState {
    InProgress { until_ms: i64 },
    Completed,
}

/// Processed-event markers with leases, as `DynamoProcessedEvents` keeps them.
#[derive(Default)]
pub struct MemoryProcessed {
    markers: Mutex<HashMap<String, MarkerState>>,
}

impl MemoryProcessed {
    pub fn is_completed(&self, marker: &Marker) -> bool {
        self.markers.lock().unwrap().get(&marker.key()) == Some(&MarkerState::Completed)
    }
}

#[async_trait]
impl ProcessedEvents for MemoryProcessed {
    async fn claim(&self, marker: &Marker, now_ms: i64, lease_until_ms: i64) -> Result<Lease, StoreError> {
        let mut markers = self.markers.lock().unwrap();
        match markers.get(&marker.key()) {
            Some(MarkerState::Completed) => Ok(Lease::AlreadyProcessed),
            Some(MarkerState::InProgress { until_ms }) if *until_ms >= now_ms => Ok(Lease::HeldElsewhere),
            _ => {
                markers.insert(marker.key(), MarkerState::InProgress { until_ms: lease_until_ms });
                Ok(Lease::Acquired)
            }
        }
    }

    async fn complete(&self, marker: &Marker) -> Result<(), StoreError> {
        self.markers.lock().unwrap().insert(marker.key(), MarkerState::Completed);
        Ok(())
    }

    async fn release(&self, marker: &Marker) -> Result<(), StoreError> {
        self.markers.lock().unwrap().remove(&marker.key());
        Ok(())
    }
}
