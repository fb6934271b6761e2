//! The sandbox payment gateway: the default for local runs and tests, answering by test token
//! like a real gateway's test mode, with a real gateway's idempotency: the same key gets the
//! same answer and is charged at most once, and a voided key can no longer be charged.
//!
//! | token                   | outcome                                        | checkout answers |
//! |-------------------------|------------------------------------------------|------------------|
//! | `tok_visa`              | approved                                       | 201              |
//! | `tok_mastercard`        | approved                                       | 201              |
//! | `tok_chargeDeclined`    | declined, `card_declined`                      | 402              |
//! | `tok_insufficientFunds` | declined, `insufficient_funds`                 | 402              |
//! | `tok_processingError`   | gateway failure, nothing charged               | 502              |
//! | `tok_timeout`           | charged, but the answer is lost (a timeout)    | 502 (outcome unknown); a retry or the sweeper places it |
//! | anything else           | declined, `invalid_token`                      | 402              |
//!
//! What it remembers per key lives in a [`SandboxLedger`]: in memory for unit tests, in a
//! DynamoDB table when deployed, so that every function (the checkout, the recovery sweeper)
//! sees the same charges, as they would through a real gateway's API.

use crate::domain::Money;
use crate::domain::Refund;
use crate::ports::{Charge, ChargeRequest, PaymentError, PaymentGateway, StoreError, Voided};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

/// The final state of one idempotency key at the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerEntry {
    Charged {
        charge_id: String,
        amount: Money,
    },
    Declined {
        code: String,
    },
    /// Closed without a charge: later charges under the key are declined.
    Voided,
    /// The refund of the charge under the key it is kept beside (`<payment key>#refund`).
    Refunded {
        refund_id: String,
        amount: Money,
    },
}

/// The gateway's records: the first final entry written for a key stands forever.
#[async_trait]
pub trait SandboxLedger: Send + Sync {
    /// Writes `entry` under `key` unless the key has one; returns the entry that stands and
    /// whether it is the one just written.
    async fn record(&self, key: &str, entry: &LedgerEntry) -> Result<(LedgerEntry, bool), StoreError>;
}

/// The ledger in one process, for tests and benchmarks.
#[derive(Default)]
pub struct MemoryLedger {
    entries: Mutex<HashMap<String, LedgerEntry>>,
}

impl MemoryLedger {
    pub fn entry(&self, key: &str) -> Option<LedgerEntry> {
        self.entries.lock().unwrap().get(key).cloned()
    }

    /// Every charge, by key.
    pub fn charges(&self) -> Vec<(String, Money)> {
        let entries = self.entries.lock().unwrap();
        entries
            .iter()
            .filter_map(|(k, e)| match e {
                LedgerEntry::Charged { amount, .. } => Some((k.clone(), *amount)),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl SandboxLedger for MemoryLedger {
    async fn record(&self, key: &str, entry: &LedgerEntry) -> Result<(LedgerEntry, bool), StoreError> {
        let mut entries = self.entries.lock().unwrap();
        if let Some(standing) = entries.get(key) {
            return Ok((standing.clone(), false));
        }
        entries.insert(key.to_owned(), entry.clone());
        Ok((entry.clone(), true))
    }
}

/// The gateway: decides by test token, remembers in its ledger.
#[derive(Default)]
pub struct SandboxGateway<L = MemoryLedger> {
    ledger: L,
}

impl<L: SandboxLedger> SandboxGateway<L> {
    pub fn new(ledger: L) -> Self {
        Self { ledger }
    }

    pub fn ledger(&self) -> &L {
        &self.ledger
    }
}

impl SandboxGateway<MemoryLedger> {
    /// The gateway with its ledger in this process (tests, benchmarks).
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// How many distinct charges were approved (each idempotency key counts once).
    pub fn approved_charges(&self) -> usize {
        self.ledger.charges().len()
    }
}

/// What the issuer says for a test token; `None` when the gateway fails before deciding.
fn decide(request: &ChargeRequest) -> Option<LedgerEntry> {
    let declined = |code: &str| Some(LedgerEntry::Declined { code: code.to_owned() });
    match request.payment_token.as_str() {
        "tok_visa" | "tok_mastercard" | "tok_timeout" => {
            Some(LedgerEntry::Charged { charge_id: format!("ch_{}", request.order_id), amount: request.amount })
        }
        "tok_chargeDeclined" => declined("card_declined"),
        "tok_insufficientFunds" => declined("insufficient_funds"),
        "tok_processingError" => None,
        _ => declined("invalid_token"),
    }
}

fn unreachable_ledger(e: StoreError) -> PaymentError {
    // The gateway's own storage failed: as with a real gateway's 5xx, the caller cannot know
    // whether the write landed.
    PaymentError::Unknown(format!("gateway ledger: {e}"))
}

#[async_trait]
impl<L: SandboxLedger> PaymentGateway for SandboxGateway<L> {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        // A processing error is not a final answer: nothing is recorded, the key may be tried again.
        let Some(decision) = decide(request) else { return Err(PaymentError::Failed("processing_error".into())) };
        let (standing, new) =
            self.ledger.record(&request.idempotency_key, &decision).await.map_err(unreachable_ledger)?;
        match standing {
            // The first call charges and loses the answer; a retry under the same key is told.
            LedgerEntry::Charged { charge_id, .. } if new && request.payment_token == "tok_timeout" => {
                tracing::info!(charge_id, "sandbox: charged, answering as if the connection timed out");
                Err(PaymentError::Unknown("timeout".into()))
            }
            LedgerEntry::Charged { charge_id, .. } => Ok(Charge { charge_id }),
            LedgerEntry::Declined { code } => Err(PaymentError::Declined { code }),
            LedgerEntry::Voided => Err(PaymentError::Declined { code: "payment_voided".into() }),
            LedgerEntry::Refunded { .. } => Err(corrupt_key(&request.idempotency_key)),
        }
    }

    async fn void(&self, idempotency_key: &str) -> Result<Voided, PaymentError> {
        match self.ledger.record(idempotency_key, &LedgerEntry::Voided).await.map_err(unreachable_ledger)?.0 {
            LedgerEntry::Charged { charge_id, .. } => Ok(Voided::AlreadyCharged(Charge { charge_id })),
            LedgerEntry::Declined { .. } | LedgerEntry::Voided => Ok(Voided::Voided),
            LedgerEntry::Refunded { .. } => Err(corrupt_key(idempotency_key)),
        }
    }

    async fn refund(&self, payment_key: &str, amount: Money) -> Result<Refund, PaymentError> {
        let declined = |code: &str| Err(PaymentError::Declined { code: code.to_owned() });
        // Looking the charge up closes an unused key, as a real gateway's refund of an intent
        // that was never confirmed cancels it: either way nothing can be charged under it later.
        let standing = self.ledger.record(payment_key, &LedgerEntry::Voided).await.map_err(unreachable_ledger)?.0;
        let LedgerEntry::Charged { charge_id, amount: charged } = standing else { return declined("charge_not_found") };
        if amount.currency != charged.currency || amount.amount > charged.amount || amount.amount <= 0 {
            return declined("amount_invalid");
        }
        let refund_id = format!("re_{}", charge_id.trim_start_matches("ch_"));
        let entry = LedgerEntry::Refunded { refund_id, amount };
        match self.ledger.record(&format!("{payment_key}#refund"), &entry).await.map_err(unreachable_ledger)?.0 {
            LedgerEntry::Refunded { refund_id, amount } => Ok(Refund { refund_id, amount }),
            _ => Err(corrupt_key(payment_key)),
        }
    }
}

fn corrupt_key(key: &str) -> PaymentError {
    PaymentError::Unknown(format!("gateway ledger: unexpected entry under {key}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Currency, Money, OrderId};

    fn request(key: &str, token: &str) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.into(),
            order_id: OrderId::new(),
            amount: Money::new(100, Currency::EUR),
            payment_token: token.into(),
        }
    }

    #[tokio::test]
    async fn test_cards_approve() {
        let gw = SandboxGateway::in_memory();
        assert!(gw.charge(&request("k1", "tok_visa")).await.is_ok());
        assert!(gw.charge(&request("k2", "tok_mastercard")).await.is_ok());
    }

    #[tokio::test]
    async fn decline_tokens_decline_with_their_code() {
        let gw = SandboxGateway::in_memory();
        let err = gw.charge(&request("k", "tok_insufficientFunds")).await.unwrap_err();
        assert_eq!(err, PaymentError::Declined { code: "insufficient_funds".into() });
    }

    #[tokio::test]
    async fn the_same_key_is_charged_once() {
        let gw = SandboxGateway::in_memory();
        let first = gw.charge(&request("k", "tok_visa")).await.unwrap();
        let second = gw.charge(&request("k", "tok_visa")).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(gw.approved_charges(), 1);
    }

    #[tokio::test]
    async fn processing_errors_fail_without_a_decision() {
        let gw = SandboxGateway::in_memory();
        assert!(matches!(gw.charge(&request("k", "tok_processingError")).await, Err(PaymentError::Failed(_))));
        assert_eq!(gw.ledger().entry("k"), None, "a retry under the same key may still charge");
    }

    #[tokio::test]
    async fn a_timeout_charges_but_loses_the_answer_and_the_retry_gets_the_charge() {
        let gw = SandboxGateway::in_memory();
        assert!(matches!(gw.charge(&request("k", "tok_timeout")).await, Err(PaymentError::Unknown(_))));
        assert_eq!(gw.approved_charges(), 1);
        assert!(gw.charge(&request("k", "tok_timeout")).await.is_ok(), "the retry is told about the charge");
        assert!(matches!(gw.void("k").await, Ok(Voided::AlreadyCharged(_))));
        assert_eq!(gw.approved_charges(), 1);
    }

    #[tokio::test]
    async fn a_voided_key_cannot_be_charged_afterwards() {
        let gw = SandboxGateway::in_memory();
        assert_eq!(gw.void("k").await, Ok(Voided::Voided));
        let late = gw.charge(&request("k", "tok_visa")).await;
        assert_eq!(late, Err(PaymentError::Declined { code: "payment_voided".into() }));
        assert_eq!(gw.approved_charges(), 0);
    }

    fn eur(cents: i64) -> Money {
        Money::new(cents, Currency::EUR)
    }

    #[tokio::test]
    async fn a_charge_is_refunded_once_and_asking_again_answers_the_same_refund() {
        let gw = SandboxGateway::in_memory();
        gw.charge(&request("k", "tok_visa")).await.unwrap();
        let first = gw.refund("k", eur(100)).await.unwrap();
        assert_eq!(first.amount, eur(100));
        assert!(first.refund_id.starts_with("re_"));
        assert_eq!(gw.refund("k", eur(100)).await, Ok(first.clone()), "one refund per charge");
        assert_eq!(gw.refund("k", eur(50)).await, Ok(first), "the first refund stands whatever is asked later");
        assert_eq!(gw.approved_charges(), 1, "a refund is not a charge");
    }

    #[tokio::test]
    async fn refunding_a_key_never_charged_is_declined_and_closes_the_key() {
        let gw = SandboxGateway::in_memory();
        let refused = gw.refund("k", eur(100)).await;
        assert_eq!(refused, Err(PaymentError::Declined { code: "charge_not_found".into() }));
        let late = gw.charge(&request("k", "tok_visa")).await;
        assert_eq!(late, Err(PaymentError::Declined { code: "payment_voided".into() }), "nothing charged after");
    }

    #[tokio::test]
    async fn refunding_a_declined_charge_is_declined() {
        let gw = SandboxGateway::in_memory();
        let _ = gw.charge(&request("k", "tok_chargeDeclined")).await;
        assert_eq!(gw.refund("k", eur(100)).await, Err(PaymentError::Declined { code: "charge_not_found".into() }));
    }

    #[tokio::test]
    async fn a_refund_of_more_than_the_charge_nothing_or_another_currency_is_declined_and_refunds_nothing() {
        let gw = SandboxGateway::in_memory();
        gw.charge(&request("k", "tok_visa")).await.unwrap();
        for amount in [eur(101), eur(0), eur(-5), Money::new(100, Currency::USD)] {
            let refused = gw.refund("k", amount).await;
            assert_eq!(refused, Err(PaymentError::Declined { code: "amount_invalid".into() }), "{amount:?}");
        }
        assert_eq!(gw.ledger().entry("k#refund"), None);
        assert!(gw.refund("k", eur(100)).await.is_ok(), "the right amount is still refunded");
    }

    #[tokio::test]
    async fn a_refund_keeps_the_charge_it_refunds() {
        let gw = SandboxGateway::in_memory();
        let charge = gw.charge(&request("k", "tok_visa")).await.unwrap();
        gw.refund("k", eur(100)).await.unwrap();
        assert_eq!(gw.void("k").await, Ok(Voided::AlreadyCharged(charge.clone())));
        assert_eq!(gw.charge(&request("k", "tok_visa")).await, Ok(charge), "a retried charge is told, not redone");
    }

    #[tokio::test]
    async fn voiding_a_charged_key_reports_the_charge_and_keeps_it() {
        let gw = SandboxGateway::in_memory();
        let charge = gw.charge(&request("k", "tok_visa")).await.unwrap();
        assert_eq!(gw.void("k").await, Ok(Voided::AlreadyCharged(charge)));
        assert_eq!(gw.approved_charges(), 1);
    }
}
