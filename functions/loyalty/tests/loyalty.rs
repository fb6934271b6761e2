//! Loyalty, specified: points per whole unit, credited exactly once per order.

use loyalty::{memory::MemoryLedger, points_for, Loyalty};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::domain::{Currency, Money};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};

const NOW: i64 = 1_800_000_000_000;

fn given_loyalty() -> Loyalty<MemoryLedger> {
    Loyalty { ledger: MemoryLedger::default() }
}

async fn deliver(consumer: &Loyalty<MemoryLedger>, bodies: &[String]) -> Vec<String> {
    failed_ids(&handle_batch(consumer, &MemoryDeadLetters::default(), &sqs_batch(bodies), NOW, NOW + 10_000).await)
}

#[test]
fn one_point_per_whole_currency_unit_rounded_down() {
    assert_eq!(points_for(Money::new(4599, Currency::EUR)), 45);
    assert_eq!(points_for(Money::new(99, Currency::EUR)), 0);
}

#[tokio::test]
async fn an_order_credits_its_points_and_writes_one_ledger_entry() {
    let consumer = given_loyalty();
    let event = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2099)]);
    assert!(deliver(&consumer, &[eventbridge_body(&event)]).await.is_empty());
    assert_eq!(consumer.ledger.balance("ada"), 45);
    let entries = consumer.ledger.entries();
    assert_eq!((entries.len(), entries[0].order_id), (1, event.order_id));
}

#[tokio::test]
async fn a_duplicate_delivery_does_not_double_the_points() {
    let consumer = given_loyalty();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 2, 1250)]));
    deliver(&consumer, std::slice::from_ref(&body)).await;
    assert!(deliver(&consumer, &[body]).await.is_empty());
    assert_eq!(consumer.ledger.balance("ada"), 25);
}

#[tokio::test]
async fn ten_concurrent_deliveries_credit_once() {
    let consumer = given_loyalty();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 2, 1250)]));
    let runs = (0..10).map(|_| deliver(&consumer, std::slice::from_ref(&body)));
    let failures: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    assert_eq!(failures, 0, "duplicates are skipped, not failed");
    assert_eq!(consumer.ledger.balance("ada"), 25);
    assert_eq!(consumer.ledger.entries().len(), 1);
}

#[tokio::test]
async fn orders_of_different_customers_credit_each_their_own() {
    let consumer = given_loyalty();
    let a = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1000)]));
    let b = eventbridge_body(&order_placed("grace", &[("MUG", 3, 1000)]));
    deliver(&consumer, &[a, b]).await;
    assert_eq!((consumer.ledger.balance("ada"), consumer.ledger.balance("grace")), (10, 30));
}

#[tokio::test]
async fn a_store_fault_fails_the_record_and_credits_nothing() {
    let consumer = given_loyalty();
    consumer.ledger.fail_next();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1000)]));
    assert_eq!(deliver(&consumer, std::slice::from_ref(&body)).await, vec!["m0"]);
    assert_eq!(consumer.ledger.balance("ada"), 0);
    assert!(deliver(&consumer, &[body]).await.is_empty(), "the retry succeeds");
    assert_eq!(consumer.ledger.balance("ada"), 10);
}
