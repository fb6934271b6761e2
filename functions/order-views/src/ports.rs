//! What the read side needs from its stores, one narrow trait per user: the projector, the
//! API and the rebuild each see only what they use. DynamoDB adapters in `dynamo`, in-memory
//! fakes in `memory`.

use crate::view::{Page, PageKey, View};
use async_trait::async_trait;
use shared::domain::{CustomerId, OrderId, Recorded};
use shared::ports::StoreError;
use std::collections::BTreeMap;

/// What a conditional write of a view did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    Written,
    /// The stored view was no longer at the expected version: someone else moved it. Nothing
    /// was written; read again and decide again.
    Moved,
}

/// The projector's side of the views table.
#[async_trait]
pub trait ViewStore: Send + Sync {
    /// The order's view, read strongly consistent: the projector decides from it.
    async fn get(&self, id: OrderId) -> Result<Option<View>, StoreError>;
    /// Writes `view` if the stored view is still at version `previous` (0: there is none yet).
    async fn put_if(&self, view: &View, previous: u32) -> Result<Saved, StoreError>;
}

/// The API's side: one customer's views, newest first.
#[async_trait]
pub trait CustomerViews: Send + Sync {
    /// Up to `limit` views of `customer` after `after` (from the newest when `None`).
    async fn page(&self, customer: &CustomerId, limit: usize, after: Option<&PageKey>) -> Result<Page, StoreError>;
}

/// A store held in an `Arc` (a host that shares it between requests) answers as the store.
#[async_trait]
impl<T: CustomerViews + ?Sized> CustomerViews for std::sync::Arc<T> {
    async fn page(&self, customer: &CustomerId, limit: usize, after: Option<&PageKey>) -> Result<Page, StoreError> {
        (**self).page(customer, limit, after).await
    }
}

/// Every item of a views table, by the order ID it is stored under; an item that cannot be
/// read as a view is kept as its error, so that a comparison can report it.
pub type Scanned = BTreeMap<String, Result<View, StoreError>>;

/// The rebuild's side of a views table, live or fresh.
#[async_trait]
pub trait ViewTable: Send + Sync {
    async fn scan(&self) -> Result<Scanned, StoreError>;
    /// Writes `views` unconditionally: into a fresh table, nobody else writes.
    async fn put_all(&self, views: &[View]) -> Result<(), StoreError>;
}

/// Every order's history, oldest event first; an order one of whose items cannot be read is
/// kept as its error.
pub type Histories = BTreeMap<OrderId, Result<Vec<Recorded>, StoreError>>;

/// The whole event store, for the rebuild.
#[async_trait]
pub trait EventLog: Send + Sync {
    async fn histories(&self) -> Result<Histories, StoreError>;
}
