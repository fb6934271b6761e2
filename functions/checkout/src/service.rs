//! The checkout's two operations, independent of Lambda: `POST /orders` (validation,
//! idempotency, the saga) and `GET /orders/{id}`. Each returns the reply to send.

use crate::problem::{FieldError, Problem, CONTENT_TYPE as PROBLEM};
use crate::request::{self, MAX_BODY_BYTES};
use crate::saga::{Outcome, Ports, Saga, SagaError};
use serde_json::json;
use sha2::{Digest, Sha256};
use shared::domain::{Order, OrderId};
pub use shared::ports::StoredResponse as Reply;
use shared::ports::{Claim, ClaimRequest, IdempotencyStore};
use shared::telemetry::{metric, Unit};
use std::sync::Arc;

/// How long a key is remembered (Stripe keeps keys 24 hours).
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;
const JSON: &str = "application/json";

/// A `POST /orders` as it arrived.
#[derive(Debug, Clone)]
pub struct PostOrder<'a> {
    pub content_type: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub body: &'a [u8],
    pub correlation_id: &'a str,
    pub now_ms: i64,
    /// Until when this invocation may run (the Lambda deadline): the idempotency lease.
    pub deadline_ms: i64,
}

fn reply(status: u16, content_type: &str, body: String) -> Reply {
    Reply { status, headers: vec![("content-type".into(), content_type.into())], body }
}

pub fn problem(p: Problem) -> Reply {
    reply(p.status, PROBLEM, serde_json::to_string(&p).expect("problems serialise"))
}

fn invalid(errors: Vec<FieldError>) -> Reply {
    problem(
        Problem::new(400, "invalid-request", "Invalid request", "The request has invalid fields; see errors.")
            .with_errors(errors),
    )
}

fn with_header(mut r: Reply, name: &str, value: impl Into<String>) -> Reply {
    r.headers.push((name.to_owned(), value.into()));
    r
}

fn order_summary(order: &Order) -> Reply {
    let body = json!({
        "orderId": order.id,
        "status": order.status.as_str(),
        "total": order.total.amount,
        "currency": order.total.currency,
    });
    with_header(reply(201, JSON, body.to_string()), "location", format!("/orders/{}", order.id))
}

/// The final answers, as stored for replay.
fn render(outcome: &Outcome) -> Reply {
    match outcome {
        Outcome::Placed(order) => order_summary(order),
        Outcome::UnknownSkus(skus) => problem(
            Problem::new(422, "unknown-sku", "Unknown product", "Some SKUs are not in the catalogue.").with_skus(skus),
        ),
        Outcome::NotSoldIn(skus) => problem(
            Problem::new(
                422,
                "currency-not-offered",
                "Not sold in this currency",
                "Some SKUs are not priced in the requested currency.",
            )
            .with_skus(skus),
        ),
        Outcome::Unpriceable(why) => problem(Problem::new(422, "unpriceable", "Order cannot be priced", why.clone())),
        Outcome::OutOfStock(skus) => problem(
            Problem::new(
                409,
                "insufficient-stock",
                "Insufficient stock",
                "Not enough stock for some SKUs; nothing was reserved.",
            )
            .with_skus(skus),
        ),
        Outcome::Declined { code } => problem(Problem::new(
            402,
            "payment-declined",
            "Payment declined",
            format!("The payment was declined ({code}). Nothing was charged and no stock is held."),
        )),
        Outcome::Expired => problem(Problem::new(
            409,
            "order-expired",
            "Order expired",
            "This checkout was interrupted and not retried in time, so it was cancelled: nothing was charged \
             and no stock is held. Place the order again with a new Idempotency-Key.",
        )),
    }
}

pub struct Checkout {
    pub ports: Ports,
    pub idempotency: Arc<dyn IdempotencyStore>,
}

impl Checkout {
    pub fn new(ports: Ports, idempotency: Arc<dyn IdempotencyStore>) -> Self {
        Self { ports, idempotency }
    }

    pub async fn post_order(&self, req: PostOrder<'_>) -> Reply {
        // Checks that change nothing and need no I/O come first; none of them is remembered.
        if req.body.len() > MAX_BODY_BYTES {
            return problem(Problem::new(
                413,
                "body-too-large",
                "Body too large",
                format!("The body must be at most {MAX_BODY_BYTES} bytes."),
            ));
        }
        if !request::is_json(req.content_type) {
            return problem(Problem::new(
                415,
                "unsupported-media-type",
                "Unsupported media type",
                "Send the order as application/json.",
            ));
        }
        let key = match request::idempotency_key(req.idempotency_key) {
            Ok(key) => key,
            Err(e) => return invalid(vec![e]),
        };
        let command = match request::parse(req.body) {
            Ok(cmd) => cmd,
            Err(errors) => return invalid(errors),
        };
        let scoped_key = format!("checkout:POST /orders:{key}");
        let attempt = ulid::Ulid::new().to_string();
        let claim = ClaimRequest {
            key: scoped_key.clone(),
            payload_hash: hex::encode(Sha256::digest(command.canonical.as_bytes())),
            order_id: OrderId::new(),
            attempt: attempt.clone(),
            now_ms: req.now_ms,
            lease_until_ms: req.deadline_ms,
            expires_at: req.now_ms / 1000 + IDEMPOTENCY_TTL_SECONDS,
        };
        let claimed = match self.idempotency.claim(&claim).await {
            Ok(claimed) => claimed,
            Err(e) => return unavailable(&e.to_string()),
        };
        let order_id = match claimed {
            Claim::Started { order_id } | Claim::TakenOver { order_id } => order_id,
            Claim::Replay(stored) => return with_header(stored, "idempotent-replayed", "true"),
            Claim::InProgress => {
                return with_header(
                    problem(Problem::new(
                        409,
                        "request-in-progress",
                        "Request in progress",
                        "A request with this Idempotency-Key is still being processed; retry later.",
                    )),
                    "retry-after",
                    "1",
                )
            }
            Claim::PayloadMismatch => {
                return problem(Problem::new(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key reused",
                    "This Idempotency-Key was used with a different request body.",
                ))
            }
        };
        let span = tracing::info_span!("checkout", correlation_id = req.correlation_id, order_id = %order_id);
        let _entered = span.enter();
        let saga = Saga { ports: &self.ports, correlation_id: req.correlation_id };
        let result = match claimed {
            Claim::TakenOver { .. } => saga.resume(order_id, &command).await,
            _ => saga.start(order_id, &command).await,
        };
        match result {
            Ok(outcome) => {
                let answer = render(&outcome);
                let name = if matches!(outcome, Outcome::Placed(_)) { "OrdersPlaced" } else { "OrdersRejected" };
                metric("checkout", name, Unit::Count, 1.0);
                tracing::info!(status = answer.status, "checkout answered");
                if let Err(e) = self.idempotency.complete(&scoped_key, &attempt, &answer).await {
                    // The lease will lapse and a retry will resume the order: still correct.
                    tracing::warn!(error = %e, "could not store the response for replay");
                }
                answer
            }
            Err(err) => {
                tracing::warn!(error = %err, "checkout failed; the client may retry");
                // Keep the key bound while an order may be open, so a retry resumes that order.
                if !err.order_may_be_open() {
                    if let Err(e) = self.idempotency.release(&scoped_key, &attempt).await {
                        tracing::warn!(error = %e, "could not release the idempotency key; it frees when its lease lapses");
                    }
                }
                match err {
                    SagaError::GatewayFailed { .. } => problem(Problem::new(
                        502,
                        "payment-gateway-error",
                        "Payment gateway error",
                        "The payment gateway refused to process the payment. Nothing was charged and no stock is \
                         held; retry with the same Idempotency-Key.",
                    )),
                    SagaError::PaymentUnknown { .. } => with_header(
                        problem(Problem::new(
                            502,
                            "payment-outcome-unknown",
                            "Payment outcome unknown",
                            "The payment gateway did not answer, so the charge may have gone through. Retry with the \
                             same Idempotency-Key: it never charges twice, and an order nobody retries is settled \
                             automatically.",
                        )),
                        "retry-after",
                        "1",
                    ),
                    SagaError::Unavailable { cause } | SagaError::Interrupted { cause } => unavailable(&cause),
                }
            }
        }
    }

    pub async fn get_order(&self, id: &str) -> Reply {
        let not_found = || problem(Problem::new(404, "order-not-found", "Order not found", format!("No order {id}.")));
        let Ok(order_id) = id.parse::<OrderId>() else { return not_found() };
        match self.ports.orders.load(order_id).await {
            Ok(Some(order)) => reply(200, JSON, order_view(&order).to_string()),
            Ok(None) => not_found(),
            Err(e) => unavailable(&e.to_string()),
        }
    }
}

fn unavailable(cause: &str) -> Reply {
    tracing::error!(cause, "dependency unavailable");
    with_header(
        problem(Problem::new(
            503,
            "unavailable",
            "Service unavailable",
            "A dependency is unavailable; retry with the same Idempotency-Key.",
        )),
        "retry-after",
        "1",
    )
}

/// The read model of one order, folded from its events.
pub fn order_view(order: &Order) -> serde_json::Value {
    json!({
        "orderId": order.id,
        "status": order.status.as_str(),
        "customerId": order.customer_id,
        "lines": order.lines.iter().map(|l| json!({"sku": l.sku, "quantity": l.quantity, "unitPrice": l.unit_price.amount})).collect::<Vec<_>>(),
        "total": order.total.amount,
        "currency": order.total.currency,
        "openedAt": order.opened_at,
        "version": order.version,
    })
}
