//! Money as integer minor units plus an ISO 4217 currency. Floats never touch an amount.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The currencies the shop sells in. All have two minor digits, which the loyalty rule
/// ("one point per whole unit") relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Currency {
    EUR,
    USD,
    GBP,
}

impl Currency {
    pub const ALL: [Currency; 3] = [Currency::EUR, Currency::USD, Currency::GBP];

    pub fn code(self) -> &'static str {
        match self {
            Currency::EUR => "EUR",
            Currency::USD => "USD",
            Currency::GBP => "GBP",
        }
    }

    /// Minor units in one major unit (cents per euro).
    pub fn minor_per_major(self) -> i64 {
        100
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("unsupported currency {0:?}")]
    UnsupportedCurrency(String),
    #[error("cannot combine {0} with {1}")]
    CurrencyMismatch(Currency, Currency),
    #[error("amount overflow")]
    Overflow,
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::ALL.into_iter().find(|c| c.code() == s).ok_or_else(|| MoneyError::UnsupportedCurrency(s.to_owned()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Money {
    /// Minor units (cents). Signed so that refunds and deltas can be expressed.
    pub amount: i64,
    pub currency: Currency,
}

impl Money {
    pub fn new(amount: i64, currency: Currency) -> Self {
        Self { amount, currency }
    }

    pub fn zero(currency: Currency) -> Self {
        Self::new(0, currency)
    }

    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        if self.currency != other.currency {
            return Err(MoneyError::CurrencyMismatch(self.currency, other.currency));
        }
        let amount = self.amount.checked_add(other.amount).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    pub fn checked_mul(self, factor: u32) -> Result<Money, MoneyError> {
        let amount = self.amount.checked_mul(i64::from(factor)).ok_or(MoneyError::Overflow)?;
        Ok(Money::new(amount, self.currency))
    }

    /// Whole major units, rounded down (1999 cents → 19).
    pub fn whole_units(self) -> i64 {
        self.amount.div_euclid(self.currency.minor_per_major())
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let per = self.currency.minor_per_major();
        let sign = if self.amount < 0 { "-" } else { "" };
        let abs = self.amount.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / per as u64, abs % per as u64, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_amounts_of_one_currency_sums_minor_units() {
        let total = Money::new(1999, Currency::EUR).checked_add(Money::new(1, Currency::EUR));
        assert_eq!(total, Ok(Money::new(2000, Currency::EUR)));
    }

    #[test]
    fn adding_amounts_of_different_currencies_is_refused() {
        let sum = Money::new(1, Currency::EUR).checked_add(Money::new(1, Currency::USD));
        assert_eq!(sum, Err(MoneyError::CurrencyMismatch(Currency::EUR, Currency::USD)));
    }

    #[test]
    fn multiplying_past_i64_reports_overflow() {
        assert_eq!(Money::new(i64::MAX, Currency::EUR).checked_mul(2), Err(MoneyError::Overflow));
    }

    #[test]
    fn whole_units_round_down() {
        assert_eq!(Money::new(1999, Currency::GBP).whole_units(), 19);
    }

    #[test]
    fn display_shows_major_and_minor_units() {
        assert_eq!(Money::new(123456, Currency::USD).to_string(), "1234.56 USD");
    }

    #[test]
    fn unknown_currency_codes_are_rejected() {
        assert!("XYZ".parse::<Currency>().is_err());
        assert_eq!("EUR".parse::<Currency>(), Ok(Currency::EUR));
    }
}
