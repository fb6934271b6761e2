//! `Idempotency-Key` for every POST of the API, with Stripe's semantics, in one place: the
//! first request with a key runs and its final answer is stored; the same request again gets
//! that answer with `idempotent-replayed: true`; one arriving while the first still runs gets
//! 409; the key with another payload gets 422. `POST /orders` and every order command go
//! through [`run`], so they cannot drift apart.
//!
//! A key is scoped by its service and route, the order ID filled in
//! (`checkout:POST /orders/01J…/cancel`), and by its caller (as Stripe scopes keys by
//! account): the same key sent to another route, for another order or by another customer
//! is another key, never a replay of an unrelated answer, let alone of someone else's.

use crate::problem::Problem;
use crate::reply::{invalid, problem, unavailable, with_header, Reply};
use crate::request;
use sha2::{Digest, Sha256};
use shared::domain::OrderId;
use shared::ports::{Claim, ClaimRequest, IdempotencyStore};
use std::future::Future;

/// How long a key is remembered (Stripe keeps keys 24 hours).
pub const IDEMPOTENCY_TTL_SECONDS: i64 = 24 * 60 * 60;

/// One request under a key.
#[derive(Debug, Clone, Copy)]
pub struct Keyed<'a> {
    /// The service and route, order ID filled in: `checkout:POST /orders`.
    pub scope: &'a str,
    /// Who sends it: the token's subject (never contains `:`, so scopes cannot collide).
    pub caller: &'a str,
    /// The `Idempotency-Key` header as sent (validated here).
    pub key: Option<&'a str>,
    /// What "the same request" means: its canonical payload.
    pub payload: &'a [u8],
    /// The order the key is bound to if it is new.
    pub order_id: OrderId,
    pub now_ms: i64,
    /// Until when this invocation may run (the Lambda deadline): the key's lease.
    pub deadline_ms: i64,
}

/// The attempt that owns the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owned {
    /// The order bound to the key: the one given if the key was new, else the first attempt's.
    pub order_id: OrderId,
    /// An earlier attempt with this key stopped without a final answer; this one took over.
    pub resumed: bool,
}

/// What the attempt that owned the key came to, and so what becomes of the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A final answer: stored and replayed to every later request with the key.
    Final(Reply),
    /// Not final, and running again from scratch is safe: the key is released at once.
    Retry(Reply),
    /// Not final, and the key must stay bound to its order until the lease lapses, so that a
    /// retry resumes that order instead of starting another.
    Hold(Reply),
}

/// Validates the key, claims it, and either answers from what is stored or runs `attempt`.
pub async fn run<F, Fut>(store: &dyn IdempotencyStore, request: Keyed<'_>, attempt: F) -> Reply
where
    F: FnOnce(Owned) -> Fut,
    Fut: Future<Output = Answer>,
{
    let key = match request::idempotency_key(request.key) {
        Ok(key) => key,
        Err(e) => return invalid(vec![e]),
    };
    let scoped_key = record_id(request.scope, request.caller, &key);
    let attempt_id = ulid::Ulid::new().to_string();
    let claim = ClaimRequest {
        key: scoped_key.clone(),
        payload_hash: hex::encode(Sha256::digest(request.payload)),
        order_id: request.order_id,
        attempt: attempt_id.clone(),
        now_ms: request.now_ms,
        lease_until_ms: request.deadline_ms,
        expires_at: request.now_ms / 1000 + IDEMPOTENCY_TTL_SECONDS,
    };
    let owned = match store.claim(&claim).await {
        Ok(Claim::Started { order_id }) => Owned { order_id, resumed: false },
        Ok(Claim::TakenOver { order_id }) => Owned { order_id, resumed: true },
        Ok(Claim::Replay(stored)) => {
            replayed(request.scope);
            return with_header(stored, "idempotent-replayed", "true");
        }
        Ok(Claim::InProgress) => return in_progress(),
        Ok(Claim::PayloadMismatch) => return key_reused(),
        Err(e) => return unavailable(&e.to_string()),
    };
    match attempt(owned).await {
        Answer::Final(answer) => {
            if let Err(e) = store.complete(&scoped_key, &attempt_id, &answer).await {
                // The lease will lapse and a retry will run again, which every route makes
                // safe (the checkout resumes its order; a command finds it done): still correct.
                tracing::warn!(error = %e, "could not store the response for replay");
            }
            answer
        }
        Answer::Retry(answer) => {
            if let Err(e) = store.release(&scoped_key, &attempt_id).await {
                tracing::warn!(error = %e, "could not release the idempotency key; it frees when its lease lapses");
            }
            answer
        }
        Answer::Hold(answer) => answer,
    }
}

/// Counts a replay (`IdempotentReplays`) under the service that owns the route: the part of
/// the scope before its first `:` (`checkout`, `fulfilment`).
fn replayed(scope: &str) {
    let service = scope.split_once(':').map_or(scope, |(service, _)| service);
    shared::telemetry::metric(service, "IdempotentReplays", shared::telemetry::Unit::Count, 1.0);
}

/// The stored record's ID of `key` sent by `caller` to `scope`: `checkout:POST /orders:cust-ada:k1`.
pub fn record_id(scope: &str, caller: &str, key: &str) -> String {
    format!("{scope}:{caller}:{key}")
}

fn in_progress() -> Reply {
    with_header(
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

fn key_reused() -> Reply {
    problem(Problem::new(
        422,
        "idempotency-key-reused",
        "Idempotency-Key reused",
        "This Idempotency-Key was used with a different request body.",
    ))
}
