use super::{EventData, SOURCE_CHECKOUT};
use crate::domain::{Currency, CustomerId, LineItem, Money, Sku};
use serde::{Deserialize, Serialize};

/// `order.placed` v1: the payment is captured and the order is final. Published by the
/// checkout; every downstream concern starts from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlacedV1 {
    pub customer_id: CustomerId,
    pub lines: Vec<OrderPlacedLine>,
    /// Minor units of `currency`.
    pub total: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlacedLine {
    pub sku: Sku,
    pub quantity: u32,
    /// Minor units of the order's `currency`.
    pub unit_price: i64,
}

impl EventData for OrderPlacedV1 {
    const TYPE: &'static str = "order.placed";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = SOURCE_CHECKOUT;
}

impl OrderPlacedV1 {
    pub fn new(customer_id: CustomerId, lines: &[LineItem], total: Money) -> Self {
        OrderPlacedV1 {
            customer_id,
            lines: lines
                .iter()
                .map(|l| OrderPlacedLine { sku: l.sku.clone(), quantity: l.quantity, unit_price: l.unit_price.amount })
                .collect(),
            total: total.amount,
            currency: total.currency,
        }
    }

    pub fn total_money(&self) -> Money {
        Money::new(self.total, self.currency)
    }
}
