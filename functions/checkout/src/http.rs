//! Lambda glue: API Gateway v2 request → the operation of its route → response. Two entry
//! points, one per Lambda: [`handle`] for the customer's routes, [`handle_staff`] for the
//! warehouse's, so that each function answers only its own routes.

use crate::commands::Command;
use crate::{Checkout, Fulfilment};
use lambda_http::{Body, Error, Request, RequestExt, Response};
use shared::auth::{self, Caller};
use shared::http::{self, Matched};

/// The customer's routes, served by the `checkout` function.
pub const CUSTOMER_ROUTES: &[&str] =
    &["POST /orders", "GET /orders/{id}", "GET /orders/{id}/events", "POST /orders/{id}/cancel"];
/// The warehouse's routes, served by the `fulfilment` function.
pub const STAFF_ROUTES: &[&str] = &["POST /orders/{id}/shipments", "POST /orders/{id}/delivery"];

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// What every route reads from a request besides its own fields.
struct Incoming {
    /// The `{id}` of the path, if the route has one.
    order_id: Option<String>,
    correlation_id: String,
    now_ms: i64,
    /// Until when this invocation may run: the Lambda deadline, else 30 s from now.
    deadline_ms: i64,
}

impl Incoming {
    fn of(req: &Request, matched: Option<&Matched>) -> Incoming {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let deadline = req.lambda_context_ref().map(|ctx| ctx.deadline as i64).filter(|d| *d > now_ms);
        Incoming {
            order_id: matched.and_then(|m| m.param("id")).map(str::to_owned),
            correlation_id: http::correlation_id(req),
            now_ms,
            deadline_ms: deadline.unwrap_or(now_ms + 30_000),
        }
    }

    fn id(&self) -> &str {
        self.order_id.as_deref().unwrap_or_default()
    }

    fn command<'a>(&'a self, caller: &'a Caller, req: &'a Request) -> Command<'a> {
        Command {
            caller,
            order_id: self.id(),
            idempotency_key: header(req, "idempotency-key"),
            content_type: header(req, "content-type"),
            body: req.body().as_ref(),
            correlation_id: &self.correlation_id,
            now_ms: self.now_ms,
            deadline_ms: self.deadline_ms,
        }
    }
}

/// The customer's routes, for a signed-in caller.
pub async fn handle(checkout: &Checkout, req: Request) -> Result<Response<Body>, Error> {
    let matched = http::route(&req, CUSTOMER_ROUTES);
    let incoming = Incoming::of(&req, matched.as_ref());
    let caller = match checkout.access.caller(&req) {
        Ok(caller) => caller,
        Err(refused) => return http::respond(refused, &incoming.correlation_id),
    };
    let reply = match matched.as_ref().map(|m| m.route) {
        Some("POST /orders") => {
            checkout
                .post_order(crate::service::PostOrder {
                    caller: &caller,
                    content_type: header(&req, "content-type"),
                    idempotency_key: header(&req, "idempotency-key"),
                    body: req.body().as_ref(),
                    correlation_id: &incoming.correlation_id,
                    now_ms: incoming.now_ms,
                    deadline_ms: incoming.deadline_ms,
                })
                .await
        }
        Some("GET /orders/{id}") => {
            let params = req.query_string_parameters();
            checkout.get_order(&caller, incoming.id(), params.first("asOf")).await
        }
        Some("GET /orders/{id}/events") => checkout.history(&caller, incoming.id()).await,
        Some("POST /orders/{id}/cancel") => checkout.cancel(incoming.command(&caller, &req)).await,
        _ => http::no_route(&req, CUSTOMER_ROUTES),
    };
    http::respond(reply, &incoming.correlation_id)
}

/// The warehouse's routes, for staff only: the authorizer requires the staff scope on them,
/// and this checks it again, so that a route deployed without the scope stays closed.
pub async fn handle_staff(fulfilment: &Fulfilment, req: Request) -> Result<Response<Body>, Error> {
    let matched = http::route(&req, STAFF_ROUTES);
    let incoming = Incoming::of(&req, matched.as_ref());
    let caller = match fulfilment.access.caller(&req) {
        Ok(caller) if caller.staff => caller,
        Ok(_) => return http::respond(auth::staff_only(), &incoming.correlation_id),
        Err(refused) => return http::respond(refused, &incoming.correlation_id),
    };
    let reply = match matched.as_ref().map(|m| m.route) {
        Some("POST /orders/{id}/shipments") => fulfilment.ship(incoming.command(&caller, &req)).await,
        Some("POST /orders/{id}/delivery") => fulfilment.deliver(incoming.command(&caller, &req)).await,
        _ => http::no_route(&req, STAFF_ROUTES),
    };
    http::respond(reply, &incoming.correlation_id)
}
