//! The events of an order's life after checkout: cancelled by its customer (and refunded),
//! shipped, delivered. Each is small: the IDs and the facts its consumers act on.

use super::{EventData, OrderPlacedLine, SOURCE_CHECKOUT, SOURCE_FULFILMENT};
use crate::domain::{Currency, CustomerId, LineItem, Money};
use serde::{Deserialize, Serialize};

/// `order.cancelled` v1: the customer cancelled a placed order before it shipped; its charge
/// is being refunded (`payment.refunded` follows). Carries the lines and total because its
/// consumers undo what `order.placed` did (stock, points), and may see it first.
///
/// Only placed orders are announced: a checkout that gives up (declined, expired) never
/// published `order.placed`, so nobody downstream has anything to undo.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderCancelledV1 {
    pub customer_id: CustomerId,
    pub lines: Vec<OrderPlacedLine>,
    /// Minor units of `currency`.
    pub total: i64,
    pub currency: Currency,
}

impl EventData for OrderCancelledV1 {
    const TYPE: &'static str = "order.cancelled";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = SOURCE_CHECKOUT;
}

impl OrderCancelledV1 {
    pub fn new(customer_id: CustomerId, lines: &[LineItem], total: Money) -> Self {
        let lines = lines.iter().map(|l| OrderPlacedLine {
            sku: l.sku.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.amount,
        });
        OrderCancelledV1 { customer_id, lines: lines.collect(), total: total.amount, currency: total.currency }
    }

    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.currency)
    }

    /// The cancelled order's SKUs, combined as `order.placed`'s are ([`super::per_sku`]).
    pub fn per_sku(&self) -> Result<Vec<super::SkuTotal>, crate::domain::MoneyError> {
        super::per_sku(self.lines.iter().map(|l| (&l.sku, l.quantity, l.unit_price)))
    }
}

/// `payment.refunded` v1: the charge of a cancelled order was refunded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PaymentRefundedV1 {
    pub customer_id: CustomerId,
    pub refund_id: String,
    /// Minor units of `currency`.
    pub amount: i64,
    pub currency: Currency,
}

impl EventData for PaymentRefundedV1 {
    const TYPE: &'static str = "payment.refunded";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = SOURCE_CHECKOUT;
}

/// `order.shipped` v1: the warehouse handed the order to a carrier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderShippedV1 {
    pub customer_id: CustomerId,
    pub carrier: String,
    pub tracking_id: String,
}

impl EventData for OrderShippedV1 {
    const TYPE: &'static str = "order.shipped";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = SOURCE_FULFILMENT;
}

/// `order.delivered` v1: the carrier reported the order delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderDeliveredV1 {
    pub customer_id: CustomerId,
}

impl EventData for OrderDeliveredV1 {
    const TYPE: &'static str = "order.delivered";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = SOURCE_FULFILMENT;
}
