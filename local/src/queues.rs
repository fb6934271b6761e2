//! The consumers' queues as the dashboard shows them, read from the emulator: depths, the
//! messages a dead-letter queue holds (peeked, never consumed), and redrive.
//!
//! Redrive here is the local stand-in for SQS's `StartMessageMoveTask`, which moto does not
//! implement: the same semantics as `tools/localstack.py redrive` (each message sent back to the
//! consumer's queue before it is deleted from the DLQ, so a crash duplicates at worst, never
//! loses one; the consumers are idempotent), keeping the message attributes as the move task
//! does. The operations CLI (`ops/`, `shop-ops dlq redrive`) ports the same function to Rust;
//! once it is in the workspace the two should become one.

use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName};
use aws_sdk_sqs::Client;
use serde::Serialize;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// How long a message being moved stays hidden in the DLQ: long enough to send it on and
/// delete it; if the move stops half-way, it reappears in the DLQ after this.
pub const MOVE_VISIBILITY: Duration = Duration::from_secs(30);
/// Messages a peek shows (one ReceiveMessage's worth).
pub const PEEK_MAX: i32 = 10;

pub type QueueError = Box<dyn std::error::Error + Send + Sync>;

fn sdk<E: std::error::Error + Send + Sync + 'static>(e: aws_sdk_sqs::error::SdkError<E>) -> QueueError {
    aws_sdk_sqs::error::DisplayErrorContext(e).to_string().into()
}

/// Messages waiting (visible) and being handled (in flight) in a queue.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Depth {
    pub visible: i64,
    pub in_flight: i64,
}

impl Depth {
    pub fn total(&self) -> i64 {
        self.visible + self.in_flight
    }
}

pub async fn depth(sqs: &Client, queue_url: &str) -> Result<Depth, QueueError> {
    let out = sqs
        .get_queue_attributes()
        .queue_url(queue_url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(sdk)?;
    let attributes = out.attributes.unwrap_or_default();
    let count = |name| attributes.get(&name).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    Ok(Depth {
        visible: count(QueueAttributeName::ApproximateNumberOfMessages),
        in_flight: count(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
    })
}

/// A dead-lettered message, as an operator reads it: which event, and why it is there.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    pub message_id: String,
    pub event_type: Option<String>,
    pub event_id: Option<String>,
    pub order_id: Option<String>,
    pub correlation_id: Option<String>,
    /// Set by the consumer's harness when it dead-letters a message itself (`permanent`);
    /// absent when SQS moved it after `maxReceiveCount` receives.
    pub error_kind: Option<String>,
    pub error_reason: Option<String>,
    /// When it was sent to the DLQ (Unix milliseconds).
    pub sent_at: Option<i64>,
}

/// What an operator reads from a message: our envelope's IDs from the EventBridge event in its
/// body, the harness's `ErrorKind`/`ErrorReason` attributes.
pub fn dead_letter(message: &aws_sdk_sqs::types::Message) -> DeadLetter {
    let body: Option<Value> = message.body().and_then(|b| serde_json::from_str(b).ok());
    let detail = body.as_ref().and_then(|b| b.get("detail"));
    let field = |name: &str| detail.and_then(|d| d.get(name)).and_then(Value::as_str).map(str::to_owned);
    let attribute = |name: &str| {
        message.message_attributes().and_then(|a| a.get(name)).and_then(|v| v.string_value()).map(str::to_owned)
    };
    DeadLetter {
        message_id: message.message_id().unwrap_or_default().to_owned(),
        event_type: field("type")
            .or_else(|| body.as_ref().and_then(|b| b.get("detail-type")).and_then(Value::as_str).map(str::to_owned)),
        event_id: field("eventId"),
        order_id: field("orderId"),
        correlation_id: field("correlationId"),
        error_kind: attribute(shared::adapters::sqs::ERROR_KIND),
        error_reason: attribute(shared::adapters::sqs::ERROR_REASON),
        sent_at: message
            .attributes()
            .and_then(|a| a.get(&MessageSystemAttributeName::SentTimestamp))
            .and_then(|t| t.parse().ok()),
    }
}

/// Up to [`PEEK_MAX`] messages of a queue, read without taking them: received with a visibility
/// timeout of 0, so they stay visible to everyone else (each read counts as a receive, which
/// a dead-letter queue, having no redrive policy of its own, does not act on).
pub async fn peek(sqs: &Client, queue_url: &str) -> Result<Vec<DeadLetter>, QueueError> {
    let out = sqs
        .receive_message()
        .queue_url(queue_url)
        .max_number_of_messages(PEEK_MAX)
        .visibility_timeout(0)
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .message_attribute_names("All")
        .send()
        .await
        .map_err(sdk)?;
    let mut letters: Vec<DeadLetter> = out.messages.unwrap_or_default().iter().map(dead_letter).collect();
    letters.sort_by(|a, b| (a.sent_at, &a.message_id).cmp(&(b.sent_at, &b.message_id)));
    letters.dedup_by(|a, b| a.message_id == b.message_id);
    Ok(letters)
}

/// Moves the messages `dlq_url` holds when it starts back to `queue_url`, body and attributes
/// unchanged, each sent before it is deleted; the number moved. Messages dead-lettered again
/// while it runs (a cause not yet fixed) are left for the next redrive, so it always ends.
pub async fn redrive(sqs: &Client, dlq_url: &str, queue_url: &str) -> Result<usize, QueueError> {
    let mut left = depth(sqs, dlq_url).await?.total();
    let mut moved = 0;
    while left > 0 {
        let out = sqs
            .receive_message()
            .queue_url(dlq_url)
            .max_number_of_messages(left.min(10) as i32)
            .visibility_timeout(MOVE_VISIBILITY.as_secs() as i32)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sdk)?;
        let messages = out.messages.unwrap_or_default();
        if messages.is_empty() {
            break;
        }
        for message in &messages {
            let attributes: HashMap<String, MessageAttributeValue> =
                message.message_attributes().cloned().unwrap_or_default();
            sqs.send_message()
                .queue_url(queue_url)
                .message_body(message.body().unwrap_or_default())
                .set_message_attributes((!attributes.is_empty()).then_some(attributes))
                .send()
                .await
                .map_err(sdk)?;
            sqs.delete_message()
                .queue_url(dlq_url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(sdk)?;
            moved += 1;
            left -= 1;
        }
    }
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sqs::types::Message;

    fn string(value: &str) -> MessageAttributeValue {
        MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
    }

    #[test]
    fn given_a_message_the_harness_dead_lettered_then_its_event_and_reason_are_read() {
        let body = serde_json::json!({
            "detail-type": "order.placed",
            "detail": {"type": "order.placed", "eventId": "ev-1", "orderId": "ord-1", "correlationId": "corr-1"}
        });
        let message = Message::builder()
            .message_id("m1")
            .body(body.to_string())
            .attributes(MessageSystemAttributeName::SentTimestamp, "1767225600000")
            .message_attributes("ErrorKind", string("permanent"))
            .message_attributes("ErrorReason", string("customer cust-ghost has no e-mail address"))
            .build();
        let letter = dead_letter(&message);
        assert_eq!(
            (letter.event_type.as_deref(), letter.event_id.as_deref(), letter.order_id.as_deref()),
            (Some("order.placed"), Some("ev-1"), Some("ord-1"))
        );
        assert_eq!(letter.correlation_id.as_deref(), Some("corr-1"));
        assert_eq!(letter.error_kind.as_deref(), Some("permanent"));
        assert_eq!(letter.sent_at, Some(1_767_225_600_000));
    }

    #[test]
    fn given_a_message_that_is_not_an_event_then_it_is_shown_with_its_id_only() {
        let letter = dead_letter(&Message::builder().message_id("m2").body("not json").build());
        assert_eq!(letter.message_id, "m2");
        assert_eq!((letter.event_type, letter.order_id, letter.error_kind), (None, None, None));
    }
}
