//! Lambda's SQS event source, for one queue → one function:
//! - long-poll the queue; gather up to `batch_size` messages, waiting at most the batching
//!   window once the first message is in hand;
//! - invoke the function with the SQS event Lambda would send;
//! - delete the messages the function did not report in `batchItemFailures`; delete none if
//!   the invocation failed or reported an identifier not in the batch (Lambda's rule);
//! - leave failed messages alone: they reappear after the queue's visibility timeout, and the
//!   queue's redrive policy (moto enforces it) moves them to the DLQ after `maxReceiveCount`.

use crate::invoke::Invoker;
use aws_lambda_events::encodings::Base64Data;
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage, SqsMessageAttribute};
use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::Value;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, watch};

#[derive(Debug, Clone)]
pub struct EventSource {
    /// The function's logical ID in the template, e.g. `LoyaltyFunction`.
    pub function: String,
    pub binary: String,
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: usize,
    pub window: Duration,
    pub timeout: Duration,
}

/// What happened to one message in one invocation, for whoever watches (the demo, tests).
#[derive(Debug, Clone)]
pub struct Observation {
    pub function: String,
    pub message_id: String,
    pub receive_count: u32,
    pub event_id: Option<String>,
    pub order_id: Option<String>,
    /// The EventBridge event's `source` and `detail-type`, when the message carried one.
    pub source: Option<String>,
    pub detail_type: Option<String>,
    /// Our envelope, as the message carried it.
    pub detail: Option<Value>,
    pub succeeded: bool,
}

/// The SQS record Lambda builds from a received message, as `aws_lambda_events`' own type, so
/// that no field Lambda sends can be forgotten: system attributes and message attributes too.
pub fn record(message: &Message, queue_arn: &str, region: &str) -> SqsMessage {
    let owned = |v: Option<&str>| v.map(str::to_owned);
    let mut record = SqsMessage::default();
    record.message_id = owned(message.message_id());
    record.receipt_handle = owned(message.receipt_handle());
    record.body = owned(message.body());
    record.md5_of_body = owned(message.md5_of_body());
    record.md5_of_message_attributes = owned(message.md5_of_message_attributes());
    record.attributes =
        message.attributes().into_iter().flatten().map(|(k, v)| (k.as_str().to_owned(), v.clone())).collect();
    record.message_attributes = message
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let mut attribute = SqsMessageAttribute::default();
            attribute.data_type = Some(value.data_type().to_owned());
            attribute.string_value = owned(value.string_value());
            attribute.binary_value = value.binary_value().map(|b| {
                let mut data = Base64Data::default();
                data.extend_from_slice(b.as_ref());
                data
            });
            (name.clone(), attribute)
        })
        .collect();
    record.event_source = Some("aws:sqs".into());
    record.event_source_arn = Some(queue_arn.to_owned());
    record.aws_region = Some(region.to_owned());
    record
}

/// The message IDs to keep in the queue, from the function's answer.
pub fn failed_ids(batch: &[Message], answer: &Value) -> HashSet<String> {
    let all: HashSet<String> = batch.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect();
    let reported: HashSet<String> = answer
        .get("batchItemFailures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| f["itemIdentifier"].as_str().unwrap_or_default().to_owned())
        .collect();
    // An identifier that is not in the batch fails the whole batch.
    if reported.is_subset(&all) {
        reported
    } else {
        all
    }
}

pub struct Poller {
    pub source: EventSource,
    pub sqs: aws_sdk_sqs::Client,
    pub invoker: Arc<Invoker>,
    pub region: String,
    pub observations: broadcast::Sender<Observation>,
}

impl Poller {
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let batch = tokio::select! {
                batch = self.gather() => batch,
                _ = stop.changed() => return,
            };
            match batch {
                Ok(batch) if batch.is_empty() => {}
                Ok(batch) => self.deliver(batch).await,
                Err(error) => {
                    tracing::warn!(function = self.source.function, %error, "receive failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn receive(&self, max: usize, wait: Duration) -> Result<Vec<Message>, String> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(&self.source.queue_url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .wait_time_seconds(wait.as_secs().min(20) as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        Ok(out.messages.unwrap_or_default())
    }

    async fn gather(&self) -> Result<Vec<Message>, String> {
        let mut batch = self.receive(self.source.batch_size, Duration::from_secs(5)).await?;
        let started = Instant::now();
        while !batch.is_empty() && batch.len() < self.source.batch_size && started.elapsed() < self.source.window {
            let more = self.receive(self.source.batch_size - batch.len(), Duration::ZERO).await?;
            if more.is_empty() {
                tokio::time::sleep(Duration::from_millis(50).min(self.source.window.saturating_sub(started.elapsed())))
                    .await;
            }
            batch.extend(more);
        }
        Ok(batch)
    }

    async fn deliver(&self, batch: Vec<Message>) {
        let mut event = SqsEvent::default();
        event.records = batch.iter().map(|m| record(m, &self.source.queue_arn, &self.region)).collect();
        let event = match serde_json::to_value(event) {
            Ok(event) => event,
            Err(error) => {
                tracing::error!(%error, "an SQS event that does not serialise; the batch returns to the queue");
                return;
            }
        };
        let failed = match self.invoker.invoke(&self.source.binary, event, self.source.timeout).await {
            Ok(answer) => failed_ids(&batch, &answer),
            Err(error) => {
                tracing::warn!(function = self.source.function, %error, "invocation failed; the whole batch returns to the queue");
                batch.iter().filter_map(|m| m.message_id().map(str::to_owned)).collect()
            }
        };
        let done: Vec<&Message> =
            batch.iter().filter(|m| !m.message_id().is_some_and(|id| failed.contains(id))).collect();
        if let Err(error) = self.delete(&done).await {
            // Undeleted messages are delivered again; consumers are idempotent.
            tracing::warn!(function = self.source.function, %error, "could not delete processed messages");
        }
        for message in &batch {
            let _ = self.observations.send(observe(&self.source.function, message, &failed));
        }
    }

    async fn delete(&self, messages: &[&Message]) -> Result<(), String> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    DeleteMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .build()
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<Vec<_>, _>>()?;
            self.sqs
                .delete_message_batch()
                .queue_url(&self.source.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
        }
        Ok(())
    }
}

fn observe(function: &str, message: &Message, failed: &HashSet<String>) -> Observation {
    let event: Option<Value> = message.body().and_then(|b| serde_json::from_str::<Value>(b).ok());
    let of_event = |name: &str| event.as_ref().and_then(|e| e.get(name)?.as_str()).map(str::to_owned);
    let detail: Option<Value> = event.as_ref().and_then(|e| e.get("detail").cloned());
    let field = |name: &str| detail.as_ref().and_then(|d| d[name].as_str()).map(str::to_owned);
    let receive_count = message
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
        .and_then(|c| c.parse().ok())
        .unwrap_or(1);
    Observation {
        function: function.to_owned(),
        message_id: message.message_id().unwrap_or_default().to_owned(),
        receive_count,
        event_id: field("eventId"),
        order_id: field("orderId"),
        source: of_event("source"),
        detail_type: of_event("detail-type"),
        detail: detail.clone(),
        succeeded: !message.message_id().is_some_and(|id| failed.contains(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn batch(ids: &[&str]) -> Vec<Message> {
        ids.iter().map(|id| Message::builder().message_id(*id).receipt_handle(format!("rh-{id}")).build()).collect()
    }

    #[test]
    fn only_reported_failures_stay_in_the_queue() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "b"}]});
        assert_eq!(failed_ids(&batch(&["a", "b", "c"]), &answer), HashSet::from(["b".to_owned()]));
    }

    #[test]
    fn an_answer_without_failures_deletes_everything() {
        assert!(failed_ids(&batch(&["a", "b"]), &json!({"batchItemFailures": []})).is_empty());
        assert!(failed_ids(&batch(&["a"]), &json!(null)).is_empty());
    }

    #[test]
    fn an_unknown_identifier_fails_the_whole_batch() {
        let answer = json!({"batchItemFailures": [{"itemIdentifier": "zzz"}]});
        assert_eq!(failed_ids(&batch(&["a", "b"]), &answer).len(), 2);
    }

    #[test]
    fn a_record_looks_like_what_lambda_sends() {
        let message = Message::builder()
            .message_id("m1")
            .receipt_handle("rh")
            .body("{}")
            .attributes(MessageSystemAttributeName::ApproximateReceiveCount, "2")
            .build();
        let record = serde_json::to_value(record(&message, "arn:aws:sqs:us-east-1:1:q", "us-east-1")).unwrap();
        assert_eq!(record["eventSourceARN"], "arn:aws:sqs:us-east-1:1:q", "Lambda's own spelling");
        let parsed: aws_lambda_events::event::sqs::SqsMessage = serde_json::from_value(record).unwrap();
        assert_eq!(parsed.message_id.as_deref(), Some("m1"));
        assert_eq!(parsed.attributes["ApproximateReceiveCount"], "2");
        assert_eq!(parsed.event_source_arn.as_deref(), Some("arn:aws:sqs:us-east-1:1:q"));
    }

    #[test]
    fn a_record_carries_the_message_attributes() {
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value("permanent")
            .build()
            .unwrap();
        let message = Message::builder().message_id("m1").body("{}").message_attributes("ErrorKind", attribute).build();
        let record = record(&message, "arn:aws:sqs:us-east-1:1:q", "us-east-1");
        let kind = &record.message_attributes["ErrorKind"];
        assert_eq!((kind.data_type.as_deref(), kind.string_value.as_deref()), (Some("String"), Some("permanent")));
    }
}
