//! The e-mail adapters against the local emulator (moto server), built from the template's
//! environment of EmailFunction exactly as Lambda builds them.

use email::dynamo::DynamoCustomers;
use email::{Customer, Customers, Email};
use shared::adapters::dynamodb::DynamoProcessedEvents;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::config::Env;
use shared::consumer::{handle_batch, Delivery};
use shared::ports::{Lease, ProcessedEvents};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};

use testkit::shared as aws;

fn env() -> Env {
    Env(aws().stack.function("EmailFunction").environment.clone())
}

async fn given_the_deployed_consumer() -> Email<DynamoCustomers, email::ses::SesMailer, DynamoProcessedEvents> {
    Email::from_env(&env(), &aws().emulator.sdk_config().await).expect("the template sets every variable")
}

/// Whether the event's marker is free to claim (nobody processed it, nobody holds it).
async fn unclaimed(event_id: shared::domain::EventId) -> bool {
    let now = chrono::Utc::now().timestamp_millis();
    let marker = Delivery { message_id: String::new(), receive_count: 1, now_ms: now, deadline_ms: now }
        .marker("email", event_id);
    let markers = given_the_deployed_consumer().await.markers;
    let lease = markers.claim(&marker, now, now + 1).await.unwrap();
    markers.release(&marker).await.unwrap();
    lease == Lease::Acquired
}

#[tokio::test]
async fn a_seeded_customer_is_found_by_id_and_an_unknown_one_is_not() {
    let customers = given_the_deployed_consumer().await.customers;
    let ada = customers.find(&"cust-ada".into()).await.unwrap();
    assert_eq!(ada, Some(Customer { email: "ada@example.com".into(), name: "Ada Lovelace".into() }));
    assert_eq!(customers.find(&"cust-nobody".into()).await.unwrap(), None);
}

#[tokio::test]
async fn ses_accepts_the_receipt_and_the_marker_makes_the_redelivery_a_duplicate() {
    let consumer = given_the_deployed_consumer().await;
    let event = order_placed("cust-ada", &[("MUG", 2, 1250)]);
    let now = chrono::Utc::now().timestamp_millis();
    let batch = sqs_batch(&[eventbridge_body(&event)]);
    let dlq = MemoryDeadLetters::default();
    assert!(failed_ids(&handle_batch(&consumer, &dlq, &batch, now, now + 10_000).await).is_empty());
    assert!(failed_ids(&handle_batch(&consumer, &dlq, &batch, now, now + 10_000).await).is_empty());
    assert!(dlq.sent().is_empty());
    let marker = Delivery { message_id: String::new(), receive_count: 1, now_ms: now, deadline_ms: now }
        .marker("email", event.event_id);
    assert_eq!(consumer.markers.claim(&marker, now, now + 1).await, Ok(Lease::AlreadyProcessed));
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
    assert!(unclaimed(event.event_id).await);
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
    assert!(unclaimed(event.event_id).await);
}
