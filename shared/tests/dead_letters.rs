//! Dead-lettering against the local emulator (moto server): the harness with the SQS adapter,
//! built from EmailFunction's environment in template.yaml exactly as `serve` builds it, sends
//! poison and permanent failures straight to the Email dead-letter queue. One emulator and
//! stack per test binary; each test finds its own messages by a marker in the body.

use aws_lambda_events::event::sqs::SqsMessageAttribute;
use aws_sdk_sqs::types::Message;
use shared::adapters::sqs::{SqsDeadLetters, ERROR_KIND, ERROR_REASON};
use shared::config::Env;
use shared::consumer::{handle_batch, Consumer, ConsumerError, Delivery, Outcome};
use shared::events::{Envelope, OrderPlacedV2};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};
use std::time::{Duration, Instant};

use testkit::shared as aws;

fn email_env() -> Env {
    Env(aws().stack.function("EmailFunction").environment.clone())
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&aws().emulator.sdk_config().await)
}

async fn email_dead_letters() -> SqsDeadLetters {
    SqsDeadLetters::from_env(&email_env(), &aws().emulator.sdk_config().await)
        .expect("the template gives EmailFunction DEAD_LETTER_QUEUE_URL")
}

/// Fails every order of customer "ghost" permanently; processes the others.
struct Strict;

#[async_trait::async_trait]
impl Consumer for Strict {
    type Event = OrderPlacedV2;
    const NAME: &'static str = "strict";
    async fn handle(&self, event: &Envelope<OrderPlacedV2>, _: &Delivery) -> Result<Outcome, ConsumerError> {
        if event.data.customer_id.as_str() == "ghost" {
            return Err(ConsumerError::Permanent(format!("customer {} does not exist", event.data.customer_id)));
        }
        Ok(Outcome::Processed)
    }
}

/// The messages in the Email DLQ whose body contains `needle`, waiting up to 10 s for one.
async fn dead_lettered(needle: &str) -> Vec<Message> {
    let client = sqs().await;
    let url = email_env().get("DEAD_LETTER_QUEUE_URL").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = Vec::new();
    loop {
        let out = client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for message in out.messages.unwrap_or_default() {
            let mine = message.body().is_some_and(|b| b.contains(needle));
            let handle = message.receipt_handle().unwrap().to_owned();
            if mine {
                found.push(message);
                client.delete_message().queue_url(&url).receipt_handle(handle).send().await.unwrap();
            } else {
                // Another test's: make it visible again at once.
                client
                    .change_message_visibility()
                    .queue_url(&url)
                    .receipt_handle(handle)
                    .visibility_timeout(0)
                    .send()
                    .await
                    .unwrap();
            }
        }
        if !found.is_empty() || Instant::now() > deadline {
            return found;
        }
    }
}

fn attribute(message: &Message, name: &str) -> Option<String> {
    message.message_attributes()?.get(name)?.string_value().map(str::to_owned)
}

#[tokio::test]
async fn the_template_points_each_consumer_at_its_own_dead_letter_queue() {
    let stack = &aws().stack;
    for concern in ["Email", "Inventory", "Analytics", "Loyalty", "Recommendations"] {
        let env = &stack.function(&format!("{concern}Function")).environment;
        assert_eq!(
            env.get("DEAD_LETTER_QUEUE_URL").map(String::as_str),
            Some(stack.output(&format!("{concern}DeadLetterQueueUrl"))),
            "{concern}"
        );
    }
}

#[tokio::test]
async fn a_poison_message_lands_in_the_email_dlq_at_once_with_its_body_and_kind() {
    let dead_letters = email_dead_letters().await;
    let needle = format!("poison-{}", ulid::Ulid::new());
    let body = format!("{{\"not\": \"an event\", \"needle\": \"{needle}\"}}");
    let mut batch = sqs_batch(std::slice::from_ref(&body));
    let mut tenant = SqsMessageAttribute::default();
    tenant.data_type = Some("String".into());
    tenant.string_value = Some("eu-shop".into());
    batch.records[0].message_attributes.insert("Tenant".into(), tenant);
    let now = chrono::Utc::now().timestamp_millis();

    let response = handle_batch(&Strict, &dead_letters, &batch, now, now + 10_000).await;
    assert!(failed_ids(&response).is_empty(), "not reported failed, so SQS deletes it from the source queue");

    let found = dead_lettered(&needle).await;
    assert_eq!(found.len(), 1, "exactly one copy in the DLQ");
    assert_eq!(found[0].body(), Some(body.as_str()), "the body is intact");
    assert_eq!(attribute(&found[0], ERROR_KIND).as_deref(), Some("permanent"));
    assert!(attribute(&found[0], ERROR_REASON).is_some_and(|r| r.starts_with("poison: ")));
    assert_eq!(attribute(&found[0], "Tenant").as_deref(), Some("eu-shop"), "its message attributes are kept");
}

#[tokio::test]
async fn a_permanent_failure_lands_in_the_email_dlq_and_its_neighbours_are_processed() {
    let dead_letters = email_dead_letters().await;
    let ghost = eventbridge_body(&order_placed("ghost", &[("MUG", 1, 1250)]));
    let needle = serde_json::from_str::<serde_json::Value>(&ghost).unwrap()["detail"]["eventId"]
        .as_str()
        .expect("the envelope carries an eventId")
        .to_owned();
    let batch = sqs_batch(&[eventbridge_body(&order_placed("ada", &[("MUG", 1, 1250)])), ghost.clone()]);
    let now = chrono::Utc::now().timestamp_millis();

    assert!(failed_ids(&handle_batch(&Strict, &dead_letters, &batch, now, now + 10_000).await).is_empty());

    let found = dead_lettered(&needle).await;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].body(), Some(ghost.as_str()));
    assert_eq!(attribute(&found[0], ERROR_KIND).as_deref(), Some("permanent"));
    assert_eq!(attribute(&found[0], ERROR_REASON).as_deref(), Some("customer ghost does not exist"));
}

#[tokio::test]
async fn when_the_dlq_cannot_be_reached_the_message_is_reported_failed_and_kept() {
    let missing = format!("{}-no-such-queue", email_dead_letters().await.queue_url());
    let dead_letters = SqsDeadLetters::new(sqs().await, missing);
    let batch = sqs_batch(&["not json".to_owned()]);
    let now = chrono::Utc::now().timestamp_millis();
    let response = handle_batch(&Strict, &dead_letters, &batch, now, now + 10_000).await;
    assert_eq!(failed_ids(&response), vec!["m0"], "it stays in the source queue and reaches the DLQ after 3 receives");
}
