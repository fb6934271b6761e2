//! The analytics adapter against the local emulator (moto server), built from the template's
//! environment of AnalyticsFunction exactly as Lambda builds it.

use analytics::dynamo::DynamoCounters;
use analytics::{Analytics, DayTotals};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::config::Env;
use shared::consumer::handle_batch;
use shared::domain::{Currency, EventId};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};

use testkit::shared as aws;

async fn given_the_deployed_consumer() -> Analytics<DynamoCounters> {
    let env = Env(aws().stack.function("AnalyticsFunction").environment.clone());
    Analytics::from_env(&env, &aws().emulator.sdk_config().await).expect("the template sets every variable")
}

fn date(day: &str) -> chrono::NaiveDate {
    day.parse().unwrap()
}

fn placed_on(day: &str, lines: &[(&str, u32, i64)]) -> String {
    let mut event = order_placed("cust-ada", lines);
    event.occurred_at = format!("{day}T12:00:00Z").parse().unwrap();
    eventbridge_body(&event)
}

#[tokio::test]
async fn orders_add_to_their_day_and_sku_items_and_a_redelivery_adds_nothing() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    let sku = format!("T-{}", EventId::new());
    let first = placed_on("2031-05-01", &[(&sku, 2, 1250), ("MUG", 1, 1250)]);
    let second = placed_on("2031-05-01", &[(&sku, 1, 1250)]);
    let batch = sqs_batch(&[first.clone(), second, first]);
    assert!(failed_ids(&handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, 0, 10_000).await).is_empty());
    let day = consumer.counters.day(date("2031-05-01"), Currency::EUR).await.unwrap();
    assert_eq!(day, DayTotals { revenue: 3750 + 1250, orders: 2, units: 4 });
    let per_sku = consumer.counters.sku_day(&sku, date("2031-05-01"), Currency::EUR).await.unwrap();
    assert_eq!(per_sku, (3, 3750));
}

#[tokio::test]
async fn an_order_with_the_most_skus_a_transaction_holds_is_counted() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    let skus: Vec<String> = (0..analytics::MAX_SKUS_PER_ORDER).map(|i| format!("T-{i}-{}", EventId::new())).collect();
    let lines: Vec<(&str, u32, i64)> = skus.iter().map(|s| (s.as_str(), 1, 100)).collect();
    let batch = sqs_batch(&[placed_on("2031-06-01", &lines)]);
    assert!(failed_ids(&handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, 0, 10_000).await).is_empty());
    let day = consumer.counters.day(date("2031-06-01"), Currency::EUR).await.unwrap();
    assert_eq!((day.orders, day.units), (1, analytics::MAX_SKUS_PER_ORDER as u64));
}

#[tokio::test]
async fn a_days_totals_are_summed_over_the_shards_its_orders_were_spread_over() {
    let _serial = testkit::serial().await;
    let consumer = given_the_deployed_consumer().await;
    let bodies: Vec<String> = (0..16).map(|_| placed_on("2031-07-01", &[("MUG", 1, 100)])).collect();
    assert!(failed_ids(&handle_batch(&consumer, &MemoryDeadLetters::default(), &sqs_batch(&bodies), 0, 10_000).await)
        .is_empty());
    let day = consumer.counters.day(date("2031-07-01"), Currency::EUR).await.unwrap();
    assert_eq!(day, DayTotals { revenue: 1600, orders: 16, units: 16 });
}
