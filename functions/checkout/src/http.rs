//! Lambda glue: API Gateway v2 request → `service` → response.

use crate::problem::Problem;
use crate::service::{problem, Checkout, PostOrder, Reply};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Error, Request, RequestExt, Response};

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The route that API Gateway matched (e.g. `POST /orders`), or one derived from the request
/// when the event carries none.
fn route_key(req: &Request) -> String {
    if let Some(RequestContext::ApiGatewayV2(ctx)) = req.request_context_ref() {
        if let Some(key) = ctx.route_key.as_deref().filter(|k| *k != "$default") {
            return key.to_owned();
        }
    }
    let path = req.raw_http_path();
    let template = if path.trim_end_matches('/') == "/orders" {
        "/orders"
    } else if path.starts_with("/orders/") {
        "/orders/{id}"
    } else {
        path
    };
    format!("{} {}", req.method(), template)
}

pub async fn handle(checkout: &Checkout, req: Request) -> Result<Response<Body>, Error> {
    let correlation_id = shared::telemetry::correlation_id(header(&req, "x-correlation-id"));
    let now_ms = chrono::Utc::now().timestamp_millis();
    let deadline_ms =
        req.lambda_context_ref().map(|ctx| ctx.deadline as i64).filter(|d| *d > now_ms).unwrap_or(now_ms + 30_000);
    let reply = match route_key(&req).as_str() {
        "POST /orders" => {
            let body: &[u8] = req.body().as_ref();
            checkout
                .post_order(PostOrder {
                    content_type: header(&req, "content-type"),
                    idempotency_key: header(&req, "idempotency-key"),
                    body,
                    correlation_id: &correlation_id,
                    now_ms,
                    deadline_ms,
                })
                .await
        }
        "GET /orders/{id}" => {
            let params = req.path_parameters();
            let id = params
                .first("id")
                .map(str::to_owned)
                .unwrap_or_else(|| req.raw_http_path().trim_start_matches("/orders/").to_owned());
            checkout.get_order(&id).await
        }
        other => {
            let allowed = matches!(*req.method(), Method::POST | Method::GET);
            let (status, slug) = if allowed { (404, "not-found") } else { (405, "method-not-allowed") };
            problem(Problem::new(status, slug, "No such route", format!("{other} is not a route of this API.")))
        }
    };
    Ok(to_response(reply, &correlation_id))
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
