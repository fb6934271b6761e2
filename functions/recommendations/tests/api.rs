//! The recommendations API, specified: a SKU's top five co-purchases, most often first.

use lambda_http::{Body, Response};
use recommendations::api::handle;
use recommendations::memory::MemoryCoPurchases;
use serde_json::{json, Value};

/// A request as API Gateway's HTTP API (payload v2) delivers it.
fn request(method: &str, sku: &str) -> lambda_http::Request {
    let path = format!("/products/{sku}/recommendations");
    let event = json!({
        "version": "2.0",
        "routeKey": "GET /products/{sku}/recommendations",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"accept": "application/json", "x-correlation-id": "corr-42"},
        "requestContext": {
            "accountId": "123456789012", "apiId": "api", "domainName": "api.example", "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10", "userAgent": "test"},
            "requestId": "r-1", "routeKey": "GET /products/{sku}/recommendations", "stage": "$default",
            "time": "01/Jan/2026:12:00:00 +0000", "timeEpoch": 1767268800000u64
        },
        "isBase64Encoded": false,
        "pathParameters": {"sku": sku}
    });
    lambda_http::request::from_str(&event.to_string()).expect("a valid API Gateway v2 event")
}

fn given_counts() -> MemoryCoPurchases {
    [("TEE", 7), ("CAP", 2), ("POSTER", 7), ("HOODIE", 4), ("STICKER", 9), ("SOCKS", 1)]
        .into_iter()
        .fold(MemoryCoPurchases::default(), |store, (other, count)| store.with("MUG", other, count))
        .with("TEE", "MUG", 7)
}

fn content_type(response: &Response<Body>) -> &str {
    response.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default()
}

fn body(response: &Response<Body>) -> Value {
    serde_json::from_slice(response.body().as_ref()).expect("a JSON body")
}

#[tokio::test]
async fn a_sku_answers_its_top_five_by_count_then_by_sku() {
    let response = handle(&given_counts(), request("GET", "MUG")).await.unwrap();
    assert_eq!((response.status().as_u16(), content_type(&response)), (200, "application/json"));
    assert_eq!(
        body(&response),
        json!({"sku": "MUG", "recommendations": [
            {"sku": "STICKER", "count": 9},
            {"sku": "POSTER", "count": 7},
            {"sku": "TEE", "count": 7},
            {"sku": "HOODIE", "count": 4},
            {"sku": "CAP", "count": 2},
        ]})
    );
}

#[tokio::test]
async fn a_sku_nobody_bought_with_anything_answers_an_empty_list() {
    let response = handle(&given_counts(), request("GET", "UNKNOWN")).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(body(&response), json!({"sku": "UNKNOWN", "recommendations": []}));
}

#[tokio::test]
async fn a_store_failure_answers_503_as_problem_details() {
    let store = given_counts();
    store.fail_next_reads(1);
    let response = handle(&store, request("GET", "MUG")).await.unwrap();
    assert_eq!((response.status().as_u16(), content_type(&response)), (503, "application/problem+json"));
    let problem = body(&response);
    assert_eq!(problem["status"], 503);
    assert_eq!(problem["type"], "https://shop.example/problems/unavailable");
    assert!(problem["title"].is_string() && problem["detail"].is_string());
    assert!(response.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn an_overlong_sku_is_a_bad_request() {
    let response = handle(&given_counts(), request("GET", &"X".repeat(65))).await.unwrap();
    assert_eq!((response.status().as_u16(), content_type(&response)), (400, "application/problem+json"));
}

#[tokio::test]
async fn another_method_is_not_allowed() {
    let response = handle(&given_counts(), request("DELETE", "MUG")).await.unwrap();
    assert_eq!((response.status().as_u16(), content_type(&response)), (405, "application/problem+json"));
}

#[tokio::test]
async fn the_callers_correlation_id_comes_back() {
    let response = handle(&given_counts(), request("GET", "MUG")).await.unwrap();
    assert_eq!(response.headers().get("x-correlation-id").and_then(|v| v.to_str().ok()), Some("corr-42"));
}

#[tokio::test]
async fn what_the_consumer_counts_the_api_recommends() {
    use recommendations::Recommendations;
    use shared::testing::{eventbridge_body, order_placed, sqs_batch};
    let consumer = Recommendations { store: MemoryCoPurchases::default() };
    let orders =
        [order_placed("ada", &[("MUG", 1, 1250), ("TEE", 1, 2000)]), order_placed("grace", &[("MUG", 1, 1250)])];
    let bodies: Vec<String> = orders.iter().map(eventbridge_body).collect();
    shared::consumer::handle_batch(
        &consumer,
        &shared::adapters::memory_dlq::MemoryDeadLetters::default(),
        &sqs_batch(&bodies),
        0,
        10_000,
    )
    .await;
    let response = handle(&consumer.store, request("GET", "TEE")).await.unwrap();
    assert_eq!(body(&response), json!({"sku": "TEE", "recommendations": [{"sku": "MUG", "count": 1}]}));
}

#[tokio::test]
async fn the_sample_request_is_answered() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/recommendations-get.json");
    let sample = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read sample {path}: {e}"));
    let req = lambda_http::request::from_str(&sample).expect("the sample is an API Gateway v2 event");
    let response = handle(&given_counts(), req).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(body(&response)["sku"], "MUG");
    assert_eq!(body(&response)["recommendations"].as_array().map(Vec::len), Some(5));
}
