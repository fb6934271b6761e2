use super::{EventData, SOURCE_CHECKOUT};
use crate::domain::{Currency, CustomerId, LineItem, Money, Sku};
use serde::{Deserialize, Serialize};

/// `order.placed` v1: the payment is captured and the order is final. Published by the
/// checkout; every downstream concern starts from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderPlacedV1 {
    pub customer_id: CustomerId,
    pub lines: Vec<OrderPlacedLine>,
    /// Minor units of `currency`.
    pub total: i64,
    pub currency: Currency,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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

/// One SKU's share of an order, its lines combined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkuTotal {
    pub sku: Sku,
    pub quantity: u64,
    /// Σ quantity × unit price, minor units of the order's currency.
    pub revenue: i64,
}

impl OrderPlacedV1 {
    /// The order's SKUs in first-seen order, each once. The checkout refuses repeated SKUs, but
    /// consumers that write one item per SKU must not rely on it: DynamoDB cancels a
    /// transaction with two actions on one item, and that retry would never succeed.
    pub fn per_sku(&self) -> Result<Vec<SkuTotal>, crate::domain::MoneyError> {
        use crate::domain::MoneyError::Overflow;
        let mut totals: Vec<SkuTotal> = Vec::with_capacity(self.lines.len());
        for line in &self.lines {
            let revenue = line.unit_price.checked_mul(i64::from(line.quantity)).ok_or(Overflow)?;
            let at = match totals.iter().position(|t| t.sku == line.sku) {
                Some(at) => at,
                None => {
                    totals.push(SkuTotal { sku: line.sku.clone(), quantity: 0, revenue: 0 });
                    totals.len() - 1
                }
            };
            let total = &mut totals[at];
            total.quantity = total.quantity.checked_add(u64::from(line.quantity)).ok_or(Overflow)?;
            total.revenue = total.revenue.checked_add(revenue).ok_or(Overflow)?;
        }
        Ok(totals)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lines: &[(&str, u32, i64)]) -> OrderPlacedV1 {
        let lines = lines.iter().map(|(sku, quantity, unit_price)| OrderPlacedLine {
            sku: (*sku).into(),
            quantity: *quantity,
            unit_price: *unit_price,
        });
        OrderPlacedV1 { customer_id: "c".into(), lines: lines.collect(), total: 0, currency: Currency::EUR }
    }

    #[test]
    fn per_sku_combines_repeated_skus_and_keeps_first_seen_order() {
        let totals = order(&[("TEE", 1, 2000), ("MUG", 2, 1250), ("TEE", 2, 1900)]).per_sku().unwrap();
        assert_eq!(
            totals,
            vec![
                SkuTotal { sku: "TEE".into(), quantity: 3, revenue: 5800 },
                SkuTotal { sku: "MUG".into(), quantity: 2, revenue: 2500 },
            ]
        );
    }

    #[test]
    fn per_sku_reports_an_overflowing_revenue_instead_of_wrapping() {
        assert!(order(&[("MUG", 2, i64::MAX)]).per_sku().is_err());
    }
}
