//! The building blocks of every HTTP answer: JSON bodies, RFC 9457 problems, and the headers
//! that tell a client what to do next. One place, so that the same situation is answered the
//! same way by every route.

use crate::problem::{FieldError, Problem};
pub use shared::http::{json, problem, reply, with_header, Reply, JSON};
use shared::ports::ErrorKind;

/// 400: the request itself is wrong; `errors` says where. Never remembered under a key.
pub fn invalid(errors: Vec<FieldError>) -> Reply {
    problem(
        Problem::new(400, "invalid-request", "Invalid request", "The request has invalid fields; see errors.")
            .with_errors(errors),
    )
}

/// 404 for an order ID that names no order (malformed IDs included: they name none either).
pub fn order_not_found(id: &str) -> Reply {
    problem(Problem::new(404, "order-not-found", "Order not found", format!("No order {id}.")))
}

/// 413 for a body over `limit` bytes, before it is parsed.
pub fn too_large(limit: usize) -> Reply {
    problem(Problem::new(413, "body-too-large", "Body too large", format!("The body must be at most {limit} bytes.")))
}

/// 415 for a body that is not JSON.
pub fn not_json(what: &str) -> Reply {
    problem(Problem::new(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        format!("Send the {what} as application/json."),
    ))
}

/// A dependency failed, answered as its kind says: 503 when trying again may help, 500 when
/// it cannot (a corrupt item, a request the service will always refuse).
pub fn failed(kind: ErrorKind, cause: &str) -> Reply {
    match kind {
        ErrorKind::Transient | ErrorKind::Conflict => unavailable(cause),
        ErrorKind::Permanent | ErrorKind::Rejected => {
            tracing::error!(kind = kind.name(), cause, "failed for good");
            problem(Problem::new(500, "internal-error", "Internal error", "The request could not be completed."))
        }
    }
}

/// 503: a dependency failed and nothing final happened; the same request again is safe.
pub fn unavailable(cause: &str) -> Reply {
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
