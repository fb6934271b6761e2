//! Analytics, specified: every order counts once, on its UTC day, in its currency, for the day
//! and for each SKU.

use analytics::memory::{DayCounters, MemoryCounters, SkuCounters};
use analytics::Analytics;
use chrono::{DateTime, NaiveDate, Utc};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::domain::Currency;
use shared::ports::ErrorKind;
use shared::testing::{
    eventbridge_body, failed_ids, order_placed, order_placed_records, poison_ids, sample_batch, sqs_batch,
};

const NOW: i64 = 1_800_000_000_000;

type Subject = Analytics<MemoryCounters>;

/// The consumer and its dead-letter queue.
type Given = shared::testing::Given<Subject>;

fn given_analytics() -> Given {
    Given { consumer: Analytics { counters: MemoryCounters::default() }, dlq: MemoryDeadLetters::default() }
}

async fn deliver(given: &Given, bodies: &[String]) -> Vec<String> {
    failed_ids(&handle_batch(&given.consumer, &given.dlq, &sqs_batch(bodies), NOW, NOW + 10_000).await)
}

fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339).expect("a valid test time").with_timezone(&Utc)
}

fn day(date: &str) -> NaiveDate {
    date.parse().expect("a valid test date")
}

/// An order placed at `when`, delivered as EventBridge delivers it.
fn placed_at(when: &str, lines: &[(&str, u32, i64)]) -> String {
    let mut event = order_placed("ada", lines);
    event.occurred_at = at(when);
    eventbridge_body(&event)
}

#[tokio::test]
async fn an_order_adds_its_total_one_order_and_its_units_to_its_day() {
    let consumer = given_analytics();
    assert!(deliver(&consumer, &[placed_at("2026-03-01T10:00:00Z", &[("MUG", 2, 1250), ("TEE", 1, 2000)])])
        .await
        .is_empty());
    assert_eq!(
        consumer.counters.day(day("2026-03-01"), Currency::EUR),
        DayCounters { revenue: 4500, orders: 1, units: 3 }
    );
}

#[tokio::test]
async fn each_sku_adds_its_units_and_revenue_for_the_day() {
    let consumer = given_analytics();
    deliver(&consumer, &[placed_at("2026-03-01T10:00:00Z", &[("MUG", 2, 1250), ("TEE", 1, 2000)])]).await;
    let (date, eur) = (day("2026-03-01"), Currency::EUR);
    assert_eq!(consumer.counters.sku("MUG", date, eur), SkuCounters { units: 2, revenue: 2500 });
    assert_eq!(consumer.counters.sku("TEE", date, eur), SkuCounters { units: 1, revenue: 2000 });
}

#[tokio::test]
async fn orders_of_one_day_accumulate_and_other_days_stay_apart() {
    let consumer = given_analytics();
    let bodies = [
        placed_at("2026-03-01T08:00:00Z", &[("MUG", 1, 1250)]),
        placed_at("2026-03-01T20:00:00Z", &[("MUG", 3, 1250)]),
        placed_at("2026-03-02T09:00:00Z", &[("MUG", 1, 1250)]),
    ];
    deliver(&consumer, &bodies).await;
    assert_eq!(
        consumer.counters.day(day("2026-03-01"), Currency::EUR),
        DayCounters { revenue: 5000, orders: 2, units: 4 }
    );
    assert_eq!(consumer.counters.sku("MUG", day("2026-03-02"), Currency::EUR), SkuCounters { units: 1, revenue: 1250 });
}

#[tokio::test]
async fn the_day_is_the_utc_date_the_order_was_placed() {
    let consumer = given_analytics();
    deliver(&consumer, &[placed_at("2026-03-01T23:30:00-05:00", &[("MUG", 1, 1250)])]).await;
    assert_eq!(consumer.counters.day(day("2026-03-02"), Currency::EUR).orders, 1);
    assert_eq!(consumer.counters.day(day("2026-03-01"), Currency::EUR).orders, 0);
}

#[tokio::test]
async fn amounts_in_different_currencies_are_never_added_together() {
    let consumer = given_analytics();
    let mut dollars = order_placed("grace", &[("MUG", 1, 1400)]);
    dollars.data.total.currency = Currency::USD;
    dollars.data.lines[0].unit_price.currency = Currency::USD;
    dollars.occurred_at = at("2026-03-01T12:00:00Z");
    deliver(&consumer, &[placed_at("2026-03-01T12:00:00Z", &[("MUG", 1, 1250)]), eventbridge_body(&dollars)]).await;
    let date = day("2026-03-01");
    assert_eq!(consumer.counters.day(date, Currency::EUR).revenue, 1250);
    assert_eq!(consumer.counters.day(date, Currency::USD).revenue, 1400);
    assert_eq!(consumer.counters.sku("MUG", date, Currency::USD), SkuCounters { units: 1, revenue: 1400 });
}

#[tokio::test]
async fn a_duplicate_delivery_counts_once() {
    let consumer = given_analytics();
    let body = placed_at("2026-03-01T10:00:00Z", &[("MUG", 2, 1250)]);
    deliver(&consumer, std::slice::from_ref(&body)).await;
    assert!(deliver(&consumer, &[body]).await.is_empty(), "a duplicate is skipped, not failed");
    assert_eq!(
        consumer.counters.day(day("2026-03-01"), Currency::EUR),
        DayCounters { revenue: 2500, orders: 1, units: 2 }
    );
}

#[tokio::test]
async fn ten_concurrent_deliveries_count_once() {
    let consumer = given_analytics();
    let body = placed_at("2026-03-01T10:00:00Z", &[("MUG", 2, 1250)]);
    let runs = (0..10).map(|_| deliver(&consumer, std::slice::from_ref(&body)));
    let failures: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    assert_eq!(failures, 0, "duplicates are skipped, not failed");
    assert_eq!(consumer.counters.day(day("2026-03-01"), Currency::EUR).orders, 1);
    assert_eq!(consumer.counters.sku("MUG", day("2026-03-01"), Currency::EUR).units, 2);
}

#[tokio::test]
async fn an_order_that_cannot_be_counted_is_dead_lettered_at_once_and_alone() {
    let consumer = given_analytics();
    let mut overflowing = order_placed("grace", &[("MUG", 2, 1)]);
    overflowing.data.lines[0].unit_price.amount = i64::MAX;
    overflowing.occurred_at = at("2026-03-01T10:00:00Z");
    let bodies = [
        placed_at("2026-03-01T10:00:00Z", &[("MUG", 1, 1250)]),
        eventbridge_body(&overflowing),
        placed_at("2026-03-01T10:00:00Z", &[("TEE", 1, 2000)]),
    ];
    assert!(deliver(&consumer, &bodies).await.is_empty(), "reported handled: no receive is spent on it");
    assert_eq!(
        consumer.counters.day(day("2026-03-01"), Currency::EUR),
        DayCounters { revenue: 3250, orders: 2, units: 2 }
    );
    let dead = consumer.dlq.sent();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].source_message_id.as_str(), dead[0].kind), ("m1", ErrorKind::Permanent));
    assert_eq!(dead[0].body.as_deref(), Some(bodies[1].as_str()));
}

#[tokio::test]
async fn an_order_with_too_many_skus_is_dead_lettered_at_once() {
    let skus: Vec<String> = (0..=analytics::MAX_SKUS_PER_ORDER).map(|i| format!("SKU-{i}")).collect();
    let lines: Vec<(&str, u32, i64)> = skus.iter().map(|sku| (sku.as_str(), 1, 100)).collect();
    let consumer = given_analytics();
    assert!(deliver(&consumer, &[eventbridge_body(&order_placed("ada", &lines))]).await.is_empty());
    let dead = consumer.dlq.sent();
    assert_eq!(dead.len(), 1);
    assert!(dead[0].reason.contains("SKUs"), "{}", dead[0].reason);
}

#[tokio::test]
async fn an_uncountable_order_the_dlq_refuses_is_reported_failed() {
    let consumer = given_analytics();
    consumer.dlq.fail_next(1);
    let mut overflowing = order_placed("grace", &[("MUG", 2, 1)]);
    overflowing.data.lines[0].unit_price.amount = i64::MAX;
    assert_eq!(deliver(&consumer, &[eventbridge_body(&overflowing)]).await, vec!["m0"]);
    assert!(consumer.dlq.sent().is_empty());
}

#[tokio::test]
async fn a_store_fault_fails_the_record_and_the_retry_counts_once() {
    let consumer = given_analytics();
    consumer.counters.fail_next(1);
    let body = placed_at("2026-03-01T10:00:00Z", &[("MUG", 1, 1250)]);
    assert_eq!(deliver(&consumer, std::slice::from_ref(&body)).await, vec!["m0"]);
    assert_eq!(consumer.counters.day(day("2026-03-01"), Currency::EUR).orders, 0);
    assert!(deliver(&consumer, &[body]).await.is_empty());
    assert_eq!(consumer.counters.day(day("2026-03-01"), Currency::EUR).orders, 1);
}

#[tokio::test]
async fn a_poison_record_next_to_a_good_one_is_dead_lettered_alone() {
    let consumer = given_analytics();
    let good = placed_at("2026-03-01T10:00:00Z", &[("MUG", 1, 1250)]);
    assert!(deliver(&consumer, &[good, "{}".to_owned()]).await.is_empty());
    assert_eq!(consumer.dlq.message_ids(), vec!["m1"]);
    assert_eq!(consumer.counters.day(day("2026-03-01"), Currency::EUR).orders, 1);
}

#[tokio::test]
async fn the_sample_event_is_counted_without_failures() {
    let batch = sample_batch("analytics-order-placed.json");
    let consumer = given_analytics();
    assert!(failed_ids(&handle_batch(&consumer.consumer, &consumer.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert!(consumer.dlq.sent().is_empty());
    for (_, order) in order_placed_records(&batch) {
        let counted = consumer.counters.day(order.occurred_at.date_naive(), order.data.total.currency);
        assert!(counted.orders >= 1 && counted.revenue >= order.data.total.amount);
    }
}

#[tokio::test]
async fn the_poison_sample_dead_letters_only_its_bad_records() {
    let batch = sample_batch("consumer-poison.json");
    let poison = poison_ids(&batch);
    assert!(!poison.is_empty(), "the poison sample carries at least one bad record");
    let consumer = given_analytics();
    assert!(failed_ids(&handle_batch(&consumer.consumer, &consumer.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(consumer.dlq.message_ids(), poison);
}

#[test]
fn an_order_with_more_skus_than_one_transaction_holds_is_refused() {
    let skus: Vec<String> = (0..=analytics::MAX_SKUS_PER_ORDER).map(|i| format!("SKU-{i}")).collect();
    let lines: Vec<(&str, u32, i64)> = skus.iter().map(|sku| (sku.as_str(), 1, 100)).collect();
    let refused = analytics::tally(&order_placed("ada", &lines));
    assert_eq!(refused, Err(analytics::TallyError::TooManySkus(analytics::MAX_SKUS_PER_ORDER + 1)));
    assert!(analytics::tally(&order_placed("ada", &lines[1..])).is_ok(), "one fewer fits");
}

#[tokio::test]
async fn a_days_orders_spread_over_its_shards_and_its_totals_are_their_sum() {
    let consumer = given_analytics();
    let bodies: Vec<String> = (0..64).map(|_| placed_at("2026-03-01T10:00:00Z", &[("MUG", 1, 1250)])).collect();
    assert!(deliver(&consumer, &bodies).await.is_empty());
    let shards = consumer.counters.day_shards(day("2026-03-01"), Currency::EUR);
    assert!(shards.len() > 1, "64 orders do not all land on one item: {shards:?}");
    assert!(shards.iter().all(|(n, _)| *n < analytics::DAY_SHARDS));
    assert_eq!(
        consumer.counters.day(day("2026-03-01"), Currency::EUR),
        DayCounters { revenue: 64 * 1250, orders: 64, units: 64 }
    );
}

#[test]
fn an_event_always_adds_to_the_same_shard() {
    let event = order_placed("ada", &[("MUG", 1, 1250)]);
    let shard = analytics::tally(&event).unwrap().shard;
    assert_eq!(shard, analytics::day_shard(event.event_id));
    assert_eq!(analytics::tally(&event).unwrap().shard, shard);
    assert!(shard < analytics::DAY_SHARDS);
}
