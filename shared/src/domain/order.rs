//! The order, event-sourced: its state is a fold over the events stored for it, and this
//! module alone decides which events may follow which.
//!
//! ```text
//!   Opened ──► PENDING_PAYMENT ──PaymentCaptured──► PLACED ──Shipped──► SHIPPED ──Delivered──► DELIVERED
//!                     │                               │
//!                     └──Cancelled (declined, failed, └──Cancelled (by the customer)──► CANCELLED ──Refunded
//!                        expired)──► CANCELLED                                           (refund pending)
//! ```
//!
//! Two sagas run on an order, each started and ended by events ([`OrderEvent::saga`]):
//! - the checkout: `Opened` starts it, `PaymentCaptured` or a checkout's `Cancelled` ends it;
//! - the refund: the customer's `Cancelled` starts it, `Refunded` ends it.
//!
//! An order left in either by a crash is finished by the recovery sweeper.
//!
//! [`Order::replay`] is the single definition of state: the current order, the order "as of" a
//! past time ([`Order::as_of`]) and the CQRS read model are all this fold.

use super::{CustomerId, Money, OrderId, Sku};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LineItem {
    pub sku: Sku,
    pub quantity: u32,
    /// Priced from the catalogue at checkout, never from the client.
    pub unit_price: Money,
}

impl LineItem {
    pub fn subtotal(&self) -> Result<Money, super::MoneyError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    PendingPayment,
    Placed,
    Shipped,
    Delivered,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Placed => "PLACED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }
}

/// Why an order was cancelled; kept so that a resumed checkout can answer as the first did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum CancelReason {
    /// The card issuer said no; `code` is the gateway's decline code.
    PaymentDeclined { code: String },
    /// The gateway could not process the charge (the customer may retry).
    PaymentFailed,
    /// The checkout was interrupted and never finished; the recovery sweeper closed the
    /// payment key (nothing had been charged) and gave the stock back.
    Expired,
    /// The customer cancelled the placed order before it shipped; the charge is refunded.
    CustomerRequested,
}

impl CancelReason {
    /// Whether the order had been placed (and charged) before this cancellation, which then
    /// owes a refund; the checkout's own cancellations happen before anything is charged.
    pub fn after_placement(&self) -> bool {
        matches!(self, CancelReason::CustomerRequested)
    }
}

/// Where a shipped order went, as the warehouse reported it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    pub carrier: String,
    pub tracking_id: String,
}

/// A refund of the order's charge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    pub refund_id: String,
    pub amount: Money,
}

/// What happened to an order. Stored one item per event, in order of `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum OrderEvent {
    #[serde(rename_all = "camelCase")]
    Opened {
        customer_id: CustomerId,
        lines: Vec<LineItem>,
        total: Money,
        at: DateTime<Utc>,
        /// The request that opened it, so that whoever finishes the saga (a retry, the
        /// sweeper) publishes `order.placed` under the customer's correlation ID.
        #[serde(default)]
        correlation_id: String,
    },
    #[serde(rename_all = "camelCase")]
    PaymentCaptured { charge_id: String, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    Cancelled { reason: CancelReason, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    Refunded { refund: Refund, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    Shipped { shipment: Shipment, at: DateTime<Utc> },
    #[serde(rename_all = "camelCase")]
    Delivered { at: DateTime<Utc> },
}

impl OrderEvent {
    pub fn name(&self) -> &'static str {
        match self {
            OrderEvent::Opened { .. } => "Opened",
            OrderEvent::PaymentCaptured { .. } => "PaymentCaptured",
            OrderEvent::Cancelled { .. } => "Cancelled",
            OrderEvent::Refunded { .. } => "Refunded",
            OrderEvent::Shipped { .. } => "Shipped",
            OrderEvent::Delivered { .. } => "Delivered",
        }
    }

    /// When it happened: the time the history shows and time travel folds up to.
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            OrderEvent::Opened { at, .. }
            | OrderEvent::PaymentCaptured { at, .. }
            | OrderEvent::Cancelled { at, .. }
            | OrderEvent::Refunded { at, .. }
            | OrderEvent::Shipped { at, .. }
            | OrderEvent::Delivered { at } => *at,
        }
    }

    /// What this event does to the sagas of its order (see the module docs).
    pub fn saga(&self) -> SagaStep {
        match self {
            OrderEvent::Opened { at, .. } => SagaStep::Starts { at: *at },
            OrderEvent::Cancelled { reason, at } if reason.after_placement() => SagaStep::Starts { at: *at },
            OrderEvent::PaymentCaptured { .. } | OrderEvent::Cancelled { .. } | OrderEvent::Refunded { .. } => {
                SagaStep::Ends
            }
            OrderEvent::Shipped { .. } | OrderEvent::Delivered { .. } => SagaStep::None,
        }
    }
}

/// Whether an event starts or ends a saga of its order (see the module docs). An order is
/// "open" (the sweeper looks at it) from a start to the next end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SagaStep {
    Starts { at: DateTime<Utc> },
    Ends,
    None,
}

/// One stored event with what the store knows about it: its version, and the request that
/// caused it (its correlation ID), for the audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recorded {
    pub version: u32,
    pub event: OrderEvent,
    pub correlation_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: OrderId,
    pub customer_id: CustomerId,
    pub lines: Vec<LineItem>,
    pub total: Money,
    pub status: OrderStatus,
    /// The version of the last event applied; the next event must carry `version + 1`.
    pub version: u32,
    pub opened_at: DateTime<Utc>,
    /// When the last event happened.
    pub updated_at: DateTime<Utc>,
    pub correlation_id: String,
    pub charge_id: Option<String>,
    pub cancel_reason: Option<CancelReason>,
    pub shipment: Option<Shipment>,
    pub refund: Option<Refund>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("an order's history must start with Opened, not {0}")]
    NotOpened(&'static str),
    #[error("an order can be opened only once")]
    AlreadyOpened,
    #[error("{event} is not allowed when the order is {status:?}")]
    NotAllowed { event: &'static str, status: OrderStatus },
}

impl Order {
    /// The state after the first event.
    pub fn open(id: OrderId, event: &OrderEvent) -> Result<Order, TransitionError> {
        match event {
            OrderEvent::Opened { customer_id, lines, total, at, correlation_id } => Ok(Order {
                id,
                customer_id: customer_id.clone(),
                lines: lines.clone(),
                total: *total,
                status: OrderStatus::PendingPayment,
                version: 1,
                opened_at: *at,
                updated_at: *at,
                correlation_id: correlation_id.clone(),
                charge_id: None,
                cancel_reason: None,
                shipment: None,
                refund: None,
            }),
            other => Err(TransitionError::NotOpened(other.name())),
        }
    }

    /// The idempotency key of this order's charge at the payment gateway. Derived from the
    /// order, so that every attempt of the checkout and the recovery sweeper ask about the
    /// same charge, and an order is charged at most once whoever settles it.
    pub fn payment_key(&self) -> String {
        format!("order-{}", self.id)
    }

    /// Cancelled by the customer after it was charged, and not refunded yet.
    pub fn refund_pending(&self) -> bool {
        self.status == OrderStatus::Cancelled
            && self.cancel_reason.as_ref().is_some_and(CancelReason::after_placement)
            && self.refund.is_none()
    }

    /// Checks that `event` may follow the current state, without changing it.
    pub fn check(&self, event: &OrderEvent) -> Result<(), TransitionError> {
        use OrderEvent as E;
        use OrderStatus as S;
        let allowed = match (self.status, event) {
            (_, E::Opened { .. }) => return Err(TransitionError::AlreadyOpened),
            (S::PendingPayment, E::PaymentCaptured { .. }) => true,
            // The checkout gives up before anything is charged; the customer cancels after.
            (S::PendingPayment, E::Cancelled { reason, .. }) => !reason.after_placement(),
            (S::Placed, E::Cancelled { reason, .. }) => reason.after_placement(),
            (S::Placed, E::Shipped { .. }) => true,
            (S::Shipped, E::Delivered { .. }) => true,
            (S::Cancelled, E::Refunded { .. }) => self.refund_pending(),
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(TransitionError::NotAllowed { event: event.name(), status: self.status })
        }
    }

    pub fn apply(mut self, event: &OrderEvent) -> Result<Order, TransitionError> {
        self.check(event)?;
        match event {
            OrderEvent::PaymentCaptured { charge_id, .. } => {
                self.status = OrderStatus::Placed;
                self.charge_id = Some(charge_id.clone());
            }
            OrderEvent::Cancelled { reason, .. } => {
                self.status = OrderStatus::Cancelled;
                self.cancel_reason = Some(reason.clone());
            }
            OrderEvent::Refunded { refund, .. } => self.refund = Some(refund.clone()),
            OrderEvent::Shipped { shipment, .. } => {
                self.status = OrderStatus::Shipped;
                self.shipment = Some(shipment.clone());
            }
            OrderEvent::Delivered { .. } => self.status = OrderStatus::Delivered,
            OrderEvent::Opened { .. } => unreachable!("check() refuses a second Opened"),
        }
        self.version += 1;
        self.updated_at = event.at();
        Ok(self)
    }

    /// Rebuilds the current state from the stored history (oldest first).
    pub fn replay<'a>(
        id: OrderId,
        history: impl IntoIterator<Item = &'a OrderEvent>,
    ) -> Result<Option<Order>, TransitionError> {
        let mut events = history.into_iter();
        let Some(first) = events.next() else { return Ok(None) };
        events.try_fold(Order::open(id, first)?, |order, e| order.apply(e)).map(Some)
    }

    /// The order as it was at `at`: the same fold over the events that had happened by then.
    /// `None` when it did not exist yet.
    pub fn as_of(id: OrderId, history: &[Recorded], at: DateTime<Utc>) -> Result<Option<Order>, TransitionError> {
        Order::replay(id, history.iter().map(|r| &r.event).take_while(|e| e.at() <= at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Currency;

    fn opened() -> OrderEvent {
        OrderEvent::Opened {
            customer_id: "c-1".into(),
            lines: vec![LineItem { sku: "MUG".into(), quantity: 2, unit_price: Money::new(1250, Currency::EUR) }],
            total: Money::new(2500, Currency::EUR),
            at: Utc::now(),
            correlation_id: "corr-1".into(),
        }
    }

    fn captured() -> OrderEvent {
        OrderEvent::PaymentCaptured { charge_id: "ch_1".into(), at: Utc::now() }
    }

    fn cancelled() -> OrderEvent {
        OrderEvent::Cancelled { reason: CancelReason::PaymentFailed, at: Utc::now() }
    }

    #[test]
    fn an_opened_order_awaits_payment() {
        let order = Order::replay(OrderId::new(), &[opened()]).unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::PendingPayment);
        assert_eq!(order.version, 1);
    }

    #[test]
    fn a_captured_payment_places_the_order() {
        let order = Order::replay(OrderId::new(), &[opened(), captured()]).unwrap().unwrap();
        assert_eq!(order.status, OrderStatus::Placed);
        assert_eq!(order.charge_id.as_deref(), Some("ch_1"));
        assert_eq!(order.version, 2);
    }

    #[test]
    fn a_placed_order_cannot_be_cancelled() {
        let result = Order::replay(OrderId::new(), &[opened(), captured(), cancelled()]);
        assert_eq!(result, Err(TransitionError::NotAllowed { event: "Cancelled", status: OrderStatus::Placed }));
    }

    #[test]
    fn a_cancelled_order_cannot_be_paid() {
        let result = Order::replay(OrderId::new(), &[opened(), cancelled(), captured()]);
        assert!(matches!(result, Err(TransitionError::NotAllowed { status: OrderStatus::Cancelled, .. })));
    }

    #[test]
    fn a_history_must_begin_with_opened() {
        assert_eq!(Order::replay(OrderId::new(), &[captured()]), Err(TransitionError::NotOpened("PaymentCaptured")));
    }

    #[test]
    fn no_history_means_no_order() {
        assert_eq!(Order::replay(OrderId::new(), &[]), Ok(None));
    }

    #[test]
    fn an_opened_event_stored_before_correlation_ids_still_reads() {
        let old = r#"{"type":"opened","customerId":"c","lines":[],"total":{"amount":0,"currency":"EUR"},"at":"2026-01-01T00:00:00Z"}"#;
        let event: OrderEvent = serde_json::from_str(old).unwrap();
        assert!(matches!(event, OrderEvent::Opened { ref correlation_id, .. } if correlation_id.is_empty()));
    }

    #[test]
    fn opened_starts_the_saga_and_capture_or_cancel_end_it() {
        assert!(matches!(opened().saga(), SagaStep::Starts { .. }));
        assert_eq!(captured().saga(), SagaStep::Ends);
        assert_eq!(cancelled().saga(), SagaStep::Ends);
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn customer_cancelled() -> OrderEvent {
        OrderEvent::Cancelled { reason: CancelReason::CustomerRequested, at: Utc::now() }
    }

    fn refunded() -> OrderEvent {
        let refund = Refund { refund_id: "re_1".into(), amount: Money::new(2500, Currency::EUR) };
        OrderEvent::Refunded { refund, at: Utc::now() }
    }

    fn shipped() -> OrderEvent {
        let shipment = Shipment { carrier: "UPS".into(), tracking_id: "1Z999".into() };
        OrderEvent::Shipped { shipment, at: Utc::now() }
    }

    fn delivered() -> OrderEvent {
        OrderEvent::Delivered { at: Utc::now() }
    }

    fn fold(events: &[OrderEvent]) -> Result<Option<Order>, TransitionError> {
        Order::replay(OrderId::new(), events)
    }

    fn refused(event: &'static str, status: OrderStatus) -> Result<Option<Order>, TransitionError> {
        Err(TransitionError::NotAllowed { event, status })
    }

    #[test]
    fn a_placed_order_cancelled_by_its_customer_is_cancelled_and_owes_a_refund() {
        let order = fold(&[opened(), captured(), customer_cancelled()]).unwrap().unwrap();
        assert_eq!((order.status, order.version), (OrderStatus::Cancelled, 3));
        assert_eq!(order.cancel_reason, Some(CancelReason::CustomerRequested));
        assert!(order.refund_pending());
    }

    #[test]
    fn a_refund_settles_what_the_cancellation_owed() {
        let order = fold(&[opened(), captured(), customer_cancelled(), refunded()]).unwrap().unwrap();
        assert_eq!((order.status, order.version), (OrderStatus::Cancelled, 4));
        assert_eq!(order.refund.as_ref().map(|r| r.refund_id.as_str()), Some("re_1"));
        assert!(!order.refund_pending());
    }

    #[test]
    fn an_order_is_refunded_at_most_once() {
        let twice = [opened(), captured(), customer_cancelled(), refunded(), refunded()];
        assert_eq!(fold(&twice), refused("Refunded", OrderStatus::Cancelled));
    }

    #[test]
    fn only_a_customer_cancellation_is_refunded() {
        assert_eq!(fold(&[opened(), cancelled(), refunded()]), refused("Refunded", OrderStatus::Cancelled));
        assert_eq!(fold(&[opened(), captured(), refunded()]), refused("Refunded", OrderStatus::Placed));
        assert!(!fold(&[opened(), cancelled()]).unwrap().unwrap().refund_pending(), "nothing was charged");
    }

    #[test]
    fn the_customer_cannot_cancel_an_order_whose_checkout_is_still_running() {
        assert_eq!(fold(&[opened(), customer_cancelled()]), refused("Cancelled", OrderStatus::PendingPayment));
    }

    #[test]
    fn a_placed_order_ships_with_its_shipment_and_is_then_delivered() {
        let order = fold(&[opened(), captured(), shipped(), delivered()]).unwrap().unwrap();
        assert_eq!((order.status, order.version), (OrderStatus::Delivered, 4));
        assert_eq!(order.shipment, Some(Shipment { carrier: "UPS".into(), tracking_id: "1Z999".into() }));
    }

    #[test]
    fn shipping_and_delivery_follow_their_order() {
        assert_eq!(fold(&[opened(), shipped()]), refused("Shipped", OrderStatus::PendingPayment));
        assert_eq!(fold(&[opened(), captured(), delivered()]), refused("Delivered", OrderStatus::Placed));
        assert_eq!(fold(&[opened(), captured(), shipped(), shipped()]), refused("Shipped", OrderStatus::Shipped));
        let twice = [opened(), captured(), shipped(), delivered(), delivered()];
        assert_eq!(fold(&twice), refused("Delivered", OrderStatus::Delivered));
    }

    #[test]
    fn a_cancelled_order_never_ships_and_a_shipped_one_is_never_cancelled() {
        let cancelled_then_shipped = [opened(), captured(), customer_cancelled(), shipped()];
        assert_eq!(fold(&cancelled_then_shipped), refused("Shipped", OrderStatus::Cancelled));
        let shipped_then_cancelled = [opened(), captured(), shipped(), customer_cancelled()];
        assert_eq!(fold(&shipped_then_cancelled), refused("Cancelled", OrderStatus::Shipped));
        let delivered_then_cancelled = [opened(), captured(), shipped(), delivered(), customer_cancelled()];
        assert_eq!(fold(&delivered_then_cancelled), refused("Cancelled", OrderStatus::Delivered));
    }

    #[test]
    fn the_customers_cancellation_starts_the_refund_saga_and_the_refund_ends_it() {
        assert!(matches!(customer_cancelled().saga(), SagaStep::Starts { .. }));
        assert_eq!(refunded().saga(), SagaStep::Ends);
        assert_eq!((shipped().saga(), delivered().saga()), (SagaStep::None, SagaStep::None));
    }

    #[test]
    fn updated_at_is_the_time_of_the_last_event() {
        let late = OrderEvent::Delivered { at: at(90) };
        let order = fold(&[opened(), captured(), shipped(), late]).unwrap().unwrap();
        assert_eq!(order.updated_at, at(90));
    }

    /// Opened at 0 s, captured at 10 s, shipped at 20 s.
    fn timed_history() -> Vec<Recorded> {
        let OrderEvent::Opened { customer_id, lines, total, correlation_id, .. } = opened() else { unreachable!() };
        let shipment = Shipment { carrier: "UPS".into(), tracking_id: "1Z".into() };
        let events = [
            OrderEvent::Opened { customer_id, lines, total, at: at(0), correlation_id },
            OrderEvent::PaymentCaptured { charge_id: "ch_1".into(), at: at(10) },
            OrderEvent::Shipped { shipment, at: at(20) },
        ];
        (1..).zip(events).map(|(version, event)| Recorded { version, event, correlation_id: "c".into() }).collect()
    }

    #[test]
    fn as_of_a_time_the_order_is_the_fold_of_the_events_that_had_happened() {
        let (id, history) = (OrderId::new(), timed_history());
        let status = |t| Order::as_of(id, &history, at(t)).unwrap().map(|o| (o.status, o.version));
        assert_eq!(status(5), Some((OrderStatus::PendingPayment, 1)));
        assert_eq!(status(15), Some((OrderStatus::Placed, 2)));
        assert_eq!(status(99), Some((OrderStatus::Shipped, 3)));
    }

    #[test]
    fn as_of_the_very_moment_of_an_event_includes_it() {
        let (id, history) = (OrderId::new(), timed_history());
        assert_eq!(Order::as_of(id, &history, at(10)).unwrap().unwrap().status, OrderStatus::Placed);
    }

    #[test]
    fn as_of_a_time_before_the_order_existed_there_is_no_order() {
        assert_eq!(Order::as_of(OrderId::new(), &timed_history(), at(-1)), Ok(None));
    }

    #[test]
    fn as_of_now_is_the_current_state() {
        let (id, history) = (OrderId::new(), timed_history());
        let current = Order::replay(id, history.iter().map(|r| &r.event)).unwrap();
        assert_eq!(Order::as_of(id, &history, at(3600)).unwrap(), current);
    }

    #[test]
    fn lifecycle_events_round_trip_through_json() {
        for event in [customer_cancelled(), refunded(), shipped(), delivered()] {
            let json = serde_json::to_string(&event).unwrap();
            assert_eq!(serde_json::from_str::<OrderEvent>(&json).unwrap(), event, "{json}");
        }
    }

    #[test]
    fn events_round_trip_through_json() {
        let json = serde_json::to_string(&opened()).unwrap();
        assert!(json.contains("\"type\":\"opened\""));
        let back: OrderEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back.name(), "Opened");
    }
}
