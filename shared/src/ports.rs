//! The narrow traits the domain needs from the outside world. AWS adapters implement them in
//! `adapters::{dynamodb, eventbridge, ..}`, in-memory fakes in `adapters::memory`.

use crate::domain::pricing::Product;
use crate::domain::{EventId, LineItem, Money, Order, OrderEvent, OrderId, Recorded, Refund, Sku};
use crate::events::Outbound;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What the caller of a failed operation should do. Decided once, from the error's kind,
/// never from its message: the checkout answers from it, the consumer harness retries or
/// gives up to the dead-letter queue from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A fault that may pass (throttling, network, timeout, a service error): retry later
    /// with backoff, or let the message be redelivered.
    Transient,
    /// Definitely not applied because a concurrent writer touched the same item (a DynamoDB
    /// `TransactionConflict`): retry now, with jitter, inside the function.
    Conflict,
    /// Retrying cannot help (a corrupt item, a request the service will always refuse, a
    /// poison message): give up to the dead-letter queue.
    Permanent,
    /// A business answer, not a fault (declined, out of stock): answer the client.
    Rejected,
}

/// Anything that can say what its caller should do about it.
pub trait Kind {
    fn kind(&self) -> ErrorKind;
}

/// A store failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Throttling, network, timeout, service error: a retry may cure it.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A transaction was cancelled by a concurrent one; nothing was applied.
    #[error("transaction conflict: {0}")]
    Conflict(String),
    /// The stored item, or our request, can never be read or applied as it is.
    #[error("stored item is corrupt: {0}")]
    Corrupt(String),
}

impl Kind for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) => ErrorKind::Transient,
            StoreError::Conflict(_) => ErrorKind::Conflict,
            StoreError::Corrupt(_) => ErrorKind::Permanent,
        }
    }
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
    /// The request that caused the event, kept with it for the audit trail.
    pub correlation_id: &'a str,
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

impl Kind for CommitError {
    fn kind(&self) -> ErrorKind {
        match self {
            CommitError::InsufficientStock(_) => ErrorKind::Rejected,
            // Not a retry of the same write: the caller reloads the order and decides again.
            CommitError::VersionConflict => ErrorKind::Rejected,
            CommitError::Store(e) => e.kind(),
        }
    }
}

/// An order whose checkout saga has not finished (still `PENDING_PAYMENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOrder {
    pub order_id: OrderId,
    pub opened_at: DateTime<Utc>,
}

/// The event-sourced order store. Orders and their stock effects change only through `commit`.
///
/// A commit whose event opens a saga (`Opened`) also records the order as open, and one whose
/// event ends it (`PaymentCaptured`, `Cancelled`) removes that record, in the same
/// transaction; `open_before` finds the open ones without reading every order.
#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Every event of the order, oldest first (empty when there is no such order).
    async fn history(&self, id: OrderId) -> Result<Vec<Recorded>, StoreError>;
    /// The current state: the fold of the history.
    async fn load(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let history = self.history(id).await?;
        Order::replay(id, history.iter().map(|r| &r.event)).map_err(|e| StoreError::Corrupt(e.to_string()))
    }
    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError>;
    /// Orders opened before `before` and still open, oldest first, at most `limit`.
    async fn open_before(&self, before: DateTime<Utc>, limit: usize) -> Result<Vec<OpenOrder>, StoreError>;
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
    /// Forwarded to the gateway: the same key never charges twice. The checkout uses the
    /// order's own key (`Order::payment_key`), so whoever settles the order can ask about it.
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
    /// The gateway answered that it did not charge (a processing error); trying again may work.
    #[error("payment gateway failed: {0}")]
    Failed(String),
    /// No answer (a timeout, a lost connection): the charge may or may not have happened.
    /// Only asking the gateway again under the same key tells.
    #[error("payment outcome unknown: {0}")]
    Unknown(String),
}

impl Kind for PaymentError {
    fn kind(&self) -> ErrorKind {
        match self {
            PaymentError::Declined { .. } => ErrorKind::Rejected,
            PaymentError::Failed(_) | PaymentError::Unknown(_) => ErrorKind::Transient,
        }
    }
}

/// What closing a payment key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Voided {
    /// Nothing was charged, and from now on nothing can be under this key.
    Voided,
    /// A charge already exists under this key; it stands.
    AlreadyCharged(Charge),
}

#[async_trait]
pub trait PaymentGateway: Send + Sync {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError>;
    /// Asks whether a charge exists under `idempotency_key` and, if none does, closes the key
    /// so that no later charge under it can succeed (a payment intent's cancel). One atomic
    /// step at the gateway: a lookup followed by a separate cancel would race with a charge
    /// still in flight from a slow checkout attempt.
    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError>;
    /// Refunds `amount` of the charge under `payment_key`, in full. Idempotent: one refund per
    /// charge, and asking again answers with the same refund. Declined when there is no charge
    /// under the key or the amount exceeds it.
    async fn refund(&self, payment_key: &str, amount: Money) -> Result<Refund, PaymentError>;
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
    /// Bound to the key if the key is new. Once bound, a key's order never changes.
    pub order_id: OrderId,
    /// This attempt's own ID: only the attempt holding the lease may complete or release.
    pub attempt: String,
    pub now_ms: i64,
    /// Until when this attempt owns the key (now + the Lambda's remaining time).
    pub lease_until_ms: i64,
    /// When the record expires and the key may be used afresh (epoch seconds, the TTL).
    pub expires_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was new: this attempt owns it and starts the order bound to it.
    Started {
        order_id: OrderId,
    },
    /// An earlier attempt held the key and its lease lapsed (it crashed or timed out): this
    /// attempt owns the key now and resumes the order bound to it.
    TakenOver {
        order_id: OrderId,
    },
    Replay(StoredResponse),
    InProgress,
    PayloadMismatch,
}

/// Stripe-style idempotency keys, with the semantics of Powertools' idempotency utility.
///
/// `complete` and `release` act only for the attempt that holds the lease: a slow attempt
/// whose lease was taken over changes nothing (the newer attempt answers instead).
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    async fn claim(&self, request: &ClaimRequest) -> Result<Claim, StoreError>;
    async fn complete(&self, key: &str, attempt: &str, response: &StoredResponse) -> Result<(), StoreError>;
    /// Forgets the key after an attempt that changed nothing failed, so that a retry runs again.
    async fn release(&self, key: &str, attempt: &str) -> Result<(), StoreError>;
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

/// The consumer's dead-letter queue, written to directly: a message that retrying cannot help
/// (poison, a [`ErrorKind::Permanent`] failure) goes there at once instead of after its
/// `maxReceiveCount` receives, kept intact for inspection and redrive.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    /// Sends `message`'s body and message attributes to the dead-letter queue, with the
    /// failure's `kind` and `reason` added as the `ErrorKind` and `ErrorReason` attributes.
    /// Only when this answers `Ok` may the caller let the source queue delete the message.
    async fn send(
        &self,
        message: &aws_lambda_events::event::sqs::SqsMessage,
        kind: ErrorKind,
        reason: &str,
    ) -> Result<(), StoreError>;
}

impl ErrorKind {
    /// The kind's name in logs and in a dead letter's `ErrorKind` attribute.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Transient => "transient",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Rejected => "rejected",
        }
    }
}
