//! Recommendations, the consumer, specified: every order counts each pair of its distinct SKUs
//! once, in both directions.

use recommendations::memory::MemoryCoPurchases;
use recommendations::Recommendations;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::testing::{
    eventbridge_body, failed_ids, order_placed, order_placed_records, poison_ids, sample_batch, sqs_batch,
};

const NOW: i64 = 1_800_000_000_000;

type Subject = Recommendations<MemoryCoPurchases>;

fn given_no_counts() -> Subject {
    Recommendations { store: MemoryCoPurchases::default() }
}

async fn deliver(consumer: &Subject, bodies: &[String]) -> Vec<String> {
    failed_ids(&handle_batch(consumer, &MemoryDeadLetters::default(), &sqs_batch(bodies), NOW, NOW + 10_000).await)
}

fn placed(skus: &[&str]) -> String {
    let lines: Vec<(&str, u32, i64)> = skus.iter().map(|sku| (*sku, 1, 1000)).collect();
    eventbridge_body(&order_placed("ada", &lines))
}

#[tokio::test]
async fn an_order_counts_each_pair_of_its_skus_in_both_directions() {
    let consumer = given_no_counts();
    assert!(deliver(&consumer, &[placed(&["MUG", "TEE", "CAP"])]).await.is_empty());
    for (a, b) in [("MUG", "TEE"), ("MUG", "CAP"), ("TEE", "CAP")] {
        assert_eq!((consumer.store.count(a, b), consumer.store.count(b, a)), (1, 1), "{a} and {b}");
    }
    assert_eq!(consumer.store.counters(), 6, "no SKU is paired with itself");
}

#[tokio::test]
async fn orders_buying_the_same_pair_add_up() {
    let consumer = given_no_counts();
    deliver(&consumer, &[placed(&["MUG", "TEE"]), placed(&["TEE", "MUG", "CAP"])]).await;
    assert_eq!(consumer.store.count("MUG", "TEE"), 2);
    assert_eq!(consumer.store.count("CAP", "MUG"), 1);
}

#[tokio::test]
async fn an_order_of_one_sku_counts_nothing() {
    let consumer = given_no_counts();
    assert!(deliver(&consumer, &[placed(&["MUG"])]).await.is_empty());
    assert_eq!(consumer.store.counters(), 0);
}

#[tokio::test]
async fn an_order_of_more_than_ten_skus_pairs_its_first_ten() {
    let consumer = given_no_counts();
    let skus: Vec<String> = (0..12).map(|i| format!("SKU-{i:02}")).collect();
    let skus: Vec<&str> = skus.iter().map(String::as_str).collect();
    assert!(deliver(&consumer, &[placed(&skus)]).await.is_empty());
    assert_eq!(consumer.store.counters(), 90);
    assert_eq!(consumer.store.count("SKU-00", "SKU-09"), 1);
    assert_eq!(consumer.store.count("SKU-00", "SKU-10"), 0);
}

#[tokio::test]
async fn a_duplicate_delivery_counts_once() {
    let consumer = given_no_counts();
    let body = placed(&["MUG", "TEE"]);
    deliver(&consumer, std::slice::from_ref(&body)).await;
    assert!(deliver(&consumer, &[body]).await.is_empty(), "a duplicate is skipped, not failed");
    assert_eq!(consumer.store.count("MUG", "TEE"), 1);
}

#[tokio::test]
async fn ten_concurrent_deliveries_count_once() {
    let consumer = given_no_counts();
    let body = placed(&["MUG", "TEE"]);
    let runs = (0..10).map(|_| deliver(&consumer, std::slice::from_ref(&body)));
    let failures: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    assert_eq!(failures, 0, "duplicates are skipped, not failed");
    assert_eq!((consumer.store.count("MUG", "TEE"), consumer.store.count("TEE", "MUG")), (1, 1));
}

#[tokio::test]
async fn a_store_fault_fails_its_record_alone_and_the_retry_counts_once() {
    let consumer = given_no_counts();
    consumer.store.fail_next_writes(1);
    let (first, second) = (placed(&["MUG", "TEE"]), placed(&["CAP", "TEE"]));
    assert_eq!(deliver(&consumer, &[first.clone(), second]).await, vec!["m0"]);
    assert_eq!((consumer.store.count("MUG", "TEE"), consumer.store.count("CAP", "TEE")), (0, 1));
    assert!(deliver(&consumer, &[first]).await.is_empty());
    assert_eq!(consumer.store.count("MUG", "TEE"), 1);
}

#[tokio::test]
async fn a_poison_record_next_to_a_good_one_is_dead_lettered_alone() {
    let consumer = given_no_counts();
    let dlq = MemoryDeadLetters::default();
    let batch = sqs_batch(&[placed(&["MUG", "TEE"]), "[]".to_owned()]);
    assert!(failed_ids(&handle_batch(&consumer, &dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(dlq.message_ids(), vec!["m1"]);
    assert_eq!(consumer.store.count("MUG", "TEE"), 1);
}

#[tokio::test]
async fn the_sample_event_is_counted_without_failures() {
    let batch = sample_batch("recommendations-order-placed.json");
    let consumer = given_no_counts();
    let dlq = MemoryDeadLetters::default();
    assert!(failed_ids(&handle_batch(&consumer, &dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert!(dlq.sent().is_empty());
    // One order announced as v2 and one as v1 before the upgrade, of the same basket.
    let orders = order_placed_records(&batch);
    let (_, order) = orders.first().expect("the sample carries an order");
    let lines = &order.data.lines;
    assert!(lines.len() >= 2, "the sample order pairs something");
    assert!(orders.iter().all(|(_, o)| o.data.lines == *lines), "the sample's orders are of one basket");
    assert_eq!(consumer.store.count(lines[0].sku.as_str(), lines[1].sku.as_str()), orders.len() as u64);
}

#[tokio::test]
async fn the_poison_sample_dead_letters_only_its_bad_records() {
    let batch = sample_batch("consumer-poison.json");
    let poison = poison_ids(&batch);
    assert!(!poison.is_empty(), "the poison sample carries at least one bad record");
    let dlq = MemoryDeadLetters::default();
    assert!(failed_ids(&handle_batch(&given_no_counts(), &dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(dlq.message_ids(), poison);
}
