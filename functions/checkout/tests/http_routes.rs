//! The two Lambdas' routing, through the real Lambda types: API Gateway v2 events built from
//! `aws_lambda_events`' own struct, as API Gateway would send them. Each function answers its
//! own routes only, so that the staff routes can sit behind a staff scope.

mod common;

use common::*;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest};
use lambda_http::http::{HeaderValue, Method};
use lambda_http::{Body, Request, Response};
use serde_json::Value;
use shared::domain::{OrderId, OrderStatus};
use shared::testing::verified_token;

/// As `event_by`, with the token of the customer who places the world's orders.
fn event(route_key: &str, path: &str, query: &str, body: Option<&str>) -> Request {
    event_by(Some(verified_token("cust-1", &[])), route_key, path, query, body)
}

/// As `event_by`, with a staff member's token.
fn staff_event(route_key: &str, path: &str, query: &str, body: Option<&str>) -> Request {
    event_by(Some(verified_token("staff-sam", &["shop/staff"])), route_key, path, query, body)
}

/// An HTTP API (payload 2.0) request for `route_key` (`$default` when API Gateway matched no
/// declared route), at `path`, with an Idempotency-Key and the order's `{id}` when it has one,
/// and `authorizer` as the JWT authorizer passes it (None: a route without the authorizer).
fn event_by(
    authorizer: Option<ApiGatewayRequestAuthorizer>,
    route_key: &str,
    path: &str,
    query: &str,
    body: Option<&str>,
) -> Request {
    let (method, _) = route_key.split_once(' ').unwrap_or(("POST", ""));
    let mut e = ApiGatewayV2httpRequest::default();
    e.version = Some("2.0".into());
    e.route_key = Some(route_key.into());
    e.raw_path = Some(path.into());
    e.raw_query_string = Some(query.into());
    e.query_string_parameters =
        form_pairs(query).into_iter().collect::<std::collections::HashMap<String, String>>().into();
    if route_key.contains("{id}") {
        let id = path.split('/').nth(2).unwrap_or_default();
        e.path_parameters.insert("id".into(), id.into());
    }
    e.headers.insert("idempotency-key", HeaderValue::from_static("http-key-1"));
    e.headers.insert("content-type", HeaderValue::from_static("application/json"));
    e.headers.insert("x-correlation-id", HeaderValue::from_static("corr-http"));
    e.body = body.map(str::to_owned);
    e.request_context.route_key = Some(route_key.into());
    e.request_context.http.method = method.parse().unwrap_or(Method::GET);
    e.request_context.http.path = Some(path.into());
    e.request_context.stage = Some("$default".into());
    e.request_context.authorizer = authorizer;
    let text = serde_json::to_string(&e).unwrap();
    lambda_http::request::from_str(&text).unwrap_or_else(|err| panic!("{err}: {text}"))
}

fn form_pairs(query: &str) -> Vec<(String, String)> {
    query.split('&').filter_map(|p| p.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

fn answer(response: Response<Body>) -> (u16, Value) {
    let status = response.status().as_u16();
    match response.body() {
        Body::Text(text) => (status, serde_json::from_str(text).unwrap()),
        other => panic!("expected a text body, got {other:?}"),
    }
}

async fn customer(w: &World, req: Request) -> (u16, Value) {
    answer(checkout::http::handle(&w.checkout, req).await.unwrap())
}

async fn staff(w: &World, req: Request) -> (u16, Value) {
    answer(checkout::http::handle_staff(&w.fulfilment, req).await.unwrap())
}

#[tokio::test]
async fn the_customer_function_cancels_through_its_route_under_the_requests_correlation_id() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let req = event("POST /orders/{id}/cancel", &format!("/orders/{id}/cancel"), "", None);
    let response = checkout::http::handle(&w.checkout, req).await.unwrap();
    assert_eq!(response.headers().get("x-correlation-id").unwrap(), "corr-http");
    let (status, body) = answer(response);
    assert_eq!((status, body["status"].as_str()), (200, Some("CANCELLED")), "{body}");
    assert_eq!(w.history(id).await[2].correlation_id, "corr-http");
}

#[tokio::test]
async fn the_customer_function_serves_the_history_and_the_order_as_of_a_time() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let (status, trail) =
        customer(&w, event("GET /orders/{id}/events", &format!("/orders/{id}/events"), "", None)).await;
    assert_eq!((status, trail["events"].as_array().map(Vec::len)), (200, Some(2)));
    let later = (chrono::Utc::now() + chrono::Duration::minutes(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let query = format!("asOf={later}");
    let (status, view) = customer(&w, event("GET /orders/{id}", &format!("/orders/{id}"), &query, None)).await;
    assert_eq!((status, view["status"].as_str()), (200, Some("PLACED")));
    let (status, problem) = customer(&w, event("GET /orders/{id}", &format!("/orders/{id}"), "asOf=soon", None)).await;
    assert_eq!((status, problem["errors"][0]["pointer"].as_str()), (400, Some("query:asOf")));
}

#[tokio::test]
async fn the_staff_function_ships_and_delivers_through_its_routes() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let body = r#"{"carrier":"UPS","trackingId":"1Z999"}"#;
    let (status, shipped) =
        staff(&w, staff_event("POST /orders/{id}/shipments", &format!("/orders/{id}/shipments"), "", Some(body))).await;
    assert_eq!((status, shipped["status"].as_str()), (200, Some("SHIPPED")), "{shipped}");
    let (status, delivered) =
        staff(&w, staff_event("POST /orders/{id}/delivery", &format!("/orders/{id}/delivery"), "", None)).await;
    assert_eq!((status, delivered["status"].as_str()), (200, Some("DELIVERED")), "{delivered}");
}

#[tokio::test]
async fn the_customer_function_does_not_answer_staff_routes_nor_the_staff_function_customer_routes() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let ship = || event("POST /orders/{id}/shipments", &format!("/orders/{id}/shipments"), "", Some("{}"));
    let deliver = || event("POST /orders/{id}/delivery", &format!("/orders/{id}/delivery"), "", None);
    for req in [ship(), deliver()] {
        assert_eq!(customer(&w, req).await.0, 404);
    }
    let cancel = staff_event("POST /orders/{id}/cancel", &format!("/orders/{id}/cancel"), "", None);
    let get = staff_event("GET /orders/{id}", &format!("/orders/{id}"), "", None);
    let place = staff_event("POST /orders", "/orders", "", Some("{}"));
    for req in [cancel, get, place] {
        assert_eq!(staff(&w, req).await.0, 404);
    }
    assert_eq!(w.order(id).await.status, OrderStatus::Placed, "nothing changed");
}

#[tokio::test]
async fn given_a_customer_token_on_a_staff_route_then_403_and_nothing_changes() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let body = r#"{"carrier":"UPS","trackingId":"1Z999"}"#;
    let ship = event("POST /orders/{id}/shipments", &format!("/orders/{id}/shipments"), "", Some(body));
    let deliver = event("POST /orders/{id}/delivery", &format!("/orders/{id}/delivery"), "", None);
    for req in [ship, deliver] {
        let (status, problem) = staff(&w, req).await;
        assert_eq!((status, problem["type"].as_str()), (403, Some("https://shop.example/problems/staff-only")));
    }
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured"]);
}

#[tokio::test]
async fn given_no_verified_token_then_every_route_of_both_functions_is_401_and_nothing_changes() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let anonymous = |route: &str, path: String, body: Option<&str>| event_by(None, route, &path, "", body);
    let order = r#"{"items":[{"sku":"MUG","quantity":1}],"paymentToken":"tok_visa","currency":"EUR"}"#;
    let customer_routes = [
        anonymous("POST /orders", "/orders".into(), Some(order)),
        anonymous("GET /orders/{id}", format!("/orders/{id}"), None),
        anonymous("GET /orders/{id}/events", format!("/orders/{id}/events"), None),
        anonymous("POST /orders/{id}/cancel", format!("/orders/{id}/cancel"), None),
    ];
    for req in customer_routes {
        let (status, problem) = customer(&w, req).await;
        assert_eq!((status, problem["type"].as_str()), (401, Some("https://shop.example/problems/unauthenticated")));
    }
    for req in [
        anonymous("POST /orders/{id}/shipments", format!("/orders/{id}/shipments"), Some("{}")),
        anonymous("POST /orders/{id}/delivery", format!("/orders/{id}/delivery"), None),
    ] {
        assert_eq!(staff(&w, req).await.0, 401);
    }
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured"]);
    assert_eq!(w.shop.order_count(), 1, "no order placed");
}

#[tokio::test]
async fn without_a_declared_route_the_route_is_read_from_the_path() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let (status, body) = customer(&w, event("$default", &format!("/orders/{id}/cancel"), "", None)).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("CANCELLED")), "{body}");
    let (status, _) = customer(&w, event("$default", &format!("/orders/{id}/refund"), "", None)).await;
    assert_eq!(status, 404, "an unknown action is no route");
}

#[tokio::test]
async fn an_unsupported_method_is_405() {
    let w = given_a_shop();
    let id = OrderId::new();
    let (status, body) = customer(&w, event("DELETE /orders/{id}", &format!("/orders/{id}"), "", None)).await;
    assert_eq!((status, body["type"].as_str()), (405, Some("https://shop.example/problems/method-not-allowed")));
}
