//! Email, specified: one receipt per order, to the address on file, never two for one event;
//! one shipping notice, one cancellation notice, and no receipt after the cancellation notice
//! whatever order the events arrive in.

use email::memory::{MemoryCustomers, MemoryMailer};
use email::{Email, Notice};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::adapters::memory_records::MemoryOrderRecords;
use shared::consumer::handle_batch;
use shared::out_of_order::Stage;
use shared::ports::ErrorKind;
use shared::testing::{
    eventbridge_body, failed_ids, order_cancelled, order_placed, order_placed_records, order_shipped, poison_ids,
    sample_batch, sqs_batch,
};

const NOW: i64 = 1_800_000_000_000;

type Subject = Email<MemoryCustomers, MemoryMailer, MemoryOrderRecords>;

/// The consumer and its dead-letter queue.
type Given = shared::testing::Given<Subject>;

fn given_customers(customers: MemoryCustomers) -> Given {
    let consumer = Email { customers, mailer: MemoryMailer::default(), records: MemoryOrderRecords::default() };
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
    // The others lost the claim (a conflict, retried in place): each then found the order held
    // and was told to come back, or found the receipt recorded and skipped. Coming back, they skip.
    for _ in 0..failures {
        assert!(deliver(&consumer, std::slice::from_ref(&body)).await.is_empty());
    }
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
async fn the_cancellation_and_shipping_samples_send_their_notices_without_failures() {
    let email = given_customers(MemoryCustomers::default().with("cust-ada", "ada@example.com", "Ada"));
    for file in ["email-order-shipped.json", "email-order-cancelled.json"] {
        let batch = sample_batch(file);
        assert!(!batch.records.is_empty());
        assert!(failed_ids(&handle_batch(&email.consumer, &email.dlq, &batch, NOW, NOW + 10_000).await).is_empty());
    }
    assert!(email.dlq.sent().is_empty());
    assert_eq!(notices(&email), vec![Notice::Shipping, Notice::Cancellation]);
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

// ---- Shipping and cancellation notices, in any order of arrival. ----

fn notices(given: &Given) -> Vec<Notice> {
    given.mailer.sent().into_iter().map(|m| m.notice).collect()
}

#[tokio::test]
async fn a_shipped_order_sends_one_shipping_notice_with_its_tracking_number() {
    let email = given_ada_and_grace();
    let placed = order_placed("ada", &[("MUG", 1, 1250)]);
    let shipped = eventbridge_body(&order_shipped(&placed));
    deliver(&email, &[eventbridge_body(&placed), shipped.clone()]).await;
    assert!(deliver(&email, &[shipped]).await.is_empty(), "a duplicate is skipped, not failed");
    assert_eq!(notices(&email), vec![Notice::Receipt, Notice::Shipping]);
    let notice = &email.mailer.sent()[1];
    assert_eq!(notice.to, "ada@example.com");
    assert!(notice.text.contains("1Z999AA10123456784"), "{}", notice.text);
}

#[tokio::test]
async fn a_cancelled_order_sends_one_cancellation_notice_after_its_receipt() {
    let email = given_ada_and_grace();
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    let cancelled = eventbridge_body(&order_cancelled(&placed));
    deliver(&email, &[eventbridge_body(&placed), cancelled.clone()]).await;
    assert!(deliver(&email, &[cancelled]).await.is_empty());
    assert_eq!(notices(&email), vec![Notice::Receipt, Notice::Cancellation]);
    assert!(email.mailer.sent()[1].text.contains("refunding 25.00 EUR"));
}

#[tokio::test]
async fn a_cancellation_before_the_order_sends_its_notice_and_never_a_receipt() {
    // Given the cancellation arrived first
    let email = given_ada_and_grace();
    let placed = order_placed("ada", &[("MUG", 2, 1250)]);
    assert!(deliver(&email, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    // When order.placed arrives (and again, later)
    let body = eventbridge_body(&placed);
    assert!(deliver(&email, std::slice::from_ref(&body)).await.is_empty(), "skipped, not failed");
    assert!(deliver(&email, &[body]).await.is_empty());
    // Then the customer has the cancellation notice only
    assert_eq!(notices(&email), vec![Notice::Cancellation]);
    assert!(email.dlq.sent().is_empty());
}

#[tokio::test]
async fn a_shipping_notice_arriving_before_the_receipt_does_not_hold_the_receipt_back() {
    let email = given_ada_and_grace();
    let placed = order_placed("ada", &[("MUG", 1, 1250)]);
    deliver(&email, &[eventbridge_body(&order_shipped(&placed)), eventbridge_body(&placed)]).await;
    assert_eq!(notices(&email), vec![Notice::Shipping, Notice::Receipt], "sent as applied");
}

#[tokio::test]
async fn a_receipt_and_a_cancellation_delivered_at_once_never_end_with_a_receipt_after_the_notice() {
    let email = given_ada_and_grace();
    let placed = order_placed("ada", &[("MUG", 1, 1250)]);
    let (p, c) = ([eventbridge_body(&placed)], [eventbridge_body(&order_cancelled(&placed))]);
    let (a, b) = futures::join!(deliver(&email, &p), deliver(&email, &c));
    // One claimed the order; the other, retried in place, found it held and was told to come
    // back (a later receive), or found it free again and went second.
    for (failed, body) in [(a, &p), (b, &c)] {
        if !failed.is_empty() {
            assert!(deliver(&email, body).await.is_empty());
        }
    }
    let sent = notices(&email);
    assert!(
        sent == [Notice::Receipt, Notice::Cancellation] || sent == [Notice::Cancellation],
        "no receipt after the cancellation notice: {sent:?}"
    );
    let record = email.records.get("email", placed.order_id);
    assert!(record.applied.contains(Stage::Cancelled) && record.lease_until_ms.is_none());
}

#[tokio::test]
async fn a_failed_cancellation_notice_leaves_no_tombstone_until_the_retry_sends_it() {
    let email = given_ada_and_grace();
    email.mailer.fail_next(1);
    let placed = order_placed("ada", &[("MUG", 1, 1250)]);
    let cancelled = eventbridge_body(&order_cancelled(&placed));
    assert_eq!(deliver(&email, std::slice::from_ref(&cancelled)).await, vec!["m0"]);
    assert!(!email.records.get("email", placed.order_id).applied.contains(Stage::Cancelled));
    assert!(deliver(&email, &[cancelled, eventbridge_body(&placed)]).await.is_empty());
    assert_eq!(notices(&email), vec![Notice::Cancellation]);
}
