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
    Envelope::new(OrderId::new(), "corr-test", Utc::now(), data)
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
