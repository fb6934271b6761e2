//! Email, specified: one receipt per order, to the address on file, never two for one event.

use email::memory::{MemoryCustomers, MemoryMailer};
use email::Email;
use shared::adapters::memory::MemoryProcessed;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::ports::ErrorKind;
use shared::testing::{
    eventbridge_body, failed_ids, order_placed, order_placed_records, poison_ids, sample_batch, sqs_batch,
};

const NOW: i64 = 1_800_000_000_000;

type Subject = Email<MemoryCustomers, MemoryMailer, MemoryProcessed>;

/// The consumer and its dead-letter queue.
type Given = shared::testing::Given<Subject>;

fn given_customers(customers: MemoryCustomers) -> Given {
    let consumer = Email { customers, mailer: MemoryMailer::default(), markers: MemoryProcessed::default() };
    Given { consumer, dlq: MemoryDeadLetters::default() }
}

fn given_ada_and_grace() -> Given {
    given_customers(MemoryCustomers::default().with("ada", "ada@example.com", "Ada Lovelace").with(
        "grace",
        "grace@example.com",
        "Grace Hopper",
    ))
}

async fn deliver(given: &Given, bodies: &[String]) -> Vec<String> {
    failed_ids(&handle_batch(&given.consumer, &given.dlq, &sqs_batch(bodies), NOW, NOW + 10_000).await)
}

fn recipients(consumer: &Given) -> Vec<String> {
    consumer.mailer.sent().into_iter().map(|m| m.to).collect()
}

#[tokio::test]
async fn an_order_sends_one_receipt_to_the_address_on_file() {
    let consumer = given_ada_and_grace();
    let event = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2099)]);
    assert!(deliver(&consumer, &[eventbridge_body(&event)]).await.is_empty());
    let sent = consumer.mailer.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].to, "ada@example.com");
    assert!(sent[0].subject.contains(&event.order_id.to_string()));
    assert!(sent[0].text.contains("Total: 45.99 EUR"));
}

#[tokio::test]
async fn a_duplicate_delivery_sends_no_second_receipt() {
    let consumer = given_ada_and_grace();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1250)]));
    deliver(&consumer, std::slice::from_ref(&body)).await;
    assert!(deliver(&consumer, &[body]).await.is_empty(), "a duplicate is skipped, not failed");
    assert_eq!(consumer.mailer.sent().len(), 1);
}

#[tokio::test]
async fn ten_concurrent_deliveries_send_one_receipt() {
    let consumer = given_ada_and_grace();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1250)]));
    let runs = (0..10).map(|_| deliver(&consumer, std::slice::from_ref(&body)));
    let failures: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    assert_eq!(consumer.mailer.sent().len(), 1);
    // The others found the lease held and were told to come back; when they do, they skip.
    assert_eq!(failures, 9);
    assert!(deliver(&consumer, &[body]).await.is_empty());
    assert_eq!(consumer.mailer.sent().len(), 1);
}

#[tokio::test]
async fn an_unknown_customer_is_dead_lettered_at_once_and_not_retried() {
    let consumer = given_ada_and_grace();
    let bodies = [
        eventbridge_body(&order_placed("ada", &[("MUG", 1, 1250)])),
        eventbridge_body(&order_placed("ghost", &[("MUG", 1, 1250)])),
        eventbridge_body(&order_placed("grace", &[("MUG", 1, 1250)])),
    ];
    assert!(deliver(&consumer, &bodies).await.is_empty(), "reported handled, so SQS deletes it: no receive is spent");
    assert_eq!(recipients(&consumer), vec!["ada@example.com", "grace@example.com"]);
    let dead = consumer.dlq.sent();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].source_message_id, "m1");
    assert_eq!(dead[0].body.as_deref(), Some(bodies[1].as_str()));
    assert_eq!(dead[0].kind, ErrorKind::Permanent);
    assert!(dead[0].reason.contains("ghost"), "{}", dead[0].reason);
}

#[tokio::test]
async fn a_customer_without_a_valid_address_is_dead_lettered_at_once() {
    let consumer = given_customers(MemoryCustomers::default().with("blank", "", "Blank").with("typo", "ada@", "Typo"));
    let bodies = [
        eventbridge_body(&order_placed("blank", &[("MUG", 1, 1250)])),
        eventbridge_body(&order_placed("typo", &[("MUG", 1, 1250)])),
    ];
    assert!(deliver(&consumer, &bodies).await.is_empty());
    assert!(consumer.mailer.sent().is_empty());
    assert_eq!(consumer.dlq.message_ids(), vec!["m0", "m1"]);
    assert!(consumer.dlq.sent().iter().all(|d| d.kind == ErrorKind::Permanent && d.reason.contains("address")));
}

#[tokio::test]
async fn a_permanent_failure_the_dlq_refuses_is_retried_by_sqs_instead() {
    let consumer = given_ada_and_grace();
    consumer.dlq.fail_next(1);
    let ghost = eventbridge_body(&order_placed("ghost", &[("MUG", 1, 1250)]));
    assert_eq!(deliver(&consumer, std::slice::from_ref(&ghost)).await, vec!["m0"], "never lost");
    assert!(deliver(&consumer, &[ghost]).await.is_empty(), "the next receive dead-letters it");
    assert_eq!(consumer.dlq.message_ids(), vec!["m0"]);
}

#[test]
fn plausible_addresses() {
    for good in ["ada@example.com", "a.b+c@mail.example.co.uk"] {
        assert!(email::is_plausible_address(good), "{good}");
    }
    for bad in
        ["", "ada", "ada@", "@example.com", "ada@example", "ada@@example.com", "ada @example.com", "ada@example..com"]
    {
        assert!(!email::is_plausible_address(bad), "{bad}");
    }
}

#[tokio::test]
async fn a_failed_send_is_sent_by_the_retry_and_only_once() {
    let consumer = given_ada_and_grace();
    consumer.mailer.fail_next(1);
    let body = eventbridge_body(&order_placed("grace", &[("TEE", 1, 2000)]));
    assert_eq!(deliver(&consumer, std::slice::from_ref(&body)).await, vec!["m0"]);
    assert!(consumer.mailer.sent().is_empty());
    assert!(
        deliver(&consumer, std::slice::from_ref(&body)).await.is_empty(),
        "the claim was released, so the retry sends"
    );
    assert!(deliver(&consumer, &[body]).await.is_empty());
    assert_eq!(recipients(&consumer), vec!["grace@example.com"]);
}

#[tokio::test]
async fn a_poison_record_next_to_a_good_one_is_dead_lettered_alone() {
    let consumer = given_ada_and_grace();
    let good = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1250)]));
    assert!(deliver(&consumer, &["{\"not\": \"an event\"}".to_owned(), good]).await.is_empty());
    assert_eq!(consumer.dlq.message_ids(), vec!["m0"]);
    assert_eq!(recipients(&consumer), vec!["ada@example.com"]);
}

/// Customers for every order in a sample, so that each of its good records can succeed.
fn given_customers_of(batch: &aws_lambda_events::event::sqs::SqsEvent) -> Given {
    let customers =
        order_placed_records(batch).into_iter().fold(MemoryCustomers::default(), |customers, (_, event)| {
            let id = event.data.customer_id.as_str().to_owned();
            customers.with(&id, &format!("{id}@example.com"), "Sample Customer")
        });
    given_customers(customers)
}

#[tokio::test]
async fn the_sample_event_sends_its_receipts_without_failures() {
    let batch = sample_batch("email-order-placed.json");
    let consumer = given_customers_of(&batch);
    assert!(!batch.records.is_empty());
    assert!(failed_ids(&handle_batch(&consumer.consumer, &consumer.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(consumer.mailer.sent().len(), batch.records.len());
    assert!(consumer.dlq.sent().is_empty());
}

#[tokio::test]
async fn the_poison_sample_dead_letters_only_its_bad_records() {
    let batch = sample_batch("consumer-poison.json");
    let consumer = given_customers_of(&batch);
    let poison = poison_ids(&batch);
    assert!(!poison.is_empty(), "the poison sample carries at least one bad record");
    assert!(failed_ids(&handle_batch(&consumer.consumer, &consumer.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    assert_eq!(consumer.dlq.message_ids(), poison);
    assert_eq!(consumer.mailer.sent().len(), batch.records.len() - poison.len());
}
