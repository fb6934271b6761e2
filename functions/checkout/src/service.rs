//! The customer's operations, independent of Lambda: `POST /orders` (validation, idempotency,
//! the saga), `GET /orders/{id}` (now or `asOf` a past time), `GET /orders/{id}/events` (the
//! audit trail) and `POST /orders/{id}/cancel`. Each returns the reply to send.

use crate::commands::{self, Command};
use crate::idempotency::{self, Answer, Keyed};
use crate::problem::{FieldError, Problem};
use crate::refund;
use crate::reply::{
    failed, invalid, json, not_json, order_not_found, reply, too_large, unavailable, with_header, JSON,
};
pub use crate::reply::{problem, Reply};
use crate::request::{self, MAX_BODY_BYTES};
use crate::saga::{Outcome, Ports, Saga, SagaError};
use crate::view::history_view;
pub use crate::view::order_view;
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::auth::{Access, Caller};
use shared::domain::{Order, OrderId};
use shared::events::{published, OrderCancelledV1, OrderPlacedV2, PaymentRefundedV1, Published};
use shared::ports::{IdempotencyStore, Kind, StoreError};
use shared::telemetry::{Metrics, Unit};
use std::sync::Arc;
use tracing::Instrument;

pub use crate::idempotency::IDEMPOTENCY_TTL_SECONDS;

/// The service every metric of the checkout is published under.
pub const SERVICE: &str = "checkout";

/// A `POST /orders` as it arrived.
#[derive(Debug, Clone)]
pub struct PostOrder<'a> {
    /// Who places it, as the authorizer verified: the order's customer.
    pub caller: &'a Caller,
    pub content_type: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub body: &'a [u8],
    pub correlation_id: &'a str,
    pub now_ms: i64,
    /// Until when this invocation may run (the Lambda deadline): the idempotency lease.
    pub deadline_ms: i64,
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

/// Why the checkout refused an order: the problem type of its answer, and the `reason`
/// dimension of `OrdersRejected`. `None` for a placed order.
pub fn rejection_reason(outcome: &Outcome) -> Option<&'static str> {
    Some(match outcome {
        Outcome::Placed(_) => return None,
        Outcome::UnknownSkus(_) => "unknown-sku",
        Outcome::NotSoldIn(_) => "currency-not-offered",
        Outcome::Unpriceable(_) => "unpriceable",
        Outcome::OutOfStock(_) => "insufficient-stock",
        Outcome::Declined { .. } => "payment-declined",
        Outcome::Expired => "order-expired",
    })
}

/// The final answers, as stored for replay.
fn render(outcome: &Outcome) -> Reply {
    let reason = rejection_reason(outcome).unwrap_or_default();
    match outcome {
        Outcome::Placed(order) => order_summary(order),
        Outcome::UnknownSkus(skus) => {
            problem(Problem::new(422, reason, "Unknown product", "Some SKUs are not in the catalogue.").with_skus(skus))
        }
        Outcome::NotSoldIn(skus) => problem(
            Problem::new(
                422,
                reason,
                "Not sold in this currency",
                "Some SKUs are not priced in the requested currency.",
            )
            .with_skus(skus),
        ),
        Outcome::Unpriceable(why) => problem(Problem::new(422, reason, "Order cannot be priced", why.clone())),
        Outcome::OutOfStock(skus) => problem(
            Problem::new(409, reason, "Insufficient stock", "Not enough stock for some SKUs; nothing was reserved.")
                .with_skus(skus),
        ),
        Outcome::Declined { code } => problem(Problem::new(
            402,
            reason,
            "Payment declined",
            format!("The payment was declined ({code}). Nothing was charged and no stock is held."),
        )),
        Outcome::Expired => problem(Problem::new(
            409,
            reason,
            "Order expired",
            "This checkout was interrupted and not retried in time, so it was cancelled: nothing was charged \
             and no stock is held. Place the order again with a new Idempotency-Key.",
        )),
    }
}

pub struct Checkout {
    pub ports: Ports,
    pub idempotency: Arc<dyn IdempotencyStore>,
    /// Who the callers are (the staff scope).
    pub access: Access,
}

impl Checkout {
    /// What `CheckoutFunction` puts on the bus: an order placed (the saga), cancelled and
    /// refunded (the cancel command and its refund). tests/contracts.rs checks it against what
    /// the checkout publishes; the AsyncAPI document names the function the producer from it.
    pub const PUBLISHES: &[Published] =
        &[published::<OrderPlacedV2>(), published::<OrderCancelledV1>(), published::<PaymentRefundedV1>()];

    pub fn new(ports: Ports, idempotency: Arc<dyn IdempotencyStore>) -> Self {
        Self { ports, idempotency, access: Access::default() }
    }

    pub async fn post_order(&self, req: PostOrder<'_>) -> Reply {
        // Checks that change nothing and need no I/O come first; none of them is remembered.
        if req.body.len() > MAX_BODY_BYTES {
            return too_large(MAX_BODY_BYTES);
        }
        if !request::is_json(req.content_type) {
            return not_json("order");
        }
        let command = match request::parse(req.body, &req.caller.subject) {
            Ok(cmd) => cmd,
            Err(errors) => return invalid(errors),
        };
        let keyed = Keyed {
            scope: "checkout:POST /orders",
            caller: &req.caller.subject.0,
            key: req.idempotency_key,
            payload: command.canonical.as_bytes(),
            order_id: OrderId::new(),
            now_ms: req.now_ms,
            deadline_ms: req.deadline_ms,
        };
        let command = &command;
        idempotency::run(self.idempotency.as_ref(), keyed, |owned| {
            let span = tracing::info_span!("checkout", correlation_id = req.correlation_id, order_id = %owned.order_id);
            let saga = Saga::new(&self.ports, req.correlation_id);
            async move {
                let result = if owned.resumed {
                    saga.resume(owned.order_id, command).await
                } else {
                    saga.start(owned.order_id, command).await
                };
                checkout_metrics(&result, &saga).emit();
                checkout_answer(result)
            }
            .instrument(span)
        })
        .await
    }

    /// The order now, or as it was at `as_of` (RFC 3339) when given: the same fold either way.
    /// Only its customer and staff see it; to anyone else it does not exist.
    pub async fn get_order(&self, caller: &Caller, id: &str, as_of: Option<&str>) -> Reply {
        let as_of = match as_of.map(parse_instant).transpose() {
            Ok(as_of) => as_of,
            Err(e) => return invalid(vec![e]),
        };
        let Ok(order_id) = id.parse::<OrderId>() else { return order_not_found(id) };
        let order = match as_of {
            None => self.ports.orders.load(order_id).await,
            Some(at) => match self.ports.orders.history(order_id).await {
                Ok(history) => Order::as_of(order_id, &history, at).map_err(|e| StoreError::Corrupt(e.to_string())),
                Err(e) => Err(e),
            },
        };
        match order {
            Ok(Some(order)) if caller.may_see(&order.customer_id) => json(200, &order_view(&order)),
            Ok(_) => order_not_found(id),
            Err(e) => failed(e.kind(), &e.to_string()),
        }
    }

    /// The order's audit trail: every event, in version order. Seen as the order is.
    pub async fn history(&self, caller: &Caller, id: &str) -> Reply {
        let Ok(order_id) = id.parse::<OrderId>() else { return order_not_found(id) };
        // Folded only to learn whose order it is; an unfoldable history is corrupt, as in `load`.
        let read = self.ports.orders.history(order_id).await.and_then(|history| {
            let order = Order::replay(order_id, history.iter().map(|r| &r.event))
                .map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok((order, history))
        });
        match read {
            Ok((Some(order), history)) if caller.may_see(&order.customer_id) => {
                json(200, &history_view(order_id, &history))
            }
            Ok(_) => order_not_found(id),
            Err(e) => failed(e.kind(), &e.to_string()),
        }
    }

    /// The customer cancels a placed order before it ships: `Cancelled` (`order.cancelled`),
    /// then the refund (`Refunded`, `payment.refunded`). Takes no body.
    pub async fn cancel(&self, req: Command<'_>) -> Reply {
        let Ok(order_id) = req.order_id.parse::<OrderId>() else { return order_not_found(req.order_id) };
        let journal = self.ports.journal(req.correlation_id);
        let command = async {
            let order =
                commands::execute(&journal, order_id, |order| commands::cancel(order, req.caller, Utc::now())).await?;
            // Also when this request found the order already cancelled: it may be a retry
            // of one that stopped before the refund.
            refund::finish(&journal, self.ports.payments.as_ref(), order).await
        };
        let route = "checkout:POST /orders/{id}/cancel";
        commands::run(self.idempotency.as_ref(), route, &req, order_id, b"", command).await
    }
}

/// `asOf`: an RFC 3339 time, e.g. `2027-01-15T08:00:00Z`.
fn parse_instant(text: &str) -> Result<DateTime<Utc>, FieldError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| FieldError::new("query:asOf", "must be an RFC 3339 time, e.g. 2027-01-15T08:00:00Z"))
}

/// What one checkout attempt says: a final answer counts in `OrdersPlaced` or in
/// `OrdersRejected` by `reason` (both, zero included, so that each attempt is a data point of
/// both), and each step it ran in `SagaStepMilliseconds` by `step`. An attempt with no final
/// answer yet (the client retries) counts neither; replays of a stored answer never get here.
fn checkout_metrics(result: &Result<Outcome, SagaError>, saga: &Saga<'_>) -> Metrics {
    let mut metrics = Metrics::new(SERVICE);
    if let Ok(outcome) = result {
        match rejection_reason(outcome) {
            None => metrics.count("OrdersPlaced", 1.0).count("OrdersRejected", 0.0),
            Some(reason) => metrics.count("OrdersPlaced", 0.0).count_by("OrdersRejected", "reason", reason, 1.0),
        };
    }
    for (step, took) in saga.steps() {
        metrics.value_per("SagaStepMilliseconds", Unit::Milliseconds, "step", step.name(), took.as_secs_f64() * 1000.0);
    }
    metrics
}

/// The checkout's answer, and what becomes of its key.
fn checkout_answer(result: Result<Outcome, SagaError>) -> Answer {
    let err = match result {
        Ok(outcome) => {
            let answer = render(&outcome);
            tracing::info!(status = answer.status, "checkout answered");
            return Answer::Final(answer);
        }
        Err(err) => err,
    };
    tracing::warn!(error = %err, "checkout failed; the client may retry");
    let answer = match &err {
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
        SagaError::Unavailable { cause } | SagaError::Interrupted { cause } => unavailable(cause),
    };
    // Keep the key bound while an order may be open, so a retry resumes that order.
    if err.order_may_be_open() {
        Answer::Hold(answer)
    } else {
        Answer::Retry(answer)
    }
}
