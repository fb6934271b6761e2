//! Loyalty on the template's wiring in the local emulator: `order.placed` put on the bus goes
//! through the rule's real pattern to LoyaltyQueue; the consumer built from the template's
//! environment credits it once, however often it is delivered; a consumer that keeps failing
//! leaves the message to the queue's redrive policy, which moves it to the DLQ after 3 receives;
//! an order and its cancellation, in either order of arrival, leave no points and no entry.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use loyalty::Loyalty;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::config::Env;
use shared::consumer::handle_batch;
use shared::out_of_order::{Stage, Stages};
use shared::testing::{deliver_each, eventbridge_body, failed_ids, order_cancelled, order_placed, sqs_message};
use std::time::{Duration, Instant};

use testkit::shared as aws;

/// Both tests read LoyaltyQueue; a receive by one would hide (and count) the other's message.
static QUEUE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn config() -> aws_config::SdkConfig {
    aws().emulator.sdk_config().await
}

fn env() -> Env {
    Env(aws().stack.function("LoyaltyFunction").environment.clone())
}

async fn put_on_bus(detail: &str) {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(aws().stack.output("EventBusName"))
        .source("shop.checkout")
        .detail_type("order.placed")
        .detail(detail)
        .build();
    let out = aws_sdk_eventbridge::Client::new(&config().await).put_events().entries(entry).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0);
}

/// Receives the messages of `order_id` from `queue` within `patience`; `hide` is the visibility timeout.
async fn receive_within(
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    order_id: &str,
    hide: i32,
    patience: Duration,
) -> Vec<Message> {
    let deadline = Instant::now() + patience;
    loop {
        let out = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .visibility_timeout(hide)
            .wait_time_seconds(1)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .send()
            .await
            .unwrap();
        let mine: Vec<Message> = out
            .messages
            .unwrap_or_default()
            .into_iter()
            .filter(|m| m.body().is_some_and(|b| b.contains(order_id)))
            .collect();
        if !mine.is_empty() || Instant::now() > deadline {
            return mine;
        }
    }
}

async fn receive(sqs: &aws_sdk_sqs::Client, queue: &str, order_id: &str, hide: i32) -> Vec<Message> {
    receive_within(sqs, queue, order_id, hide, Duration::from_secs(10)).await
}

/// Runs the consumer on received messages as the event source does, deleting the successes.
async fn deliver(
    consumer: &Loyalty<loyalty::dynamo::DynamoLedger>,
    sqs: &aws_sdk_sqs::Client,
    queue: &str,
    messages: &[Message],
) -> Vec<String> {
    let mut batch = aws_lambda_events::event::sqs::SqsEvent::default();
    batch.records = messages
        .iter()
        .map(|m| {
            let count = m.attributes().and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount));
            sqs_message(m.message_id().unwrap(), m.body().unwrap(), count.and_then(|c| c.parse().ok()).unwrap_or(1))
        })
        .collect();
    let now = chrono::Utc::now().timestamp_millis();
    let failed = failed_ids(&handle_batch(consumer, &MemoryDeadLetters::default(), &batch, now, now + 10_000).await);
    for m in messages.iter().filter(|m| !failed.iter().any(|f| Some(f.as_str()) == m.message_id())) {
        sqs.delete_message().queue_url(queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    failed
}

async fn points(customer: &str) -> i64 {
    let item = aws_sdk_dynamodb::Client::new(&config().await)
        .get_item()
        .table_name(aws().stack.output("LoyaltyTableName"))
        .key("customerId", AttributeValue::S(customer.into()))
        .key("entry", AttributeValue::S("BALANCE".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    item.and_then(|i| i.get("points").and_then(|p| p.as_n().ok()).and_then(|p| p.parse().ok())).unwrap_or(0)
}

#[tokio::test]
async fn an_order_on_the_bus_is_credited_once_even_when_delivered_twice() {
    let _serial = testkit::serial().await;
    let _queue = QUEUE.lock().await;
    let consumer = Loyalty::from_env(&env(), &config().await).unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config().await);
    let queue = aws().stack.output("LoyaltyQueueUrl");
    let customer = format!("cust-{}", ulid::Ulid::new());
    let event = order_placed(&customer, &[("MUG", 2, 1250), ("TEE", 1, 2099)]);
    let detail = serde_json::to_string(&event).unwrap();

    put_on_bus(&detail).await;
    let first = receive(&sqs, queue, &event.order_id.to_string(), 30).await;
    assert_eq!(first.len(), 1, "the rule delivered the event to LoyaltyQueue");
    assert!(deliver(&consumer, &sqs, queue, &first).await.is_empty());
    assert_eq!(points(&customer).await, 45);

    // At-least-once: the same event again (a retry, a replay), with a new EventBridge id.
    put_on_bus(&detail).await;
    let again = receive(&sqs, queue, &event.order_id.to_string(), 30).await;
    assert_eq!(again.len(), 1);
    assert!(deliver(&consumer, &sqs, queue, &again).await.is_empty(), "a duplicate is skipped, not failed");
    assert_eq!(points(&customer).await, 45, "credited once");
}

#[tokio::test]
async fn a_consumer_that_keeps_failing_leaves_the_event_intact_in_its_dead_letter_queue() {
    let _serial = testkit::serial().await;
    let _queue = QUEUE.lock().await;
    // A consumer whose ledger table does not exist fails every delivery: a fault of configuration.
    let mut broken = env();
    broken.0.insert("LOYALTY_TABLE".into(), "no-such-table".into());
    let consumer = Loyalty::from_env(&broken, &config().await).unwrap();
    let sqs = aws_sdk_sqs::Client::new(&config().await);
    let (queue, dlq) = (aws().stack.output("LoyaltyQueueUrl"), aws().stack.output("LoyaltyDeadLetterQueueUrl"));
    let event = order_placed("cust-ada", &[("MUG", 1, 1000)]);
    let order = event.order_id.to_string();
    put_on_bus(&serde_json::to_string(&event).unwrap()).await;

    for receive_count in 1..=3 {
        // Visibility timeout 0: the failed message is visible again at once, as after a retry delay.
        let messages = receive(&sqs, queue, &order, 0).await;
        assert_eq!(messages.len(), 1, "receive {receive_count}");
        assert_eq!(deliver(&consumer, &sqs, queue, &messages).await.len(), 1, "receive {receive_count} failed");
    }
    let left = receive_within(&sqs, queue, &order, 0, Duration::from_secs(2)).await;
    assert!(left.is_empty(), "after 3 receives the redrive policy moved it");
    let dead = receive(&sqs, dlq, &order, 0).await;
    assert_eq!(dead.len(), 1);
    let body: serde_json::Value = serde_json::from_str(dead[0].body().unwrap()).unwrap();
    assert_eq!(body["detail"], serde_json::to_value(&event).unwrap(), "the original event, intact");
    assert_eq!(points("cust-ada").await, 0);
}

async fn entry_exists(customer: &str, order_id: shared::domain::OrderId) -> bool {
    let out = aws_sdk_dynamodb::Client::new(&config().await)
        .get_item()
        .table_name(aws().stack.output("LoyaltyTableName"))
        .key("customerId", AttributeValue::S(customer.into()))
        .key("entry", AttributeValue::S(format!("ORDER#{order_id}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.item.is_some()
}

async fn applied(consumer: &Loyalty<loyalty::dynamo::DynamoLedger>, order_id: shared::domain::OrderId) -> Stages {
    use loyalty::LoyaltyLedger;
    consumer.ledger.record("loyalty", order_id).await.unwrap().applied
}

#[tokio::test]
async fn a_cancellation_after_its_order_takes_the_credit_back_in_the_same_transaction_as_the_record() {
    let _serial = testkit::serial().await;
    let consumer = Loyalty::from_env(&env(), &config().await).unwrap();
    let customer = format!("cust-{}", ulid::Ulid::new());
    let placed = order_placed(&customer, &[("MUG", 2, 1250), ("TEE", 1, 2099)]);
    let cancelled = eventbridge_body(&order_cancelled(&placed));

    assert!(deliver_each(&consumer, &[eventbridge_body(&placed)]).await.is_empty());
    assert_eq!((points(&customer).await, entry_exists(&customer, placed.order_id).await), (45, true));
    assert!(deliver_each(&consumer, &[cancelled.clone(), cancelled]).await.is_empty(), "the duplicate is skipped");
    assert_eq!((points(&customer).await, entry_exists(&customer, placed.order_id).await), (0, false));
    assert_eq!(applied(&consumer, placed.order_id).await, [Stage::Placed, Stage::Cancelled].into_iter().collect());
}

#[tokio::test]
async fn a_cancellation_before_its_order_leaves_a_tombstone_and_the_order_credits_nothing() {
    let _serial = testkit::serial().await;
    let consumer = Loyalty::from_env(&env(), &config().await).unwrap();
    let customer = format!("cust-{}", ulid::Ulid::new());
    let placed = order_placed(&customer, &[("MUG", 2, 1250)]);

    assert!(deliver_each(&consumer, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    assert_eq!(points(&customer).await, 0, "no reversal of a credit that never happened");
    assert_eq!(applied(&consumer, placed.order_id).await, [Stage::Cancelled].into_iter().collect());
    assert!(deliver_each(&consumer, &[eventbridge_body(&placed)]).await.is_empty(), "skipped, not failed");
    assert_eq!((points(&customer).await, entry_exists(&customer, placed.order_id).await), (0, false));
    assert_eq!(applied(&consumer, placed.order_id).await, [Stage::Cancelled].into_iter().collect());
}
