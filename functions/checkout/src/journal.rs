//! Appending to an order and announcing it: the one way every writer (the checkout saga, the
//! order commands, the refund) commits an event and publishes what it announces.
//!
//! An event and its integration event are committed in one transaction (the outbox), then
//! published and cleared. A failed publish is not the caller's problem: the entry stays in
//! the outbox and the relay publishes it, so nothing appended is ever lost on the way to the bus.

use crate::commands::CommandError;
use chrono::{DateTime, Utc};
use shared::domain::{Order, OrderEvent, OrderId};
use shared::events::{
    Envelope, EventData, OrderCancelledV1, OrderDeliveredV1, OrderShippedV1, Outbound, PaymentRefundedV1,
};
use shared::ports::*;
use shared::publishing::publish_all;
use shared::retry::{self, Backoff};

/// A commit whose transaction conflicted (nothing applied) is retried at once, in place.
pub async fn commit(orders: &dyn OrderStore, change: OrderChange<'_>) -> Result<(), CommitError> {
    retry::on_conflict(Backoff::CONFLICT, || orders.commit(change)).await
}

/// Publishes an event already safe in the outbox, then clears its entry. An event the bus
/// still refuses after the request path's retries counts in `PutEventsFailed`.
pub async fn publish(outbox: &dyn Outbox, publisher: &dyn EventPublisher, outbound: &Outbound) {
    match publish_all(publisher, std::slice::from_ref(outbound), Backoff::REQUEST_PATH).await {
        Ok(()) => {
            if let Err(e) = outbox.clear(&[outbound.event_id]).await {
                tracing::warn!(error = %e, event_id = %outbound.event_id, "published but not cleared; the relay may publish it again");
            }
        }
        Err(e) => {
            // Counted under the checkout, whose journal this is, whichever of its writers
            // (checkout, fulfilment, the sweeper's settling) published.
            shared::telemetry::metric(crate::service::SERVICE, "PutEventsFailed", shared::telemetry::Unit::Count, 1.0);
            tracing::warn!(error = %e, event_id = %outbound.event_id, "not published; left in the outbox for the relay")
        }
    }
}

/// The integration event that announces `event`, appended to `before` as `version`; `None`
/// for the checkout's own events (the saga announces `order.placed` itself, under the
/// customer's correlation ID, and a checkout that gives up announces nothing).
pub fn announce(before: &Order, event: &OrderEvent, version: u32, correlation_id: &str) -> Option<Outbound> {
    let envelope = Announce { order: before, version, correlation_id };
    let customer_id = before.customer_id.clone();
    Some(match event {
        OrderEvent::Cancelled { reason, at } if reason.after_placement() => {
            envelope.of(*at, OrderCancelledV1::new(customer_id, &before.lines, before.total))
        }
        OrderEvent::Refunded { refund, at } => envelope.of(
            *at,
            PaymentRefundedV1 {
                customer_id,
                refund_id: refund.refund_id.clone(),
                amount: refund.amount.amount,
                currency: refund.amount.currency,
            },
        ),
        OrderEvent::Shipped { shipment, at } => envelope.of(
            *at,
            OrderShippedV1 {
                customer_id,
                carrier: shipment.carrier.clone(),
                tracking_id: shipment.tracking_id.clone(),
            },
        ),
        OrderEvent::Delivered { at } => envelope.of(*at, OrderDeliveredV1 { customer_id }),
        OrderEvent::Opened { .. } | OrderEvent::PaymentCaptured { .. } | OrderEvent::Cancelled { .. } => return None,
    })
}

/// The envelope every integration event of one appended order event gets.
struct Announce<'a> {
    order: &'a Order,
    version: u32,
    correlation_id: &'a str,
}

impl Announce<'_> {
    fn of<D: EventData>(&self, at: DateTime<Utc>, data: D) -> Outbound {
        Envelope::new(self.order.id, self.version, self.correlation_id, at, data).to_outbound()
    }
}

/// What appending came to.
#[derive(Debug)]
pub enum Appended {
    /// Appended (and announced): the order as it is now.
    Now(Box<Order>),
    /// A concurrent writer appended that version first: reload and decide again.
    Taken,
}

/// Appends events to orders under one request's correlation ID.
#[derive(Clone, Copy)]
pub struct Journal<'a> {
    pub orders: &'a dyn OrderStore,
    pub outbox: &'a dyn Outbox,
    pub publisher: &'a dyn EventPublisher,
    /// The request that causes the events: kept with each event and in each envelope.
    pub correlation_id: &'a str,
}

impl Journal<'_> {
    pub async fn load(&self, id: OrderId) -> Result<Order, CommandError> {
        self.orders.load(id).await.map_err(CommandError::failed)?.ok_or(CommandError::NotFound)
    }

    /// Appends `event` as the next version of `order`, with its integration event in the
    /// outbox in the same transaction, then publishes that.
    pub async fn append(&self, order: &Order, event: OrderEvent) -> Result<Appended, CommandError> {
        let status = order.status;
        let next = order.clone().apply(&event).map_err(|e| {
            tracing::error!(error = %e, "a command decided an event its order does not allow");
            CommandError::Refused { status, retry_later: false, why: "the order does not allow this change" }
        })?;
        let outbound = announce(order, &event, next.version, self.correlation_id);
        let change = OrderChange {
            order_id: order.id,
            version: next.version,
            event: &event,
            stock: StockEffect::None,
            outbox: outbound.as_ref(),
            correlation_id: self.correlation_id,
        };
        match commit(self.orders, change).await {
            Ok(()) => {
                if let Some(outbound) = &outbound {
                    publish(self.outbox, self.publisher, outbound).await;
                }
                Ok(Appended::Now(Box::new(next)))
            }
            Err(CommitError::VersionConflict) => Ok(Appended::Taken),
            // The transaction may have applied before the fault: the caller's retry reloads
            // the order and finds the event there (every command is idempotent by state).
            Err(e) => Err(CommandError::failed(e)),
        }
    }
}
