//! What the API shows of an order: its state (the fold of its events, now or as of a past
//! time) and its history (the events themselves). Both read the same stored events; neither
//! keeps state of its own.

use serde_json::{json, Value};
use shared::domain::{Order, OrderId, Recorded};

/// The order as its events make it.
pub fn order_view(order: &Order) -> Value {
    json!({
        "orderId": order.id,
        "status": order.status.as_str(),
        "customerId": order.customer_id,
        "lines": order.lines.iter().map(|l| json!({"sku": l.sku, "quantity": l.quantity, "unitPrice": l.unit_price.amount})).collect::<Vec<_>>(),
        "total": order.total.amount,
        "currency": order.total.currency,
        "openedAt": order.opened_at,
        "updatedAt": order.updated_at,
        "version": order.version,
        "cancelReason": order.cancel_reason,
        "shipment": order.shipment,
        "refund": order.refund.as_ref().map(|r| json!({
            "refundId": r.refund_id,
            "amount": r.amount.amount,
            "currency": r.amount.currency,
        })),
    })
}

/// The audit trail: every event of the order in version order, when it happened, and the
/// request that caused it (its correlation ID).
pub fn history_view(order_id: OrderId, history: &[Recorded]) -> Value {
    let events: Vec<Value> = history.iter().map(event_view).collect();
    json!({"orderId": order_id, "events": events})
}

fn event_view(recorded: &Recorded) -> Value {
    // The event's own fields, as stored, minus the two the entry shows on its own.
    let mut data = serde_json::to_value(&recorded.event).unwrap_or(Value::Null);
    if let Some(fields) = data.as_object_mut() {
        fields.remove("type");
        fields.remove("at");
    }
    json!({
        "version": recorded.version,
        "type": recorded.event.name(),
        "at": recorded.event.at(),
        "correlationId": recorded.correlation_id,
        "data": data,
    })
}
