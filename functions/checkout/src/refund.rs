//! The refund saga of a customer-cancelled order: `Cancelled` starts it (and puts the order in
//! the open-orders index), `Refunded` ends it.
//!
//! The order is cancelled first and refunded after, never the other way round: the
//! cancellation is what wins or loses against a concurrent shipment (one event per version),
//! and only a won cancellation may refund. A crash between the two leaves the order
//! refund-pending; whoever comes next finishes it: a retry of the cancel (under any key) or
//! the recovery sweeper. They may race: the gateway refunds a charge once and answers every
//! later ask with the same refund, and `Refunded` can be appended once, so the order is
//! refunded exactly once whoever finishes it.

use crate::commands::{CommandError, DECISIONS};
use crate::journal::{Appended, Journal};
use chrono::Utc;
use shared::domain::{Order, OrderEvent};
use shared::ports::{PaymentError, PaymentGateway};

/// Refunds `order` if it is refund-pending and records the refund (`payment.refunded`);
/// answers the order as it is then. Does nothing to any other order.
pub async fn finish(journal: &Journal<'_>, payments: &dyn PaymentGateway, order: Order) -> Result<Order, CommandError> {
    let mut order = order;
    for _ in 0..DECISIONS {
        if !order.refund_pending() {
            return Ok(order);
        }
        let refund = payments.refund(&order.payment_key(), order.total).await.map_err(|e| match e {
            PaymentError::Declined { code } => CommandError::RefundRefused { code },
            other => CommandError::failed(other),
        })?;
        tracing::info!(order_id = %order.id, refund_id = refund.refund_id, "refunded the cancelled order");
        match journal.append(&order, OrderEvent::Refunded { refund, at: Utc::now() }).await? {
            Appended::Now(refunded) => return Ok(*refunded),
            // Someone else recorded it first (the same refund, asked under the same key).
            Appended::Taken => order = journal.load(order.id).await?,
        }
    }
    Err(CommandError::Contended)
}
