//! Events stay small (the README's "Event size budget"): each event's size as EventBridge
//! counts it, for a typical order and for the largest the API accepts, reported and kept within
//! budget. Every event is also checked against its schema, so the sizes are of real instances.
//!
//! `cargo test -p contracts --test size -- --nocapture` prints the table.

use chrono::{TimeZone, Utc};
use shared::domain::{Currency, CustomerId, OrderId};
use shared::events::{
    Envelope, EventData, LowStockV1, OrderCancelledV1, OrderDeliveredV1, OrderPlacedLine, OrderPlacedV1, OrderPlacedV2,
    OrderShippedV1, PaymentRefundedV1,
};

/// A typical order's events: the article's "< 1 KB".
const TYPICAL_BUDGET: usize = 1024;
/// The largest order's events: 8 KiB, a 32nd of EventBridge's 256 KB entry limit and within one
/// 64 KB billing chunk.
const MAXIMAL_BUDGET: usize = 8 * 1024;

/// The limits of the API (functions/checkout/src/request.rs, shipment.rs) and of the telemetry.
const MAX_LINES: usize = 50;
const MAX_SKU_LEN: usize = 64;
const MAX_QUANTITY: u32 = 100;
const MAX_CORRELATION_ID_LEN: usize = 128;
/// Shipment fields: 64 characters, each up to 4 bytes of UTF-8.
const MAX_SHIPMENT_FIELD_BYTES: usize = 64 * 4;
/// The customer is the token's subject: a 36-character UUID from Cognito; 128 bounds any issuer.
const MAX_CUSTOMER_ID_LEN: usize = 128;

struct Order {
    customer: CustomerId,
    correlation: String,
    lines: Vec<OrderPlacedLine>,
    carrier: String,
    tracking: String,
    refund: String,
}

fn typical() -> Order {
    let line = |sku: &str, quantity, unit_price| OrderPlacedLine { sku: sku.into(), quantity, unit_price };
    Order {
        customer: "5f3c9a7e-2b1d-4e8f-9a6c-3d2e1f0a9b8c".into(),
        correlation: "01HZX3G8A4C6E8G0J2M4P6R8T0".into(),
        lines: vec![line("MUG-BLUE-350", 2, 1250), line("TEE-BLACK-M", 1, 2000), line("CAP-RED", 1, 1800)],
        carrier: "UPS".into(),
        tracking: "1Z999AA10123456784".into(),
        refund: "re_01HZX3G8A4C6E8G0J2M4P6R8T0".into(),
    }
}

fn maximal() -> Order {
    let lines = (0..MAX_LINES)
        .map(|i| OrderPlacedLine {
            sku: format!("{i:0>width$}", width = MAX_SKU_LEN).as_str().into(),
            quantity: MAX_QUANTITY,
            // As many digits as a price can have with the order's total still in an i64.
            unit_price: i64::MAX / (MAX_LINES as i64 * i64::from(MAX_QUANTITY)),
        })
        .collect();
    let wide = "€".repeat(MAX_SHIPMENT_FIELD_BYTES / 3);
    Order {
        customer: "c".repeat(MAX_CUSTOMER_ID_LEN).as_str().into(),
        correlation: "x".repeat(MAX_CORRELATION_ID_LEN),
        lines,
        carrier: wide.clone(),
        tracking: wide,
        refund: format!("re_{}", "r".repeat(61)),
    }
}

/// The bytes EventBridge counts for a `PutEvents` entry: 14 for `Time`, then the UTF-8 of
/// `Source`, `DetailType` and `Detail` (no resources).
fn entry_size<D: EventData>(order: &Order, data: D) -> usize {
    let occurred = Utc.timestamp_millis_opt(1_800_000_000_123).unwrap();
    let envelope = Envelope::new(OrderId::new(), u32::MAX, order.correlation.clone(), occurred, data);
    let out = envelope.to_outbound();
    let detail: serde_json::Value = serde_json::from_str(&out.detail).unwrap();
    contracts::validate_event(&out.source, &out.detail_type, &detail).unwrap();
    14 + out.source.len() + out.detail_type.len() + out.detail.len()
}

/// `<type> v<version>` of `D`, as the table names it.
fn name<D: EventData>() -> String {
    format!("{} v{}", D::TYPE, D::VERSION)
}

/// Every event of an order's life (and a low-stock warning it causes), with its size; both
/// versions of `order.placed`, since v1 is still delivered.
fn sizes(order: &Order) -> Vec<(String, usize)> {
    let total = order.lines.iter().map(|l| l.unit_price * i64::from(l.quantity)).sum::<i64>();
    let placed = OrderPlacedV1 {
        customer_id: order.customer.clone(),
        lines: order.lines.clone(),
        total,
        currency: Currency::EUR,
    };
    let placed_v2 = OrderPlacedV2::from(placed.clone());
    let cancelled = OrderCancelledV1 {
        customer_id: placed.customer_id.clone(),
        lines: placed.lines.clone(),
        total,
        currency: Currency::EUR,
    };
    let refunded = PaymentRefundedV1 {
        customer_id: order.customer.clone(),
        refund_id: order.refund.clone(),
        amount: total,
        currency: Currency::EUR,
    };
    let shipped = OrderShippedV1 {
        customer_id: order.customer.clone(),
        carrier: order.carrier.clone(),
        tracking_id: order.tracking.clone(),
    };
    let delivered = OrderDeliveredV1 { customer_id: order.customer.clone() };
    let low = LowStockV1 { sku: order.lines[0].sku.clone(), available: i64::MIN, threshold: i64::MAX };
    vec![
        (name::<OrderPlacedV1>(), entry_size(order, placed)),
        (name::<OrderPlacedV2>(), entry_size(order, placed_v2)),
        (name::<OrderCancelledV1>(), entry_size(order, cancelled)),
        (name::<PaymentRefundedV1>(), entry_size(order, refunded)),
        (name::<OrderShippedV1>(), entry_size(order, shipped)),
        (name::<OrderDeliveredV1>(), entry_size(order, delivered)),
        (name::<LowStockV1>(), entry_size(order, low)),
    ]
}

#[test]
fn every_event_of_a_typical_and_of_the_largest_order_is_within_its_size_budget() {
    let (typical, maximal) = (sizes(&typical()), sizes(&maximal()));
    println!("{:<24} {:>8} {:>8}", "event", "typical", "maximal");
    for ((name, small), (_, large)) in typical.iter().zip(&maximal) {
        println!("{name:<24} {small:>7}B {large:>7}B");
    }
    println!("budget: typical < {TYPICAL_BUDGET} B, maximal < {MAXIMAL_BUDGET} B (EventBridge: 256 KB)");
    let over: Vec<String> = typical
        .iter()
        .filter(|(_, size)| *size >= TYPICAL_BUDGET)
        .map(|(name, size)| format!("typical {name}: {size} B"))
        .chain(
            maximal
                .iter()
                .filter(|(_, size)| *size >= MAXIMAL_BUDGET)
                .map(|(name, size)| format!("maximal {name}: {size} B")),
        )
        .collect();
    assert!(over.is_empty(), "over budget: {}", over.join(", "));
}
