//! The customer's order list, specified: newest first, paginated by an opaque cursor that only
//! continues the list it came from; bad input is a 400 problem, never a 500 or another list.

mod common;

use aws_lambda_events::event::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayV2httpRequest};
use chrono::Duration;
use common::*;
use lambda_http::http::Method;
use lambda_http::{Body, Response};
use order_views::api::handle;
use order_views::memory::MemoryViews;
use order_views::View;
use serde_json::{json, Value};
use shared::auth::Access;
use shared::domain::OrderId;
use shared::testing::verified_token;
use std::collections::HashMap;

/// A request as API Gateway's HTTP API (payload v2) delivers it, built from its typed event,
/// for a token of `customer` itself.
fn request(method: Method, customer: &str, query: &str) -> lambda_http::Request {
    request_by(Some(shared::testing::verified_token(customer, &[])), method, customer, query)
}

/// The same, with `authorizer` as the context the JWT authorizer passed (None: no token).
fn request_by(
    authorizer: Option<ApiGatewayRequestAuthorizer>,
    method: Method,
    customer: &str,
    query: &str,
) -> lambda_http::Request {
    let path = format!("/customers/{customer}/orders");
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some("GET /customers/{customerId}/orders".into());
    event.raw_path = Some(path.clone());
    event.raw_query_string = Some(query.into());
    event.path_parameters = HashMap::from([("customerId".to_owned(), customer.to_owned())]);
    event.headers.insert("x-correlation-id", "corr-42".parse().unwrap());
    event.request_context.stage = Some("$default".into());
    event.request_context.domain_name = Some("api.example".into());
    event.request_context.http.method = method;
    event.request_context.http.path = Some(path);
    event.request_context.authorizer = authorizer;
    lambda_http::request::from_str(&serde_json::to_string(&event).unwrap()).expect("a valid API Gateway v2 event")
}

/// The list as the function answers it, with the template's staff scope.
async fn list(views: &MemoryViews, req: lambda_http::Request) -> Response<Body> {
    handle(views, &Access::default(), req).await.unwrap()
}

fn get(customer: &str, query: &str) -> lambda_http::Request {
    request(Method::GET, customer, query)
}

/// An order of `customer` in `life`, opened `minutes` after the start.
fn view(customer: &str, life: Life, minutes: i64) -> View {
    let history = recorded(events(life, customer, 1000 + minutes, start() + Duration::minutes(minutes)));
    fold(OrderId::new(), &history)
}

/// `count` orders of ada, each an hour after the previous; the newest last.
fn given_orders_of_ada(count: i64) -> (MemoryViews, Vec<View>) {
    let views = MemoryViews::default();
    let ada: Vec<View> = (0..count).map(|i| view("ada", Life::ALL[i as usize % 4], i * 60)).collect();
    ada.iter().for_each(|v| views.insert(v.clone()));
    views.insert(view("bob", Life::Delivered, 30));
    (views, ada)
}

fn status(response: &Response<Body>) -> u16 {
    response.status().as_u16()
}

fn content_type(response: &Response<Body>) -> &str {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

fn ids(page: &Value) -> Vec<String> {
    page["orders"].as_array().unwrap().iter().map(|o| o["orderId"].as_str().unwrap().to_owned()).collect()
}

fn newest_first(views: &[View]) -> Vec<String> {
    views.iter().rev().map(|v| v.order_id.to_string()).collect()
}

fn assert_problem(response: &Response<Body>, code: u16, slug: &str) {
    assert_eq!((status(response), content_type(response)), (code, "application/problem+json"));
    let problem = body(response);
    assert_eq!(problem["type"], format!("https://shop.example/problems/{slug}"));
    assert_eq!(problem["status"], code);
    assert!(problem["title"].is_string() && problem["detail"].is_string());
}

#[tokio::test]
async fn given_orders_of_two_customers_when_one_lists_then_only_theirs_come_newest_first_with_their_state() {
    let (views, ada) = given_orders_of_ada(3);

    let response = list(&views, get("ada", "")).await;

    assert_eq!((status(&response), content_type(&response)), (200, "application/json"));
    assert_eq!(response.headers()["x-correlation-id"], "corr-42");
    let page = body(&response);
    assert_eq!(ids(&page), newest_first(&ada));
    assert_eq!(page["nextCursor"], Value::Null);
    let newest = &ada[2];
    assert_eq!(
        page["orders"][0],
        json!({
            "orderId": newest.order_id.to_string(),
            "status": newest.status.as_str(),
            "total": newest.total,
            "currency": "EUR",
            "openedAt": "2026-01-01T12:00:00.000Z",
            "updatedAt": "2026-01-01T12:01:00.000Z",
            "version": 2,
        })
    );
}

#[tokio::test]
async fn given_a_customer_without_orders_when_listing_then_the_list_is_empty() {
    let (views, _) = given_orders_of_ada(2);

    let response = list(&views, get("carol", "")).await;

    assert_eq!(status(&response), 200);
    assert_eq!(body(&response), json!({"orders": [], "nextCursor": null}));
}

#[tokio::test]
async fn given_the_views_shared_in_an_arc_by_a_host_when_listing_then_it_answers_the_same() {
    let (views, ada) = given_orders_of_ada(2);
    let shared = std::sync::Arc::new(views);

    let response = handle(&shared, &Access::default(), get("ada", "")).await.unwrap();

    assert_eq!(ids(&body(&response)), newest_first(&ada));
}

#[tokio::test]
async fn given_more_orders_than_the_default_limit_when_listing_then_twenty_come_with_a_cursor_to_the_rest() {
    let (views, ada) = given_orders_of_ada(25);

    let first = body(&list(&views, get("ada", "")).await);
    let cursor = first["nextCursor"].as_str().expect("a cursor to the rest").to_owned();
    let second = body(&list(&views, get("ada", &format!("cursor={cursor}"))).await);

    assert_eq!(ids(&first), newest_first(&ada)[..20]);
    assert_eq!(ids(&second), newest_first(&ada)[20..]);
    assert_eq!(second["nextCursor"], Value::Null, "the last page points nowhere");
}

#[tokio::test]
async fn given_pages_of_two_when_following_every_cursor_then_each_order_comes_once_newest_first() {
    let (views, ada) = given_orders_of_ada(7);
    let (mut seen, mut query) = (Vec::new(), "limit=2".to_owned());

    loop {
        let page = body(&list(&views, get("ada", &query)).await);
        assert!(ids(&page).len() <= 2);
        seen.extend(ids(&page));
        match page["nextCursor"].as_str() {
            Some(cursor) => query = format!("limit=2&cursor={cursor}"),
            None => break,
        }
    }

    assert_eq!(seen, newest_first(&ada));
}

#[tokio::test]
async fn given_a_limit_from_one_to_a_hundred_when_listing_then_it_is_honoured() {
    let (views, _) = given_orders_of_ada(3);
    for (limit, expected) in [("1", 1), ("100", 3), ("02", 2)] {
        let response = list(&views, get("ada", &format!("limit={limit}"))).await;
        assert_eq!(status(&response), 200, "limit={limit}");
        assert_eq!(ids(&body(&response)).len(), expected, "limit={limit}");
    }
}

#[tokio::test]
async fn given_a_limit_out_of_bounds_or_not_a_number_when_listing_then_it_is_a_400_problem() {
    let (views, _) = given_orders_of_ada(3);
    for limit in ["0", "101", "-1", "abc", "1.5", "", "99999999999999999999999999", "1e2"] {
        let response = list(&views, get("ada", &format!("limit={limit}"))).await;
        assert_problem(&response, 400, "invalid-limit");
    }
}

#[tokio::test]
async fn given_a_tampered_cursor_when_listing_then_it_is_a_400_problem() {
    let (views, _) = given_orders_of_ada(5);
    let first = body(&list(&views, get("ada", "limit=2")).await);
    let good = first["nextCursor"].as_str().unwrap().to_owned();
    let mut flipped = good.clone().into_bytes();
    flipped[3] = if flipped[3] == b'A' { b'B' } else { b'A' };
    let tampered = [
        "garbage".to_owned(),
        String::from_utf8(flipped).unwrap(),
        format!("{good}x"),
        good[..good.len() - 4].to_owned(),
        "A".repeat(10_000),
    ];

    for cursor in tampered {
        let response = list(&views, get("ada", &format!("cursor={cursor}"))).await;
        assert_problem(&response, 400, "invalid-cursor");
    }
}

#[tokio::test]
async fn given_another_customers_cursor_when_listing_then_it_is_a_400_and_reveals_nothing() {
    let (views, _) = given_orders_of_ada(3);
    (0..3).for_each(|i| views.insert(view("bob", Life::Refunded, 1000 + i)));
    let bobs = body(&list(&views, get("bob", "limit=1")).await);
    let cursor = bobs["nextCursor"].as_str().unwrap();

    let response = list(&views, get("ada", &format!("cursor={cursor}"))).await;

    assert_problem(&response, 400, "invalid-cursor");
    assert!(body(&response).get("orders").is_none());
}

#[tokio::test]
async fn given_the_views_table_is_unavailable_when_listing_then_it_is_a_503_to_retry() {
    let (views, _) = given_orders_of_ada(1);
    views.fail_next_reads(1);

    let response = list(&views, get("ada", "")).await;

    assert_problem(&response, 503, "unavailable");
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn given_a_method_other_than_get_or_an_overlong_customer_when_requested_then_it_is_refused() {
    let (views, _) = given_orders_of_ada(1);

    assert_problem(&list(&views, request(Method::POST, "ada", "")).await, 405, "method-not-allowed");
    let overlong = "a".repeat(shared::auth::MAX_SUBJECT_LEN + 1);
    let by_staff = request_by(Some(verified_token("staff-sam", &["shop/staff"])), Method::GET, &overlong, "");
    assert_problem(&list(&views, by_staff).await, 400, "invalid-customer");
}

#[tokio::test]
async fn given_ada_signed_in_when_she_lists_bobs_orders_then_the_list_does_not_exist_for_her() {
    let (views, _) = given_orders_of_ada(2);
    let by_ada = request_by(Some(verified_token("ada", &[])), Method::GET, "bob", "");

    let response = list(&views, by_ada).await;

    assert_problem(&response, 404, "customer-not-found");
    assert!(!String::from_utf8_lossy(response.body().as_ref()).contains("orderId"));
}

#[tokio::test]
async fn given_a_staff_token_when_listing_any_customer_then_their_orders_are_answered() {
    let (views, _) = given_orders_of_ada(2);
    let by_staff = request_by(Some(verified_token("staff-sam", &["shop/staff"])), Method::GET, "bob", "");

    assert_eq!(ids(&body(&list(&views, by_staff).await)).len(), 1);
}

#[tokio::test]
async fn given_no_verified_token_when_listing_then_401_and_nothing_is_read() {
    let (views, _) = given_orders_of_ada(2);

    assert_problem(&list(&views, request_by(None, Method::GET, "ada", "")).await, 401, "unauthenticated");
}

#[tokio::test]
async fn the_sample_request_is_answered() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/order-views-list.json");
    let sample = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read sample {path}: {e}"));
    let req = lambda_http::request::from_str(&sample).expect("the sample is an API Gateway v2 event");
    let views = MemoryViews::default();
    (0..12).for_each(|i| views.insert(view("cust-ada", Life::Delivered, i)));

    let response = list(&views, req).await;

    assert_eq!(status(&response), 200);
    assert_eq!(ids(&body(&response)).len(), 10, "the sample asks for 10");
    assert!(body(&response)["nextCursor"].is_string());
}
