//! The order commands after checkout: the customer's cancel, the warehouse's ship and deliver.
//!
//! Each command loads the order, decides from its state alone which single event to append
//! (or that there is nothing to do, or that the state forbids it), and appends that event as
//! the next version. When a concurrent command took that version first, it reloads and decides
//! again, so it ends cleanly: done, or refused with the order's new status (409).
//!
//! Every command is idempotent by state, not only by key: a command whose effect is already
//! there (cancelled by the customer, shipped with this very shipment, delivered) answers as the
//! first did and appends nothing. So a retry after a lost answer, under any key, gets the same
//! answer, and a crash anywhere is cured by running the command again.

use crate::idempotency::{self, Answer, Keyed};
use crate::journal::{Appended, Journal};
use crate::problem::Problem;
use crate::reply::{failed, json, order_not_found, problem, with_header, Reply};
use chrono::{DateTime, Utc};
use shared::auth::Caller;
use shared::domain::{CancelReason, Order, OrderEvent, OrderId, OrderStatus as S, Shipment};
use shared::ports::{ErrorKind, IdempotencyStore, Kind};
use std::future::Future;

/// Decisions per command: each extra one follows a concurrent command's append, which moves
/// the order towards a state where the decision is final; a handful is plenty.
pub const DECISIONS: usize = 5;

/// A command request as it arrived, whatever its route.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    /// Who sends it, as the authorizer verified.
    pub caller: &'a Caller,
    /// The `{id}` of the path, unchecked.
    pub order_id: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
    pub correlation_id: &'a str,
    pub now_ms: i64,
    /// The Lambda deadline: the idempotency key's lease.
    pub deadline_ms: i64,
}

/// Why a command (or the refund) did not reach its end. Each variant says what the caller
/// should do; [`run`] turns them into answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("no such order")]
    NotFound,
    /// The order's state forbids the command. `retry_later` when a later state may allow it
    /// (the checkout still running, an order not shipped yet); otherwise it never will.
    #[error("{why} (order is {status:?})")]
    Refused { status: S, retry_later: bool, why: &'static str },
    /// Concurrent commands took every version this one tried to append; nothing was
    /// appended by this one. Trying again decides afresh.
    #[error("the order kept changing under concurrent commands")]
    Contended,
    /// The gateway refused the refund (no charge under the key, a wrong amount): retrying
    /// cannot help; the order stays refund-pending for an operator.
    #[error("refund refused by the gateway: {code}")]
    RefundRefused { code: String },
    /// A dependency failed; `kind` says whether trying again may help.
    #[error("{cause}")]
    Failed { kind: ErrorKind, cause: String },
}

impl CommandError {
    pub fn failed(e: impl Kind + std::fmt::Display) -> CommandError {
        CommandError::Failed { kind: e.kind(), cause: e.to_string() }
    }
}

/// What a command asks of an order in its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Append(OrderEvent),
    /// The order is not the caller's to command: answered as if it did not exist, so that
    /// nobody learns which order IDs exist by trying them.
    NotFound,
    /// The order already is as the command wants: a repeat, nothing to append.
    Done,
    Refuse {
        retry_later: bool,
        why: &'static str,
    },
}

/// The customer's cancel, by the customer who placed the order (not even staff cancel in a
/// customer's name): only a placed order, not shipped yet. Refunding follows
/// (`refund::finish`), after the cancellation has won against any concurrent shipment.
pub fn cancel(order: &Order, by: &Caller, at: DateTime<Utc>) -> Decision {
    if !by.owns(&order.customer_id) {
        return Decision::NotFound;
    }
    let customer = order.cancel_reason.as_ref().is_some_and(CancelReason::after_placement);
    match order.status {
        S::Placed => Decision::Append(OrderEvent::Cancelled { reason: CancelReason::CustomerRequested, at }),
        S::Cancelled if customer => Decision::Done,
        S::PendingPayment => {
            Decision::Refuse { retry_later: true, why: "The checkout of this order is still running; retry later." }
        }
        S::Cancelled => Decision::Refuse {
            retry_later: false,
            why: "The checkout of this order never completed, so nothing was charged; there is nothing to cancel.",
        },
        S::Shipped | S::Delivered => {
            Decision::Refuse { retry_later: false, why: "The order has shipped and can no longer be cancelled." }
        }
    }
}

/// The warehouse's shipment: a placed order gets one shipment, for good.
pub fn ship(order: &Order, shipment: &Shipment, at: DateTime<Utc>) -> Decision {
    match order.status {
        S::Placed => Decision::Append(OrderEvent::Shipped { shipment: shipment.clone(), at }),
        S::Shipped | S::Delivered if order.shipment.as_ref() == Some(shipment) => Decision::Done,
        S::Shipped | S::Delivered => {
            Decision::Refuse { retry_later: false, why: "The order has already shipped with another shipment." }
        }
        S::PendingPayment => {
            Decision::Refuse { retry_later: true, why: "The order is not paid yet; ship it once it is placed." }
        }
        S::Cancelled => Decision::Refuse { retry_later: false, why: "The order is cancelled; do not ship it." },
    }
}

/// The carrier's delivery report: only a shipped order.
pub fn deliver(order: &Order, at: DateTime<Utc>) -> Decision {
    match order.status {
        S::Shipped => Decision::Append(OrderEvent::Delivered { at }),
        S::Delivered => Decision::Done,
        S::PendingPayment | S::Placed => {
            Decision::Refuse { retry_later: true, why: "The order has not shipped yet; it cannot be delivered." }
        }
        S::Cancelled => Decision::Refuse { retry_later: false, why: "The order is cancelled; it was never shipped." },
    }
}

/// Loads the order and appends what `decide` asks, deciding again after each concurrent append.
pub async fn execute(
    journal: &Journal<'_>,
    order_id: OrderId,
    decide: impl Fn(&Order) -> Decision,
) -> Result<Order, CommandError> {
    for _ in 0..DECISIONS {
        let order = journal.load(order_id).await?;
        match decide(&order) {
            Decision::Done => return Ok(order),
            Decision::NotFound => return Err(CommandError::NotFound),
            Decision::Refuse { retry_later, why } => {
                return Err(CommandError::Refused { status: order.status, retry_later, why })
            }
            Decision::Append(event) => match journal.append(&order, event).await? {
                Appended::Now(order) => return Ok(*order),
                Appended::Taken => {
                    tracing::info!(order_id = %order_id, "a concurrent command appended first; deciding again")
                }
            },
        }
    }
    Err(CommandError::Contended)
}

/// A command's route under its key: `route` names the service and route, `{id}` standing for
/// the order (`checkout:POST /orders/{id}/cancel`); `payload` is the canonical body. Runs
/// `command` for the order once the key is claimed, and answers with the order or the problem.
pub async fn run<Fut>(
    keys: &dyn IdempotencyStore,
    route: &str,
    request: &Command<'_>,
    order_id: OrderId,
    payload: &[u8],
    command: Fut,
) -> Reply
where
    Fut: Future<Output = Result<Order, CommandError>>,
{
    let scope = route.replace("{id}", &order_id.to_string());
    let keyed = Keyed {
        scope: &scope,
        caller: &request.caller.subject.0,
        key: request.idempotency_key,
        payload,
        order_id,
        now_ms: request.now_ms,
        deadline_ms: request.deadline_ms,
    };
    idempotency::run(keys, keyed, |_| async move { answer(request.order_id, command.await) }).await
}

/// The answer to a command, and whether it is final (stored for replay) or may change.
fn answer(id: &str, result: Result<Order, CommandError>) -> Answer {
    match result {
        Ok(order) => Answer::Final(json(200, &crate::view::order_view(&order))),
        Err(CommandError::Refused { status, retry_later, why }) => {
            tracing::info!(status = status.as_str(), why, "command refused by the order's state");
            if retry_later {
                let refused = Problem::new(409, "order-not-ready", "Order not ready", why).with_order_status(status);
                Answer::Retry(with_header(problem(refused), "retry-after", "10"))
            } else {
                let refused = Problem::new(409, "order-state-conflict", "Not allowed in the order's state", why);
                Answer::Final(problem(refused.with_order_status(status)))
            }
        }
        // Not remembered, like every answer that changed nothing: the same request again
        // simply looks again.
        Err(CommandError::NotFound) => Answer::Retry(order_not_found(id)),
        Err(CommandError::Contended) => Answer::Retry(with_header(
            problem(Problem::new(
                409,
                "concurrent-modification",
                "Order changed concurrently",
                "Other changes to this order kept arriving at the same moment; retry with the same Idempotency-Key.",
            )),
            "retry-after",
            "1",
        )),
        Err(CommandError::RefundRefused { code }) => {
            tracing::error!(code, "the gateway refused the refund of a cancelled order; it needs an operator");
            Answer::Retry(problem(Problem::new(
                502,
                "refund-refused",
                "Refund refused",
                "The order is cancelled but the payment gateway refused its refund; support has to look at it.",
            )))
        }
        Err(CommandError::Failed { kind, cause }) => Answer::Retry(failed(kind, &cause)),
    }
}
