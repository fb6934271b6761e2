//! The narrow traits the domain needs from the outside world. AWS adapters implement them in
//! `adapters::{dynamodb, eventbridge, ..}`, in-memory fakes in `adapters::memory`.

use crate::domain::pricing::Product;
use crate::domain::{EventId, LineItem, Money, Order, OrderEvent, OrderId, Sku};
use crate::events::Outbound;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// A fault of a store that a retry may cure (throttling, network, service error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

/// Prices and names of products.
#[async_trait]
pub trait Catalogue: Send + Sync {
    /// The products among `skus` that exist; unknown SKUs are simply absent.
    async fn products(&self, skus: &[Sku]) -> Result<HashMap<Sku, Product>, StoreError>;
}

/// What a committed order event does to stock, in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StockEffect<'a> {
    None,
    /// Take the quantities from available stock, all lines or none.
    Reserve(&'a [LineItem]),
    /// Give reserved quantities back (the compensation of `Reserve`).
    Release(&'a [LineItem]),
}

/// One event appended to an order, with its effects, committed atomically.
#[derive(Debug, Clone, Copy)]
pub struct OrderChange<'a> {
    pub order_id: OrderId,
    /// The version this event gets; the commit fails if the order already has it.
    pub version: u32,
    pub event: &'a OrderEvent,
    pub stock: StockEffect<'a>,
    /// An integration event to publish, written to the outbox in the same transaction.
    pub outbox: Option<&'a Outbound>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitError {
    #[error("not enough stock for {0:?}")]
    InsufficientStock(Vec<Sku>),
    /// Someone appended this version first: reload and decide again.
    #[error("order version already taken")]
    VersionConflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The event-sourced order store. Orders and their stock effects change only through `commit`.
#[async_trait]
pub trait OrderStore: Send + Sync {
    async fn load(&self, id: OrderId) -> Result<Option<Order>, StoreError>;
    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError>;
}

/// An outbox entry and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub event: Outbound,
    pub created_at: DateTime<Utc>,
}

/// Events committed but maybe not yet on the bus.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Entries written before `before`, oldest first, at most `limit`.
    async fn pending(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<Pending>, StoreError>;
    async fn clear(&self, ids: &[EventId]) -> Result<(), StoreError>;
}

/// An entry the bus refused, with its reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    pub event_id: EventId,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("gave up publishing {0:?}")]
    Exhausted(Vec<Rejected>),
}

/// Puts events on the bus.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Sends at most 10 events in one call; returns those the bus refused (to send again).
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRequest {
    /// Forwarded to the gateway: the same key never charges twice.
    pub idempotency_key: String,
    pub order_id: OrderId,
    pub amount: Money,
    pub payment_token: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub charge_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    /// A final answer from the issuer: do not retry the same card.
    #[error("payment declined: {code}")]
    Declined { code: String },
    /// The gateway could not decide; the customer may try again.
    #[error("payment gateway failed: {0}")]
    Failed(String),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError>;
}

/// A response kept under an idempotency key, replayed to later requests with the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRequest {
    pub key: String,
    pub payload_hash: String,
    /// Used when the key is new; a crashed attempt's order ID is resumed instead.
    pub order_id: OrderId,
    pub now_ms: i64,
    /// Until when this attempt owns the key (now + the Lambda's remaining time).
    pub lease_until_ms: i64,
    /// When the record expires and the key may be used afresh (epoch seconds, the TTL).
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This attempt owns the key. `resumed` when a crashed attempt held it before.
    Acquired {
        order_id: OrderId,
        resumed: bool,
    },
    Replay(StoredResponse),
    InProgress,
    PayloadMismatch,
}

/// Stripe-style idempotency keys, with the semantics of Powertools' idempotency utility.
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError>;
    async fn complete(&self, key: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Forgets the key after a failed attempt, so that a retry runs again.
    async fn release(&self, key: &str) -> Result<(), StoreError>;
}

/// "Consumer X has processed event E", kept until `expires_at` (epoch seconds, the TTL) —
/// longer than EventBridge retries (24 h) and the archive's retention (30 days) for replays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    pub consumer: &'static str,
    pub event_id: EventId,
    pub expires_at: i64,
}

impl Marker {
    pub fn key(&self) -> String {
        format!("{}#{}", self.consumer, self.event_id)
    }
}

/// What a write guarded by a processed-event marker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The marker was already there: this delivery is a duplicate and changed nothing.
    AlreadyProcessed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lease {
    Acquired,
    AlreadyProcessed,
    /// Another delivery of the same event holds the lease right now.
    HeldElsewhere,
}

/// Markers for effects outside DynamoDB (an email): claim with a lease, complete after the
/// effect, release on failure so the retry can run. Effects inside DynamoDB write their marker
/// in the same transaction instead (see each consumer's store).
#[async_trait]
pub trait ProcessedEvents: Send + Sync {
    async fn claim(&self, marker: &Marker, now_ms: i64, lease_until_ms: i64) -> Result<Lease, StoreError>;
    async fn complete(&self, marker: &Marker) -> Result<(), StoreError>;
    async fn release(&self, marker: &Marker) -> Result<(), StoreError>;
}
