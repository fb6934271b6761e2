//! The sandbox payment gateway: the default for local runs and tests, answering by test token
//! like a real gateway's test mode. It honours idempotency keys: the same key gets the same
//! answer and is charged once.
//!
//! | token                   | outcome                          | checkout answers |
//! |-------------------------|----------------------------------|------------------|
//! | `tok_visa`              | approved                         | 201              |
//! | `tok_mastercard`        | approved                         | 201              |
//! | `tok_chargeDeclined`    | declined, `card_declined`        | 402              |
//! | `tok_insufficientFunds` | declined, `insufficient_funds`   | 402              |
//! | `tok_processingError`   | gateway failure                  | 502              |
//! | anything else           | declined, `invalid_token`        | 402              |

use crate::ports::{Charge, ChargeRequest, PaymentError, PaymentGateway};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;

#[derive(Default)]
pub struct SandboxGateway {
    charges: Mutex<HashMap<String, Result<Charge, PaymentError>>>,
}

impl SandboxGateway {
    /// How many distinct charges were approved (each idempotency key counts once).
    pub fn approved_charges(&self) -> usize {
        self.charges.lock().unwrap().values().filter(|r| r.is_ok()).count()
    }

    fn decide(request: &ChargeRequest) -> Result<Charge, PaymentError> {
        let declined = |code: &str| Err(PaymentError::Declined { code: code.to_owned() });
        match request.payment_token.as_str() {
            "tok_visa" | "tok_mastercard" => Ok(Charge { charge_id: format!("ch_{}", request.order_id) }),
            "tok_chargeDeclined" => declined("card_declined"),
            "tok_insufficientFunds" => declined("insufficient_funds"),
            "tok_processingError" => Err(PaymentError::Failed("processing_error".into())),
            _ => declined("invalid_token"),
        }
    }
}

#[async_trait]
impl PaymentGateway for SandboxGateway {
    async fn charge(&self, request: &ChargeRequest) -> Result<Charge, PaymentError> {
        let mut charges = self.charges.lock().unwrap();
        // A processing error is not a final answer: the same key may be tried again.
        if let Some(earlier) =
            charges.get(&request.idempotency_key).filter(|r| !matches!(r, Err(PaymentError::Failed(_))))
        {
            return earlier.clone();
        }
        let outcome = Self::decide(request);
        charges.insert(request.idempotency_key.clone(), outcome.clone());
        outcome
    }
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
        let gw = SandboxGateway::default();
        assert!(gw.charge(&request("k1", "tok_visa")).await.is_ok());
        assert!(gw.charge(&request("k2", "tok_mastercard")).await.is_ok());
    }

    #[tokio::test]
    async fn decline_tokens_decline_with_their_code() {
        let gw = SandboxGateway::default();
        let err = gw.charge(&request("k", "tok_insufficientFunds")).await.unwrap_err();
        assert_eq!(err, PaymentError::Declined { code: "insufficient_funds".into() });
    }

    #[tokio::test]
    async fn the_same_key_is_charged_once() {
        let gw = SandboxGateway::default();
        let first = gw.charge(&request("k", "tok_visa")).await.unwrap();
        let second = gw.charge(&request("k", "tok_visa")).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(gw.approved_charges(), 1);
    }

    #[tokio::test]
    async fn processing_errors_fail_without_a_decision() {
        let gw = SandboxGateway::default();
        assert!(matches!(gw.charge(&request("k", "tok_processingError")).await, Err(PaymentError::Failed(_))));
    }
}
