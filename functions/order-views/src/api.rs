//! `GET /customers/{customerId}/orders?limit=&cursor=` (API Gateway HTTP API, payload v2): the
//! customer's orders, newest first, from the views alone: this function never reads the event
//! store. Answers `{"orders": [...], "nextCursor": "..." | null}`; errors are RFC 9457 problem
//! details. A customer reads only their own list; staff read anyone's; to anyone else the list
//! does not exist (404), so that nobody learns which customer IDs exist by trying them.

use crate::cursor;
use crate::ports::CustomerViews;
use crate::view::{timestamp, View};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use serde_json::{json, Value};
use shared::auth::{Access, Caller};
use shared::domain::CustomerId;
use shared::http::{self, Problem, Reply};
use shared::ports::{ErrorKind, Kind};

/// The views table's adapter is the API's store.
pub type Views = crate::dynamo::DynamoViews;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;
/// As long as a token's subject may be: a longer one names no customer.
pub const MAX_CUSTOMER_ID_LEN: usize = shared::auth::MAX_SUBJECT_LEN;

pub const ROUTES: &[&str] = &["GET /customers/{customerId}/orders"];

fn query<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.query_string_parameters_ref().and_then(|q| q.first(name))
}

/// `limit`: absent means the default; anything but an integer in 1..=100 is refused, never
/// clamped, so that a client learns its request was not what it meant.
fn limit_of(req: &Request) -> Result<usize, Reply> {
    let Some(raw) = query(req, "limit") else { return Ok(DEFAULT_LIMIT) };
    raw.parse::<usize>().ok().filter(|n| (1..=MAX_LIMIT).contains(n)).ok_or_else(|| {
        Problem::new(400, "invalid-limit", "Invalid limit", "limit is a whole number from 1 to 100.").reply()
    })
}

fn row(view: &View) -> Value {
    json!({
        "orderId": view.order_id,
        "status": view.status.as_str(),
        "total": view.total,
        "currency": view.currency,
        "openedAt": timestamp(view.opened_at),
        "updatedAt": timestamp(view.updated_at),
        "version": view.version,
    })
}

async fn answer<Q: CustomerViews + ?Sized>(views: &Q, caller: &Caller, req: &Request) -> Reply {
    let Some(customer) = http::route(req, ROUTES).and_then(|m| m.param("customerId").map(str::to_owned)) else {
        return http::no_route(req, ROUTES);
    };
    if customer.len() > MAX_CUSTOMER_ID_LEN || customer.chars().any(char::is_control) {
        return Problem::new(
            400,
            "invalid-customer",
            "Invalid customer ID",
            "A customer ID is 1 to 128 printable characters.",
        )
        .reply();
    }
    let customer = CustomerId(customer);
    if !caller.may_see(&customer) {
        let detail = "No such customer among those you may see.";
        return Problem::new(404, "customer-not-found", "Customer not found", detail).reply();
    }
    let limit = match limit_of(req) {
        Ok(limit) => limit,
        Err(answer) => return answer,
    };
    let after = match query(req, "cursor").map(|c| cursor::decode(c, &customer)).transpose() {
        Ok(after) => after,
        Err(e) => {
            return Problem::new(
                400,
                "invalid-cursor",
                "Invalid cursor",
                format!("{e}: use nextCursor as it was returned."),
            )
            .reply()
        }
    };
    match views.page(&customer, limit, after.as_ref()).await {
        Ok(page) => http::json(
            200,
            &json!({
                "orders": page.views.iter().map(row).collect::<Vec<_>>(),
                "nextCursor": page.next.as_ref().map(cursor::encode),
            }),
        ),
        Err(error) => {
            tracing::error!(%error, error_kind = error.kind().name(), customer_id = %customer, "order views could not be read");
            match error.kind() {
                ErrorKind::Transient | ErrorKind::Conflict => {
                    let unavailable = Problem::new(
                        503,
                        "unavailable",
                        "Orders unavailable",
                        "The orders could not be read; try again shortly.",
                    );
                    http::with_header(unavailable.reply(), "retry-after", "5")
                }
                // A stored view that cannot be read: retrying will not help, rebuilding will.
                ErrorKind::Permanent | ErrorKind::Rejected => {
                    Problem::new(500, "internal", "Internal error", "The orders could not be read.").reply()
                }
            }
        }
    }
}

pub async fn handle<Q: CustomerViews + ?Sized>(
    views: &Q,
    access: &Access,
    req: Request,
) -> Result<Response<Body>, Error> {
    let answer = match access.caller(&req) {
        Ok(caller) => answer(views, &caller, &req).await,
        Err(refused) => refused,
    };
    http::respond(answer, &http::correlation_id(&req))
}
