//! The checkout saga: the steps the customer waits for, and the compensation of each.
//!
//! | step | action                                              | compensation                          |
//! |------|-----------------------------------------------------|---------------------------------------|
//! | 1    | price every line from the catalogue                 | none (nothing written)                |
//! | 2    | reserve stock + open the order, one transaction     | release stock + cancel, one transaction |
//! | 3    | charge the payment (idempotency key forwarded)      | none needed: a refused charge took nothing |
//! | 4    | record the capture + `order.placed` in the outbox   | none: the order is final              |
//! | 5    | publish `order.placed` (the outbox relay backs it up) | none                                |
//!
//! Every state change is an event appended to the order, so a crash anywhere leaves an order a
//! retry with the same Idempotency-Key resumes from (`resume`), and stock is never reserved or
//! released twice (each effect is tied to an event version, which can be written only once).

use crate::request::PlaceOrder;
use chrono::Utc;
use shared::domain::pricing::{self, PricingError};
use shared::domain::{CancelReason, Order, OrderEvent, OrderId, Sku};
use shared::events::{Envelope, OrderPlacedV1};
use shared::ports::*;
use shared::publishing::{publish_all, Backoff};
use std::sync::Arc;

/// Everything the checkout talks to.
#[derive(Clone)]
pub struct Ports {
    pub catalogue: Arc<dyn Catalogue>,
    pub orders: Arc<dyn OrderStore>,
    pub outbox: Arc<dyn Outbox>,
    pub publisher: Arc<dyn EventPublisher>,
    pub payments: Arc<dyn PaymentGateway>,
    pub idempotency: Arc<dyn IdempotencyStore>,
}

/// A final answer of the saga; the customer gets it and a retry gets it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Placed(Order),
    UnknownSkus(Vec<Sku>),
    NotSoldIn(Vec<Sku>),
    Unpriceable(String),
    OutOfStock(Vec<Sku>),
    Declined { code: String },
}

/// No final answer yet: the caller should try again (same Idempotency-Key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {
    /// A store or the bus failed. `order_open`: stock may be reserved, so a retry must resume
    /// this order rather than start another.
    #[error("unavailable: {cause}")]
    Unavailable { cause: String, order_open: bool },
    /// The gateway could not charge; the order was cancelled and its stock released.
    #[error("payment gateway failed: {cause}")]
    GatewayFailed { cause: String },
}

fn unavailable(order_open: bool) -> impl Fn(StoreError) -> SagaError {
    move |e| SagaError::Unavailable { cause: e.to_string(), order_open }
}

pub struct Saga<'a> {
    pub ports: &'a Ports,
    pub command: &'a PlaceOrder,
    pub order_id: OrderId,
    pub idempotency_key: &'a str,
    pub correlation_id: &'a str,
}

impl Saga<'_> {
    /// Runs the saga from the start, or from wherever an earlier attempt on this order stopped.
    pub async fn run(&self, resumed: bool) -> Result<Outcome, SagaError> {
        if resumed {
            if let Some(order) = self.ports.orders.load(self.order_id).await.map_err(unavailable(true))? {
                tracing::info!(status = order.status.as_str(), "resuming the order of an interrupted attempt");
                return self.resume(order).await;
            }
        }
        // Step 1: price.
        let skus: Vec<Sku> = self.command.items.iter().map(|(sku, _)| sku.clone()).collect();
        let products = self.ports.catalogue.products(&skus).await.map_err(unavailable(false))?;
        let (lines, total) = match pricing::price(&self.command.items, self.command.currency, &products) {
            Ok(priced) => priced,
            Err(PricingError::UnknownSkus(skus)) => return Ok(Outcome::UnknownSkus(skus)),
            Err(PricingError::NotSoldIn { skus, .. }) => return Ok(Outcome::NotSoldIn(skus)),
            Err(PricingError::Money(e)) => return Ok(Outcome::Unpriceable(e.to_string())),
        };
        // Step 2: reserve stock and open the order, all or nothing.
        let opened = OrderEvent::Opened { customer_id: self.command.customer_id.clone(), lines, total, at: Utc::now() };
        let order = Order::open(self.order_id, &opened).expect("Opened always opens");
        let change = OrderChange {
            order_id: self.order_id,
            version: 1,
            event: &opened,
            stock: StockEffect::Reserve(&order.lines),
            outbox: None,
        };
        match self.ports.orders.commit(change).await {
            Ok(()) => {}
            Err(CommitError::InsufficientStock(skus)) => return Ok(Outcome::OutOfStock(skus)),
            Err(CommitError::VersionConflict) => return self.resume_stored().await,
            // The transaction may have been applied before the fault: resume, never redo.
            Err(CommitError::Store(e)) => return Err(unavailable(true)(e)),
        }
        self.charge_and_place(order).await
    }

    async fn resume_stored(&self) -> Result<Outcome, SagaError> {
        match self.ports.orders.load(self.order_id).await.map_err(unavailable(true))? {
            Some(order) => self.resume(order).await,
            None => Err(SagaError::Unavailable { cause: "order vanished while resuming".into(), order_open: true }),
        }
    }

    async fn resume(&self, order: Order) -> Result<Outcome, SagaError> {
        use shared::domain::OrderStatus::*;
        match (order.status, &order.cancel_reason) {
            (PendingPayment, _) => self.charge_and_place(order).await,
            (Placed, _) => Ok(Outcome::Placed(order)),
            (Cancelled, Some(CancelReason::PaymentDeclined { code })) => Ok(Outcome::Declined { code: code.clone() }),
            (Cancelled, _) => Err(SagaError::GatewayFailed { cause: "an earlier attempt failed to charge".into() }),
        }
    }

    /// Steps 3 and 4, with the compensation of step 2 when the charge is refused.
    async fn charge_and_place(&self, order: Order) -> Result<Outcome, SagaError> {
        let request = ChargeRequest {
            idempotency_key: self.idempotency_key.to_owned(),
            order_id: order.id,
            amount: order.total,
            payment_token: self.command.payment_token.clone(),
        };
        match self.ports.payments.charge(&request).await {
            Ok(charge) => self.place(order, charge).await,
            Err(PaymentError::Declined { code }) => {
                self.compensate(&order, CancelReason::PaymentDeclined { code: code.clone() }).await?;
                Ok(Outcome::Declined { code })
            }
            Err(PaymentError::Failed(cause)) => {
                self.compensate(&order, CancelReason::PaymentFailed).await?;
                Err(SagaError::GatewayFailed { cause })
            }
        }
    }

    /// Compensation of step 2: give the stock back and cancel the order, in one transaction.
    async fn compensate(&self, order: &Order, reason: CancelReason) -> Result<(), SagaError> {
        tracing::info!(order_id = %order.id, ?reason, "compensating: releasing reserved stock");
        let cancelled = OrderEvent::Cancelled { reason, at: Utc::now() };
        let change = OrderChange {
            order_id: order.id,
            version: order.version + 1,
            event: &cancelled,
            stock: StockEffect::Release(&order.lines),
            outbox: None,
        };
        match self.ports.orders.commit(change).await {
            // A conflict means another attempt on this key already took this step.
            Ok(()) | Err(CommitError::VersionConflict) => Ok(()),
            Err(e) => Err(SagaError::Unavailable { cause: e.to_string(), order_open: true }),
        }
    }

    /// Step 4 and 5: the order is final; `order.placed` goes to the outbox with it, then out.
    async fn place(&self, order: Order, charge: Charge) -> Result<Outcome, SagaError> {
        let now = Utc::now();
        let captured = OrderEvent::PaymentCaptured { charge_id: charge.charge_id, at: now };
        let placed = order.clone().apply(&captured).expect("a pending order accepts its payment");
        let data = OrderPlacedV1::new(order.customer_id.clone(), &order.lines, order.total);
        let outbound = Envelope::new(order.id, self.correlation_id, now, data).to_outbound();
        let change = OrderChange {
            order_id: order.id,
            version: order.version + 1,
            event: &captured,
            stock: StockEffect::None,
            outbox: Some(&outbound),
        };
        match self.ports.orders.commit(change).await {
            Ok(()) => {}
            Err(CommitError::VersionConflict) => {
                // Another attempt on this key placed it first (and published it).
                let stored = self.ports.orders.load(order.id).await.map_err(unavailable(true))?;
                return match stored {
                    Some(o) if o.status == shared::domain::OrderStatus::Placed => Ok(Outcome::Placed(o)),
                    _ => Err(SagaError::Unavailable { cause: "order changed concurrently".into(), order_open: true }),
                };
            }
            Err(e) => return Err(SagaError::Unavailable { cause: e.to_string(), order_open: true }),
        }
        self.publish(&outbound).await;
        Ok(Outcome::Placed(placed))
    }

    /// Step 5. A failure here is not the customer's problem: the event is safe in the outbox
    /// and the relay will publish it.
    async fn publish(&self, outbound: &shared::events::Outbound) {
        let published =
            publish_all(self.ports.publisher.as_ref(), std::slice::from_ref(outbound), Backoff::REQUEST_PATH).await;
        match published {
            Ok(()) => {
                if let Err(e) = self.ports.outbox.clear(&[outbound.event_id]).await {
                    tracing::warn!(error = %e, event_id = %outbound.event_id, "published but not cleared; the relay may publish it again");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, event_id = %outbound.event_id, "not published; left in the outbox for the relay")
            }
        }
    }
}
