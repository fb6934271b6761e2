//! Pricing: every line priced from the catalogue, never from the client.

use super::{Currency, LineItem, Money, MoneyError, Sku};
use std::collections::HashMap;

/// A catalogue entry as the checkout needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub sku: Sku,
    pub name: String,
    pub unit_price: Money,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PricingError {
    #[error("unknown SKUs: {0:?}")]
    UnknownSkus(Vec<Sku>),
    #[error("SKUs not sold in {currency}: {skus:?}")]
    NotSoldIn { currency: Currency, skus: Vec<Sku> },
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Prices the requested `(sku, quantity)` lines in `currency`; returns the lines and total.
pub fn price(
    requested: &[(Sku, u32)],
    currency: Currency,
    catalogue: &HashMap<Sku, Product>,
) -> Result<(Vec<LineItem>, Money), PricingError> {
    let unknown: Vec<Sku> =
        requested.iter().filter(|(sku, _)| !catalogue.contains_key(sku)).map(|(s, _)| s.clone()).collect();
    if !unknown.is_empty() {
        return Err(PricingError::UnknownSkus(unknown));
    }
    let wrong_currency: Vec<Sku> = requested
        .iter()
        .filter(|(sku, _)| catalogue[sku].unit_price.currency != currency)
        .map(|(s, _)| s.clone())
        .collect();
    if !wrong_currency.is_empty() {
        return Err(PricingError::NotSoldIn { currency, skus: wrong_currency });
    }
    let lines: Vec<LineItem> = requested
        .iter()
        .map(|(sku, quantity)| LineItem {
            sku: sku.clone(),
            quantity: *quantity,
            unit_price: catalogue[sku].unit_price,
        })
        .collect();
    let total = lines.iter().try_fold(Money::zero(currency), |sum, line| sum.checked_add(line.subtotal()?))?;
    Ok((lines, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> HashMap<Sku, Product> {
        [("MUG", 1250), ("TEE", 2000)]
            .into_iter()
            .map(|(sku, cents)| {
                (
                    sku.into(),
                    Product { sku: sku.into(), name: sku.to_lowercase(), unit_price: Money::new(cents, Currency::EUR) },
                )
            })
            .collect()
    }

    #[test]
    fn lines_are_priced_from_the_catalogue_and_summed() {
        let (lines, total) = price(&[("MUG".into(), 2), ("TEE".into(), 1)], Currency::EUR, &catalogue()).unwrap();
        assert_eq!(lines[0].unit_price, Money::new(1250, Currency::EUR));
        assert_eq!(total, Money::new(4500, Currency::EUR));
    }

    #[test]
    fn unknown_skus_are_all_named() {
        let err = price(&[("MUG".into(), 1), ("NOPE".into(), 1), ("GONE".into(), 1)], Currency::EUR, &catalogue());
        assert_eq!(err, Err(PricingError::UnknownSkus(vec!["NOPE".into(), "GONE".into()])));
    }

    #[test]
    fn a_product_priced_in_another_currency_is_not_converted() {
        let err = price(&[("MUG".into(), 1)], Currency::USD, &catalogue());
        assert!(matches!(err, Err(PricingError::NotSoldIn { .. })));
    }
}
