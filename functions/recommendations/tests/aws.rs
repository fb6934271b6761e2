//! The recommendations adapters against the local emulator (moto server): the consumer built
//! from RecommendationsFunction's environment, the API from RecommendationsApiFunction's.

use recommendations::dynamo::{DynamoBoughtWith, DynamoCoPurchases};
use recommendations::{BoughtWith, Recommendation, Recommendations};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::config::Env;
use shared::consumer::handle_batch;
use shared::domain::EventId;
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};

use testkit::shared as aws;

fn env(function: &str) -> Env {
    Env(aws().stack.function(function).environment.clone())
}

async fn given_the_deployed_functions() -> (Recommendations<DynamoCoPurchases>, DynamoBoughtWith) {
    let config = aws().emulator.sdk_config().await;
    let consumer = Recommendations::from_env(&env("RecommendationsFunction"), &config).expect("consumer variables");
    let api = DynamoBoughtWith::from_env(&env("RecommendationsApiFunction"), &config).expect("API variables");
    (consumer, api)
}

/// SKUs only this test uses.
fn fresh_skus(n: usize) -> Vec<String> {
    let run = EventId::new();
    (0..n).map(|i| format!("T-{run}-{i:02}")).collect()
}

fn placed(skus: &[&str]) -> String {
    let lines: Vec<(&str, u32, i64)> = skus.iter().map(|s| (*s, 1, 1000)).collect();
    eventbridge_body(&order_placed("cust-ada", &lines))
}

#[tokio::test]
async fn counted_co_purchases_are_read_back_by_the_api_and_a_redelivery_counts_nothing() {
    let _serial = testkit::serial().await;
    let (consumer, api) = given_the_deployed_functions().await;
    let skus = fresh_skus(3);
    let (a, b, c) = (skus[0].as_str(), skus[1].as_str(), skus[2].as_str());
    let first = placed(&[a, b, c]);
    let batch = sqs_batch(&[first.clone(), placed(&[a, b]), first]);
    assert!(failed_ids(&handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, 0, 10_000).await).is_empty());
    let found = recommendations::top(api.bought_with(&a.into()).await.unwrap(), recommendations::TOP);
    assert_eq!(found, vec![Recommendation { sku: b.into(), count: 2 }, Recommendation { sku: c.into(), count: 1 }]);
}

#[tokio::test]
async fn the_largest_paired_order_fits_one_transaction() {
    let _serial = testkit::serial().await;
    let (consumer, api) = given_the_deployed_functions().await;
    let skus = fresh_skus(recommendations::MAX_SKUS_PAIRED + 2);
    let skus: Vec<&str> = skus.iter().map(String::as_str).collect();
    assert!(failed_ids(
        &handle_batch(&consumer, &MemoryDeadLetters::default(), &sqs_batch(&[placed(&skus)]), 0, 10_000).await
    )
    .is_empty());
    assert_eq!(api.bought_with(&skus[0].into()).await.unwrap().len(), recommendations::MAX_SKUS_PAIRED - 1);
}

#[tokio::test]
async fn the_api_answers_from_the_table() {
    let _serial = testkit::serial().await;
    let (consumer, api) = given_the_deployed_functions().await;
    let skus = fresh_skus(2);
    handle_batch(&consumer, &MemoryDeadLetters::default(), &sqs_batch(&[placed(&[&skus[0], &skus[1]])]), 0, 10_000)
        .await;
    let request = lambda_http::http::Request::builder()
        .uri(format!("https://api.example/products/{}/recommendations", skus[0]))
        .body(lambda_http::Body::Empty)
        .unwrap();
    let response = recommendations::api::handle(&api, request).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = serde_json::from_slice(response.body().as_ref()).unwrap();
    assert_eq!(body["recommendations"], serde_json::json!([{"sku": skus[1], "count": 1}]));
}
