//! The checkout saga: the steps the customer waits for, and the compensation of each.
//!
//! | step | action                                              | compensation                          |
//! |------|-----------------------------------------------------|---------------------------------------|
//! | 1    | price every line from the catalogue                 | none (nothing written)                |
//! | 2    | reserve stock + open the order, one transaction     | release stock + cancel, one transaction |
//! | 3    | charge the payment under the order's payment key    | void the key (nothing charged) or keep the charge |
//! | 4    | record the capture + `order.placed` in the outbox   | none: the order is final              |
//! | 5    | publish `order.placed` (the outbox relay backs it up) | none                                |
//!
//! Every state change is an event appended to the order, so a crash anywhere leaves an order
//! that can be finished from its stored state: by a retry with the same Idempotency-Key
//! ([`Saga::resume`]) or, when no retry comes, by the recovery sweeper ([`Saga::settle`]).
//! Stock is never reserved or released twice (each effect is tied to an event version, which
//! can be written only once), and an order is charged at most once (one payment key per order,
//! and giving up closes that key at the gateway before the order is cancelled).
//!
//! Each step's duration is kept ([`Saga::steps`]): the checkout reports them as
//! `SagaStepMilliseconds` per `step` (`price`, `reserve`, `charge`, `commit`, `publish`).

use crate::journal::{self, Journal};
use crate::request::PlaceOrder;
use chrono::Utc;
use shared::domain::pricing::{self, PricingError};
use shared::domain::{CancelReason, Order, OrderEvent, OrderId, OrderStatus, Sku};
use shared::events::{Envelope, OrderPlacedV2, Outbound};
use shared::ports::*;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything the checkout talks to.
#[derive(Clone)]
pub struct Ports {
    pub catalogue: Arc<dyn Catalogue>,
    pub orders: Arc<dyn OrderStore>,
    pub outbox: Arc<dyn Outbox>,
    pub publisher: Arc<dyn EventPublisher>,
    pub payments: Arc<dyn PaymentGateway>,
}

impl Ports {
    /// Appends events to orders on these ports, under the correlation ID of the request.
    pub fn journal<'a>(&'a self, correlation_id: &'a str) -> Journal<'a> {
        Journal {
            orders: self.orders.as_ref(),
            outbox: self.outbox.as_ref(),
            publisher: self.publisher.as_ref(),
            correlation_id,
        }
    }
}

/// A final answer of the saga; the customer gets it and a retry gets it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Placed(Box<Order>),
    UnknownSkus(Vec<Sku>),
    NotSoldIn(Vec<Sku>),
    Unpriceable(String),
    OutOfStock(Vec<Sku>),
    Declined {
        code: String,
    },
    /// The checkout was interrupted and, with no retry in time, the sweeper cancelled it.
    Expired,
}

/// No final answer yet: the caller should try again (same Idempotency-Key).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {
    /// A dependency failed before anything was written.
    #[error("unavailable: {cause}")]
    Unavailable { cause: String },
    /// A dependency failed after the order was opened (or may have been): a retry with the
    /// same key resumes it, and if none comes the sweeper settles it.
    #[error("interrupted: {cause}")]
    Interrupted { cause: String },
    /// The gateway answered that it could not charge; the order was cancelled, its stock released.
    #[error("payment gateway failed: {cause}")]
    GatewayFailed { cause: String },
    /// The gateway gave no answer: the charge may exist. The order stays open for a retry
    /// (which asks the gateway again under the same payment key) or the sweeper.
    #[error("payment outcome unknown: {cause}")]
    PaymentUnknown { cause: String },
}

impl SagaError {
    /// Whether an order may exist for this attempt, so the key must stay bound to it.
    pub fn order_may_be_open(&self) -> bool {
        matches!(self, SagaError::Interrupted { .. } | SagaError::PaymentUnknown { .. })
    }
}

fn interrupted(e: impl std::fmt::Display) -> SagaError {
    SagaError::Interrupted { cause: e.to_string() }
}

/// A step of the saga, as its latency metric names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Step 1: the catalogue read and the pricing.
    Price,
    /// Step 2: the transaction that reserves the stock and opens the order.
    Reserve,
    /// Step 3: the charge at the gateway.
    Charge,
    /// Step 4: the transaction that records the capture and `order.placed` in the outbox.
    Commit,
    /// Step 5: `order.placed` put on the bus and its outbox entry cleared.
    Publish,
}

impl Step {
    pub fn name(self) -> &'static str {
        match self {
            Step::Price => "price",
            Step::Reserve => "reserve",
            Step::Charge => "charge",
            Step::Commit => "commit",
            Step::Publish => "publish",
        }
    }
}

pub struct Saga<'a> {
    pub ports: &'a Ports,
    pub correlation_id: &'a str,
    /// The steps run so far, with how long each took (a resumed saga runs only some).
    steps: Mutex<Vec<(Step, Duration)>>,
}

impl<'a> Saga<'a> {
    pub fn new(ports: &'a Ports, correlation_id: &'a str) -> Saga<'a> {
        Saga { ports, correlation_id, steps: Mutex::new(Vec::new()) }
    }
}

impl Saga<'_> {
    /// The steps this saga ran, in order, with their durations.
    pub fn steps(&self) -> Vec<(Step, Duration)> {
        self.steps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Runs one step and keeps how long it took, whatever it came to.
    async fn timed<T>(&self, step: Step, work: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let output = work.await;
        self.steps.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push((step, started.elapsed()));
        output
    }

    /// A new key: runs every step for the order bound to it.
    pub async fn start(&self, order_id: OrderId, command: &PlaceOrder) -> Result<Outcome, SagaError> {
        // Step 1: price.
        let skus: Vec<Sku> = command.items.iter().map(|(sku, _)| sku.clone()).collect();
        let priced = self.timed(Step::Price, async {
            let products = self.ports.catalogue.products(&skus).await;
            products.map(|products| pricing::price(&command.items, command.currency, &products))
        });
        let priced = priced.await.map_err(|e| SagaError::Unavailable { cause: e.to_string() })?;
        let (lines, total) = match priced {
            Ok(priced) => priced,
            Err(PricingError::UnknownSkus(skus)) => return Ok(Outcome::UnknownSkus(skus)),
            Err(PricingError::NotSoldIn { skus, .. }) => return Ok(Outcome::NotSoldIn(skus)),
            Err(PricingError::Money(e)) => return Ok(Outcome::Unpriceable(e.to_string())),
        };
        // Step 2: reserve stock and open the order, all or nothing.
        let opened = OrderEvent::Opened {
            customer_id: command.customer_id.clone(),
            lines,
            total,
            at: Utc::now(),
            correlation_id: self.correlation_id.to_owned(),
        };
        let order = Order::open(order_id, &opened).map_err(|e| SagaError::Unavailable { cause: e.to_string() })?;
        let change = OrderChange {
            order_id,
            version: 1,
            event: &opened,
            stock: StockEffect::Reserve(&order.lines),
            outbox: None,
            correlation_id: self.correlation_id,
        };
        match self.timed(Step::Reserve, self.commit(change)).await {
            Ok(()) => self.charge_and_place(order, &command.payment_token).await,
            Err(CommitError::InsufficientStock(skus)) => Ok(Outcome::OutOfStock(skus)),
            Err(CommitError::VersionConflict) => self.resume(order_id, command).await,
            // The transaction may have been applied before the fault: resume, never redo.
            Err(CommitError::Store(e)) => Err(interrupted(e)),
        }
    }

    /// A key taken over from an attempt that stopped: continues its order from where it is.
    pub async fn resume(&self, order_id: OrderId, command: &PlaceOrder) -> Result<Outcome, SagaError> {
        match self.ports.orders.load(order_id).await.map_err(interrupted)? {
            // The earlier attempt stopped before opening the order: nothing to resume.
            None => Box::pin(self.start(order_id, command)).await,
            Some(order) if order.status == OrderStatus::PendingPayment => {
                tracing::info!("resuming the order of an interrupted attempt");
                self.charge_and_place(order, &command.payment_token).await
            }
            Some(order) => answer(order),
        }
    }

    /// Recovery of an order no customer is waiting for: whatever the gateway says under the
    /// order's payment key decides. Charged → place it; not charged → the key is closed and
    /// the order cancelled, its stock released. (A customer-cancelled order waiting for its
    /// refund is the other saga's: [`crate::refund::finish`] settles it.)
    pub async fn settle(&self, order: Order) -> Result<Outcome, SagaError> {
        if order.status != OrderStatus::PendingPayment {
            return answer(order);
        }
        self.give_up(order, CancelReason::Expired).await
    }

    /// Steps 3 and 4, with the compensation of step 2 when the charge is refused.
    async fn charge_and_place(&self, order: Order, payment_token: &str) -> Result<Outcome, SagaError> {
        let request = ChargeRequest {
            idempotency_key: order.payment_key(),
            order_id: order.id,
            amount: order.total,
            payment_token: payment_token.to_owned(),
        };
        match self.timed(Step::Charge, self.ports.payments.charge(&request)).await {
            Ok(charge) => self.place(order, charge).await,
            // A decline is final for this key: nothing can be charged under it later.
            Err(PaymentError::Declined { code }) => self.cancel(order, CancelReason::PaymentDeclined { code }).await,
            Err(PaymentError::Failed(cause)) => {
                self.give_up(order, CancelReason::PaymentFailed).await.map_err(|e| match e {
                    SagaError::GatewayFailed { .. } => SagaError::GatewayFailed { cause },
                    other => other,
                })
            }
            Err(PaymentError::Unknown(cause)) => Err(SagaError::PaymentUnknown { cause }),
        }
    }

    /// Closes the order's payment key at the gateway, then cancels the order, unless the
    /// gateway reports a charge under that key (a slower attempt's), which then places it.
    /// Closing first is what makes cancelling safe while another attempt may still be charging.
    async fn give_up(&self, order: Order, reason: CancelReason) -> Result<Outcome, SagaError> {
        match self.ports.payments.void(&order.payment_key()).await.map_err(interrupted)? {
            Voided::AlreadyCharged(charge) => self.place(order, charge).await,
            Voided::Voided => self.cancel(order, reason).await,
        }
    }

    /// Compensation of step 2: gives the stock back and cancels the order, in one transaction.
    async fn cancel(&self, order: Order, reason: CancelReason) -> Result<Outcome, SagaError> {
        tracing::info!(order_id = %order.id, ?reason, "compensating: releasing reserved stock");
        let cancelled = OrderEvent::Cancelled { reason, at: Utc::now() };
        let change = OrderChange {
            order_id: order.id,
            version: order.version + 1,
            event: &cancelled,
            stock: StockEffect::Release(&order.lines),
            outbox: None,
            correlation_id: self.correlation_id,
        };
        match self.end(change).await? {
            Ended::Appended => answer(order.apply(&cancelled).map_err(interrupted)?),
            Ended::Elsewhere(now) => answer(*now),
        }
    }

    /// Steps 4 and 5: the order is final; `order.placed` goes to the outbox with it, then out.
    async fn place(&self, order: Order, charge: Charge) -> Result<Outcome, SagaError> {
        let now = Utc::now();
        let captured = OrderEvent::PaymentCaptured { charge_id: charge.charge_id, at: now };
        let placed = order.clone().apply(&captured).map_err(interrupted)?;
        let data = OrderPlacedV2::new(order.customer_id.clone(), &order.lines, order.total);
        let correlation_id = if order.correlation_id.is_empty() { self.correlation_id } else { &order.correlation_id };
        let outbound = Envelope::new(order.id, placed.version, correlation_id, now, data).to_outbound();
        let change = OrderChange {
            order_id: order.id,
            version: order.version + 1,
            event: &captured,
            stock: StockEffect::None,
            outbox: Some(&outbound),
            correlation_id: self.correlation_id,
        };
        match self.timed(Step::Commit, self.end(change)).await? {
            Ended::Appended => {
                self.timed(Step::Publish, self.publish(&outbound)).await;
                Ok(Outcome::Placed(Box::new(placed)))
            }
            // Another attempt (or the sweeper) placed it first, under the same charge, and
            // published it.
            Ended::Elsewhere(now) => answer(*now),
        }
    }

    /// Appends the event that ends the saga.
    async fn end(&self, change: OrderChange<'_>) -> Result<Ended, SagaError> {
        match self.commit(change).await {
            Ok(()) => Ok(Ended::Appended),
            Err(CommitError::VersionConflict) => {
                let stored = self.ports.orders.load(change.order_id).await.map_err(interrupted)?;
                stored
                    .map(|o| Ended::Elsewhere(Box::new(o)))
                    .ok_or_else(|| interrupted("order vanished while ending its saga"))
            }
            Err(e) => Err(interrupted(e)),
        }
    }

    /// Every commit retries transaction conflicts (nothing applied, retry now) in place.
    async fn commit(&self, change: OrderChange<'_>) -> Result<(), CommitError> {
        journal::commit(self.ports.orders.as_ref(), change).await
    }

    /// Step 5. A failure here is not the customer's problem: the event is safe in the outbox
    /// and the relay will publish it.
    async fn publish(&self, outbound: &Outbound) {
        journal::publish(self.ports.outbox.as_ref(), self.ports.publisher.as_ref(), outbound).await
    }
}

/// Who ended the saga.
enum Ended {
    Appended,
    /// The version was taken: another attempt or the sweeper ended it, and only the stored
    /// state can answer.
    Elsewhere(Box<Order>),
}

/// The answer a finished saga gives, from the order's stored state alone.
fn answer(order: Order) -> Result<Outcome, SagaError> {
    match (order.status, &order.cancel_reason) {
        // The checkout placed it; what happened to it since does not change that answer.
        (OrderStatus::Placed | OrderStatus::Shipped | OrderStatus::Delivered, _) => {
            Ok(Outcome::Placed(Box::new(order)))
        }
        (OrderStatus::Cancelled, Some(reason)) if reason.after_placement() => Ok(Outcome::Placed(Box::new(order))),
        (OrderStatus::Cancelled, Some(CancelReason::PaymentDeclined { code })) => {
            Ok(Outcome::Declined { code: code.clone() })
        }
        (OrderStatus::Cancelled, Some(CancelReason::Expired)) => Ok(Outcome::Expired),
        (OrderStatus::Cancelled, _) => {
            Err(SagaError::GatewayFailed { cause: "an earlier attempt could not charge".into() })
        }
        (OrderStatus::PendingPayment, _) => Err(interrupted("the order is still being checked out")),
    }
}
