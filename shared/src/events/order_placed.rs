use super::{EventData, SOURCE_CHECKOUT};
use crate::domain::{Currency, CustomerId, LineItem, Money, MoneyError, Sku};
use serde::{Deserialize, Serialize};

/// `order.placed` v1: the payment is captured and the order is final. Published by the
/// checkout until v2 replaced it; every downstream concern starts from it.
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

/// `order.placed` v2: v1 with every amount self-describing. v1 gave bare minor units read
/// against one order-level `currency`, so a consumer that took a line's `unitPrice` alone had a
/// number without its unit; v2 writes each amount as `{"amount": <minor units>, "currency"}`,
/// the domain's `Money`. Retyping `total` and `unitPrice` and dropping `currency` would break
/// v1's readers, hence a new version.
///
/// Consumers read v1 as well, upcast by `From<OrderPlacedV1>` (in [`EventData::read`], the one
/// place): the outbox, the dead-letter queues and the archive still hold v1 events published
/// before the checkout moved to v2, and a replay or a redrive delivers them again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OrderPlacedV2 {
    pub customer_id: CustomerId,
    pub lines: Vec<PricedLine>,
    /// What was charged.
    pub total: Money,
}

/// A line of `order.placed` v2: the SKU, how many, and the unit price charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PricedLine {
    pub sku: Sku,
    pub quantity: u32,
    pub unit_price: Money,
}

impl EventData for OrderPlacedV2 {
    const TYPE: &'static str = "order.placed";
    const VERSION: u32 = 2;
    const SOURCE: &'static str = SOURCE_CHECKOUT;
    const READS: &'static [u32] = &[2, 1];

    fn read(version: u32, data: serde_json::Value) -> Option<Result<Self, serde_json::Error>> {
        match version {
            2 => Some(serde_json::from_value(data)),
            1 => Some(serde_json::from_value::<OrderPlacedV1>(data).map(OrderPlacedV2::from)),
            _ => None,
        }
    }
}

/// The upcast: lossless, because v1 priced every line in the order's one currency.
impl From<OrderPlacedV1> for OrderPlacedV2 {
    fn from(v1: OrderPlacedV1) -> Self {
        let money = |amount| Money::new(amount, v1.currency);
        OrderPlacedV2 {
            lines: v1
                .lines
                .into_iter()
                .map(|l| PricedLine { sku: l.sku, quantity: l.quantity, unit_price: money(l.unit_price) })
                .collect(),
            total: money(v1.total),
            customer_id: v1.customer_id,
        }
    }
}

impl OrderPlacedV2 {
    pub fn new(customer_id: CustomerId, lines: &[LineItem], total: Money) -> Self {
        let lines =
            lines.iter().map(|l| PricedLine { sku: l.sku.clone(), quantity: l.quantity, unit_price: l.unit_price });
        OrderPlacedV2 { customer_id, lines: lines.collect(), total }
    }

    /// The order's SKUs in first-seen order, each once ([`per_sku`]). A line priced in another
    /// currency than the total is refused: the checkout never publishes one, and revenue summed
    /// across currencies would be wrong without an error.
    pub fn per_sku(&self) -> Result<Vec<SkuTotal>, MoneyError> {
        let currency = self.total.currency;
        if let Some(line) = self.lines.iter().find(|l| l.unit_price.currency != currency) {
            return Err(MoneyError::CurrencyMismatch(currency, line.unit_price.currency));
        }
        per_sku(self.lines.iter().map(|l| (&l.sku, l.quantity, l.unit_price.amount)))
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

/// Lines `(sku, quantity, unit price in minor units)` combined per SKU, in first-seen order.
/// The checkout refuses repeated SKUs, but consumers that write one item per SKU must not rely
/// on it: DynamoDB cancels a transaction with two actions on one item, and that retry would
/// never succeed.
pub fn per_sku<'a>(lines: impl IntoIterator<Item = (&'a Sku, u32, i64)>) -> Result<Vec<SkuTotal>, MoneyError> {
    let mut totals: Vec<SkuTotal> = Vec::new();
    for (sku, quantity, unit_price) in lines {
        let revenue = unit_price.checked_mul(i64::from(quantity)).ok_or(MoneyError::Overflow)?;
        let at = match totals.iter().position(|t| &t.sku == sku) {
            Some(at) => at,
            None => {
                totals.push(SkuTotal { sku: sku.clone(), quantity: 0, revenue: 0 });
                totals.len() - 1
            }
        };
        let total = &mut totals[at];
        total.quantity = total.quantity.checked_add(u64::from(quantity)).ok_or(MoneyError::Overflow)?;
        total.revenue = total.revenue.checked_add(revenue).ok_or(MoneyError::Overflow)?;
    }
    Ok(totals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(lines: &[(&str, u32, i64)]) -> OrderPlacedV2 {
        let lines = lines.iter().map(|(sku, quantity, unit_price)| PricedLine {
            sku: (*sku).into(),
            quantity: *quantity,
            unit_price: Money::new(*unit_price, Currency::EUR),
        });
        OrderPlacedV2 { customer_id: "c".into(), lines: lines.collect(), total: Money::zero(Currency::EUR) }
    }

    fn v1() -> OrderPlacedV1 {
        OrderPlacedV1 {
            customer_id: "cust-ada".into(),
            lines: vec![
                OrderPlacedLine { sku: "MUG".into(), quantity: 2, unit_price: 1250 },
                OrderPlacedLine { sku: "TEE".into(), quantity: 1, unit_price: 2099 },
            ],
            total: 4599,
            currency: Currency::GBP,
        }
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
        assert_eq!(order(&[("MUG", 2, i64::MAX)]).per_sku(), Err(MoneyError::Overflow));
    }

    #[test]
    fn per_sku_refuses_a_line_priced_in_another_currency_than_the_total() {
        let mut mixed = order(&[("MUG", 1, 1250)]);
        mixed.lines[0].unit_price.currency = Currency::USD;
        assert_eq!(mixed.per_sku(), Err(MoneyError::CurrencyMismatch(Currency::EUR, Currency::USD)));
    }

    #[test]
    fn given_a_v1_order_when_upcast_then_every_amount_carries_the_orders_currency() {
        let v2 = OrderPlacedV2::from(v1());
        assert_eq!(v2.total, Money::new(4599, Currency::GBP));
        let prices: Vec<Money> = v2.lines.iter().map(|l| l.unit_price).collect();
        assert_eq!(prices, [Money::new(1250, Currency::GBP), Money::new(2099, Currency::GBP)]);
        assert_eq!((v2.customer_id.as_str(), v2.lines[1].sku.as_str(), v2.lines[0].quantity), ("cust-ada", "TEE", 2));
    }

    #[test]
    fn v2_reads_both_its_own_data_and_v1_data_and_nothing_else() {
        let upcast = OrderPlacedV2::from(v1());
        let v2_data = serde_json::to_value(&upcast).unwrap();
        let v1_data = serde_json::to_value(v1()).unwrap();
        assert_eq!(OrderPlacedV2::read(2, v2_data.clone()).unwrap().unwrap(), upcast);
        assert_eq!(OrderPlacedV2::read(1, v1_data.clone()).unwrap().unwrap(), upcast);
        assert!(OrderPlacedV2::read(3, v2_data.clone()).is_none(), "a later version is not guessed at");
        assert!(OrderPlacedV2::read(1, v2_data).unwrap().is_err(), "v2 data labelled v1 is malformed");
        assert!(OrderPlacedV2::read(2, v1_data).unwrap().is_err(), "v1 data labelled v2 is malformed");
    }

    #[test]
    fn every_version_v2_claims_to_read_it_reads() {
        let data = |version| match version {
            1 => serde_json::to_value(v1()).unwrap(),
            _ => serde_json::to_value(OrderPlacedV2::from(v1())).unwrap(),
        };
        for &version in OrderPlacedV2::READS {
            assert!(matches!(OrderPlacedV2::read(version, data(version)), Some(Ok(_))), "v{version}");
        }
    }

    #[test]
    fn v2_writes_each_amount_with_its_currency_and_no_order_level_currency() {
        let data = serde_json::to_value(OrderPlacedV2::from(v1())).unwrap();
        assert_eq!(data["total"], serde_json::json!({"amount": 4599, "currency": "GBP"}));
        assert_eq!(data["lines"][0]["unitPrice"], serde_json::json!({"amount": 1250, "currency": "GBP"}));
        assert!(data.get("currency").is_none());
    }
}
