//! The e-mail adapters against the local emulator (moto server), built from the template's
//! environment of EmailFunction exactly as Lambda builds them: SES accepts each notice, and the
//! order's record in DynamoDB makes a redelivery a duplicate and an order arriving after its
//! cancellation void.

use email::dynamo::DynamoCustomers;
use email::{Customer, Customers, Email};
use shared::adapters::dynamodb::DynamoOrderRecords;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::config::Env;
use shared::consumer::handle_batch;
use shared::domain::OrderId;
use shared::out_of_order::{OrderRecord, OrderRecords, Stage, Stages};
use shared::testing::{eventbridge_body, failed_ids, order_cancelled, order_placed, order_shipped, sqs_batch};

use testkit::shared as aws;

fn env() -> Env {
    Env(aws().stack.function("EmailFunction").environment.clone())
}

async fn given_the_deployed_consumer() -> Email<DynamoCustomers, email::ses::SesMailer, DynamoOrderRecords> {
    Email::from_env(&env(), &aws().emulator.sdk_config().await).expect("the template sets every variable")
}

async fn record(order_id: OrderId) -> OrderRecord {
    given_the_deployed_consumer().await.records.load("email", order_id).await.unwrap()
}

/// Whether the order is free (nobody holds it) and nothing of it was sent.
async fn untouched(order_id: OrderId) -> bool {
    let now = chrono::Utc::now().timestamp_millis();
    let record = record(order_id).await;
    record.applied.is_empty() && !record.is_leased(now)
}

/// Delivers each body in a batch of its own, as separate messages arrive; the failed ids.
async fn deliver(bodies: &[String], dlq: &MemoryDeadLetters) -> Vec<String> {
    let consumer = given_the_deployed_consumer().await;
    let mut failed = Vec::new();
    for body in bodies {
        let now = chrono::Utc::now().timestamp_millis();
        let batch = sqs_batch(std::slice::from_ref(body));
        failed.extend(failed_ids(&handle_batch(&consumer, dlq, &batch, now, now + 10_000).await));
    }
    failed
}

fn stages(stages: &[Stage]) -> Stages {
    stages.iter().copied().collect()
}

#[tokio::test]
async fn a_seeded_customer_is_found_by_id_and_an_unknown_one_is_not() {
    let customers = given_the_deployed_consumer().await.customers;
    let ada = customers.find(&"cust-ada".into()).await.unwrap();
    assert_eq!(ada, Some(Customer { email: "ada@example.com".into(), name: "Ada Lovelace".into() }));
    assert_eq!(customers.find(&"cust-nobody".into()).await.unwrap(), None);
}

#[tokio::test]
async fn ses_accepts_the_receipt_and_the_record_makes_the_redelivery_a_duplicate() {
    let _serial = testkit::serial().await;
    let event = order_placed("cust-ada", &[("MUG", 2, 1250)]);
    let dlq = MemoryDeadLetters::default();
    let body = eventbridge_body(&event);
    assert!(deliver(&[body.clone(), body], &dlq).await.is_empty());
    assert!(dlq.sent().is_empty());
    let record = record(event.order_id).await;
    assert_eq!((record.applied, record.revision, record.lease_until_ms), (stages(&[Stage::Placed]), 2, None));
}

#[tokio::test]
async fn in_order_the_receipt_then_the_cancellation_notice_are_each_sent_and_recorded_once() {
    let _serial = testkit::serial().await;
    let placed = order_placed("cust-grace", &[("TEE", 1, 2000)]);
    let (receipt, cancelled) = (eventbridge_body(&placed), eventbridge_body(&order_cancelled(&placed)));
    let dlq = MemoryDeadLetters::default();
    assert!(deliver(&[receipt.clone(), cancelled.clone(), receipt, cancelled], &dlq).await.is_empty());
    assert!(dlq.sent().is_empty());
    let record = record(placed.order_id).await;
    // Two sends, each a claim and a completion; the duplicates wrote nothing.
    assert_eq!((record.applied, record.revision), (stages(&[Stage::Placed, Stage::Cancelled]), 4));
}

#[tokio::test]
async fn ses_accepts_the_shipping_notice_and_it_is_recorded_once() {
    let _serial = testkit::serial().await;
    let placed = order_placed("cust-ada", &[("MUG", 1, 1250)]);
    let shipped = eventbridge_body(&order_shipped(&placed));
    let dlq = MemoryDeadLetters::default();
    assert!(deliver(&[shipped.clone(), eventbridge_body(&placed), shipped], &dlq).await.is_empty());
    assert_eq!(record(placed.order_id).await.applied, stages(&[Stage::Placed, Stage::Shipped]));
}

#[tokio::test]
async fn a_cancellation_before_its_order_leaves_a_tombstone_and_the_receipt_is_never_sent() {
    let _serial = testkit::serial().await;
    let placed = order_placed("cust-ada", &[("MUG", 1, 1250)]);
    let dlq = MemoryDeadLetters::default();
    assert!(deliver(&[eventbridge_body(&order_cancelled(&placed))], &dlq).await.is_empty());
    let tombstone = record(placed.order_id).await;
    assert_eq!(tombstone.applied, stages(&[Stage::Cancelled]));
    assert!(deliver(&[eventbridge_body(&placed)], &dlq).await.is_empty(), "skipped, not failed");
    assert_eq!(record(placed.order_id).await, tombstone, "the skipped receipt claimed nothing and sent nothing");
    assert!(dlq.sent().is_empty());
}

#[tokio::test]
async fn an_unknown_customer_is_dead_lettered_at_once_and_leaves_the_event_free_for_a_redrive() {
    let consumer = given_the_deployed_consumer().await;
    let event = order_placed("cust-nobody", &[("MUG", 1, 1250)]);
    let now = chrono::Utc::now().timestamp_millis();
    let dlq = MemoryDeadLetters::default();
    let batch = sqs_batch(&[eventbridge_body(&event)]);
    assert!(failed_ids(&handle_batch(&consumer, &dlq, &batch, now, now + 10_000).await).is_empty());
    assert_eq!(dlq.message_ids(), vec!["m0"]);
    assert!(untouched(event.order_id).await, "released for a redrive");
}

#[tokio::test]
async fn a_sender_ses_has_not_verified_is_refused_and_the_event_released() {
    let mut consumer = given_the_deployed_consumer().await;
    consumer.mailer.from = "nobody@unverified.example".into();
    let event = order_placed("cust-grace", &[("TEE", 1, 2000)]);
    let now = chrono::Utc::now().timestamp_millis();
    let dlq = MemoryDeadLetters::default();
    let batch = sqs_batch(&[eventbridge_body(&event)]);
    assert_eq!(failed_ids(&handle_batch(&consumer, &dlq, &batch, now, now + 10_000).await), vec!["m0"]);
    assert!(dlq.sent().is_empty(), "a refused send may be cured (a sender verified later): retried, not dead-lettered");
    assert!(untouched(event.order_id).await, "released for the retry");
}
