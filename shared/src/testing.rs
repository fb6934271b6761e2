//! Fixtures for tests and benchmarks: events as they reach a consumer (an SQS message whose
//! body is an EventBridge event whose detail is our envelope).

use crate::domain::{Currency, CustomerId, OrderId};
use crate::events::{Envelope, EventData, OrderPlacedLine, OrderPlacedV1};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use serde_json::json;

/// An `order.placed` for `customer` with `(sku, quantity, unit price in cents)` lines in EUR.
pub fn order_placed(customer: &str, lines: &[(&str, u32, i64)]) -> Envelope<OrderPlacedV1> {
    let lines: Vec<OrderPlacedLine> = lines
        .iter()
        .map(|(sku, quantity, unit_price)| OrderPlacedLine {
            sku: (*sku).into(),
            quantity: *quantity,
            unit_price: *unit_price,
        })
        .collect();
    let total = lines.iter().map(|l| l.unit_price * i64::from(l.quantity)).sum();
    let data = OrderPlacedV1 { customer_id: CustomerId(customer.to_owned()), lines, total, currency: Currency::EUR };
    Envelope::new(OrderId::new(), 2, "corr-test", Utc::now(), data)
}

/// The EventBridge event EventBridge would deliver for `envelope`.
pub fn eventbridge_body<D: EventData>(envelope: &Envelope<D>) -> String {
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": D::TYPE,
        "source": D::SOURCE,
        "account": "123456789012",
        "time": Utc::now(),
        "region": "us-east-1",
        "resources": [],
        "detail": envelope,
    })
    .to_string()
}

/// An SQS message carrying `body`, received `receive_count` times.
pub fn sqs_message(message_id: &str, body: &str, receive_count: u32) -> SqsMessage {
    let mut message = SqsMessage::default();
    message.message_id = Some(message_id.to_owned());
    message.body = Some(body.to_owned());
    message.attributes.insert("ApproximateReceiveCount".into(), receive_count.to_string());
    message.event_source = Some("aws:sqs".into());
    message
}

/// A batch with one message per body, ids `m0`, `m1`, ...
pub fn sqs_batch(bodies: &[String]) -> SqsEvent {
    let mut event = SqsEvent::default();
    event.records = bodies.iter().enumerate().map(|(i, b)| sqs_message(&format!("m{i}"), b, 1)).collect();
    event
}

/// The identifiers a batch response reports as failed.
pub fn failed_ids(response: &aws_lambda_events::event::sqs::SqsBatchResponse) -> Vec<String> {
    response.batch_item_failures.iter().map(|f| f.item_identifier.clone()).collect()
}

/// A sample event file from the workspace's `events/` directory, as the SQS event it holds.
/// Panics with the path when the file is missing or is not an SQS event: the samples are part
/// of the contract between the template, the local tooling and the consumers.
pub fn sample_batch(file: &str) -> SqsEvent {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../events").join(file);
    let json = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read sample {}: {e}", path.display()));
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{} is not an SQS event: {e}", path.display()))
}

/// The `order.placed` events a batch carries, with their message ids; records that are not
/// one (poison) are left out. Tests seed their fakes from these so that every good record
/// can succeed, whatever the sample contains.
pub fn order_placed_records(batch: &SqsEvent) -> Vec<(String, Envelope<OrderPlacedV1>)> {
    use aws_lambda_events::event::eventbridge::EventBridgeEvent;
    batch
        .records
        .iter()
        .filter_map(|record| {
            let event: EventBridgeEvent<serde_json::Value> = serde_json::from_str(record.body.as_deref()?).ok()?;
            let envelope = Envelope::from_detail(&event.detail).ok()?;
            Some((record.message_id.clone().unwrap_or_default(), envelope))
        })
        .collect()
}

/// The message ids of a batch's records that are not `order.placed` events.
pub fn poison_ids(batch: &SqsEvent) -> Vec<String> {
    let good: Vec<String> = order_placed_records(batch).into_iter().map(|(id, _)| id).collect();
    batch.records.iter().map(|r| r.message_id.clone().unwrap_or_default()).filter(|id| !good.contains(id)).collect()
}

/// A consumer under test, with the dead-letter queue its harness sends permanent failures to.
pub struct Given<C> {
    pub consumer: C,
    pub dlq: crate::adapters::memory_dlq::MemoryDeadLetters,
}

impl<C> std::ops::Deref for Given<C> {
    type Target = C;
    fn deref(&self) -> &C {
        &self.consumer
    }
}
