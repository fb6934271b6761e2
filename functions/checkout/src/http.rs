//! Lambda glue: API Gateway v2 request → the operation of its route → response. Two entry
//! points, one per Lambda: [`handle`] for the customer's routes, [`handle_staff`] for the
//! warehouse's, so that each function answers only its own routes.

use crate::commands::Command;
use crate::problem::Problem;
use crate::reply::{problem, Reply};
use crate::{Checkout, Fulfilment};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// What every route reads from a request besides its own fields.
struct Incoming {
    /// The route API Gateway matched (`POST /orders/{id}/cancel`).
    route: String,
    /// The `{id}` of the path, if the route has one.
    order_id: Option<String>,
    correlation_id: String,
    now_ms: i64,
    /// Until when this invocation may run: the Lambda deadline, else 30 s from now.
    deadline_ms: i64,
}

impl Incoming {
    fn of(req: &Request) -> Incoming {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let deadline = req.lambda_context_ref().map(|ctx| ctx.deadline as i64).filter(|d| *d > now_ms);
        let (route, path_id) = route_key(req);
        let order_id = req.path_parameters().first("id").map(str::to_owned).or(path_id);
        Incoming {
            route,
            order_id,
            correlation_id: shared::telemetry::correlation_id(header(req, "x-correlation-id")),
            now_ms,
            deadline_ms: deadline.unwrap_or(now_ms + 30_000),
        }
    }

    fn id(&self) -> &str {
        self.order_id.as_deref().unwrap_or_default()
    }

    fn command<'a>(&'a self, req: &'a Request) -> Command<'a> {
        Command {
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

/// The route that API Gateway matched, or one derived from the path when the event carries
/// none (a hand-written event, the `$default` route), with the path's order ID.
fn route_key(req: &Request) -> (String, Option<String>) {
    let path = req.raw_http_path();
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (template, id) = match segments.as_slice() {
        ["orders"] => ("/orders".to_owned(), None),
        ["orders", id] => ("/orders/{id}".to_owned(), Some(id.to_string())),
        ["orders", id, tail] => (format!("/orders/{{id}}/{tail}"), Some(id.to_string())),
        _ => (path.to_owned(), None),
    };
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(key) = ctx.route_key.as_deref().filter(|k| *k != "$default") {
            return (key.to_owned(), id);
        }
    }
    (format!("{} {}", req.method(), template), id)
}

/// The customer's routes.
pub async fn handle(checkout: &Checkout, req: Request) -> Result<Response<Body>, Error> {
    let incoming = Incoming::of(&req);
    let reply = match incoming.route.as_str() {
        "POST /orders" => {
            checkout
                .post_order(crate::service::PostOrder {
                    content_type: header(&req, "content-type"),
                    idempotency_key: header(&req, "idempotency-key"),
                    body: req.body().as_ref(),
                    correlation_id: &incoming.correlation_id,
                    now_ms: incoming.now_ms,
                    deadline_ms: incoming.deadline_ms,
                })
                .await
        }
        "GET /orders/{id}" => {
            let params = req.query_string_parameters();
            checkout.get_order(incoming.id(), params.first("asOf")).await
        }
        "GET /orders/{id}/events" => checkout.history(incoming.id()).await,
        "POST /orders/{id}/cancel" => checkout.cancel(incoming.command(&req)).await,
        other => no_route(&req, other),
    };
    Ok(to_response(reply, &incoming.correlation_id))
}

/// The warehouse's routes (the security work puts them behind a staff scope).
pub async fn handle_staff(fulfilment: &Fulfilment, req: Request) -> Result<Response<Body>, Error> {
    let incoming = Incoming::of(&req);
    let reply = match incoming.route.as_str() {
        "POST /orders/{id}/shipments" => fulfilment.ship(incoming.command(&req)).await,
        "POST /orders/{id}/delivery" => fulfilment.deliver(incoming.command(&req)).await,
        other => no_route(&req, other),
    };
    Ok(to_response(reply, &incoming.correlation_id))
}

fn no_route(req: &Request, route: &str) -> Reply {
    let allowed = matches!(*req.method(), Method::POST | Method::GET);
    let (status, slug) = if allowed { (404, "not-found") } else { (405, "method-not-allowed") };
    problem(Problem::new(status, slug, "No such route", format!("{route} is not a route of this API.")))
}

fn to_response(reply: Reply, correlation_id: &str) -> Response<Body> {
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    let mut response = response.body(Body::Text(reply.body)).expect("status and headers are valid");
    if let Ok(v) = HeaderValue::from_str(correlation_id) {
        response.headers_mut().insert("x-correlation-id", v);
    }
    response
}
