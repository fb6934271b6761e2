//! Fixtures for tests and benchmarks: events as they reach a consumer (an SQS message whose
//! body is an EventBridge event whose detail is our envelope).

use crate::domain::{Currency, CustomerId, LineItem, Money, OrderId};
use crate::events::{
    Accepts, Envelope, EventData, OrderCancelledV1, OrderDeliveredV1, OrderPlacedLine, OrderPlacedV1, OrderPlacedV2,
    OrderShippedV1,
};
use aws_lambda_events::event::sqs::{SqsEvent, SqsMessage};
use chrono::Utc;
use serde_json::json;

/// An `order.placed` for `customer` with `(sku, quantity, unit price in cents)` lines in EUR.
pub fn order_placed(customer: &str, lines: &[(&str, u32, i64)]) -> Envelope<OrderPlacedV2> {
    let lines: Vec<LineItem> = lines
        .iter()
        .map(|(sku, quantity, unit_price)| LineItem {
            sku: (*sku).into(),
            quantity: *quantity,
            unit_price: Money::new(*unit_price, Currency::EUR),
        })
        .collect();
    let total = lines.iter().map(|l| l.unit_price.amount * i64::from(l.quantity)).sum();
    let data = OrderPlacedV2::new(CustomerId(customer.to_owned()), &lines, Money::new(total, Currency::EUR));
    Envelope::new(OrderId::new(), 2, "corr-test", Utc::now(), data)
}

/// `placed` as the checkout published it before `order.placed` v2: the same event (ID,
/// order, time, correlation), its data in v1's shape. What an outbox, a DLQ or the archive
/// still delivers after the move to v2.
pub fn as_v1(placed: &Envelope<OrderPlacedV2>) -> Envelope<OrderPlacedV1> {
    let mut v1 = Envelope::new(
        placed.order_id,
        placed.order_version,
        &*placed.correlation_id,
        placed.occurred_at,
        v1_data(&placed.data),
    );
    v1.event_id = placed.event_id;
    v1
}

/// v2's data in v1's shape: bare minor units of the total's currency.
fn v1_data(placed: &OrderPlacedV2) -> OrderPlacedV1 {
    let line = |l: &crate::events::PricedLine| OrderPlacedLine {
        sku: l.sku.clone(),
        quantity: l.quantity,
        unit_price: l.unit_price.amount,
    };
    OrderPlacedV1 {
        customer_id: placed.customer_id.clone(),
        lines: placed.lines.iter().map(line).collect(),
        total: placed.total.amount,
        currency: placed.total.currency,
    }
}

/// The customer's cancellation of `placed` (order version 3), as the checkout announces it:
/// the same order, lines and total, so that its consumers can undo what `order.placed` did.
pub fn order_cancelled(placed: &Envelope<OrderPlacedV2>) -> Envelope<OrderCancelledV1> {
    let OrderPlacedV1 { customer_id, lines, total, currency } = v1_data(&placed.data);
    let data = OrderCancelledV1 { customer_id, lines, total, currency };
    Envelope::new(placed.order_id, 3, "corr-cancel", Utc::now(), data)
}

/// `placed` handed to UPS (order version 3).
pub fn order_shipped(placed: &Envelope<OrderPlacedV2>) -> Envelope<OrderShippedV1> {
    let data = OrderShippedV1 {
        customer_id: placed.data.customer_id.clone(),
        carrier: "UPS".into(),
        tracking_id: "1Z999AA10123456784".into(),
    };
    Envelope::new(placed.order_id, 3, "corr-ship", Utc::now(), data)
}

/// `placed`, shipped, then delivered (order version 4).
pub fn order_delivered(placed: &Envelope<OrderPlacedV2>) -> Envelope<OrderDeliveredV1> {
    let data = OrderDeliveredV1 { customer_id: placed.data.customer_id.clone() };
    Envelope::new(placed.order_id, 4, "corr-deliver", Utc::now(), data)
}

/// `envelope` as a consumer of the event set `E` receives it. Panics when `E` does not accept
/// it: a fixture for the pure functions of consumers that accept several events.
pub fn received_as<E: Accepts, D: EventData>(envelope: &Envelope<D>) -> Envelope<E> {
    let detail = serde_json::to_value(envelope).expect("catalogue types always serialise");
    Envelope::from_detail(&detail).unwrap_or_else(|e| panic!("{} is not accepted: {e}", D::TYPE))
}

/// The EventBridge event EventBridge would deliver for `envelope`.
pub fn eventbridge_body<D: EventData>(envelope: &Envelope<D>) -> String {
    eventbridge_body_of(D::SOURCE, D::TYPE, envelope)
}

/// The EventBridge event EventBridge would deliver for a `detail` of any shape (an envelope
/// read back from a queue, a malformed one).
pub fn eventbridge_body_of(source: &str, detail_type: &str, detail: &impl serde::Serialize) -> String {
    json!({
        "version": "0",
        "id": ulid::Ulid::new().to_string(),
        "detail-type": detail_type,
        "source": source,
        "account": "123456789012",
        "time": Utc::now(),
        "region": "us-east-1",
        "resources": [],
        "detail": detail,
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
pub fn order_placed_records(batch: &SqsEvent) -> Vec<(String, Envelope<OrderPlacedV2>)> {
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

/// Delivers each body in its own batch, as separate messages arrive, through the consumer
/// harness (permanent failures to a throwaway dead-letter queue); the ids of the failed ones.
pub async fn deliver_each<C: crate::consumer::Consumer>(consumer: &C, bodies: &[String]) -> Vec<String> {
    let mut failed = Vec::new();
    for body in bodies {
        let now = Utc::now().timestamp_millis();
        let batch = sqs_batch(std::slice::from_ref(body));
        let dead_letters = crate::adapters::memory_dlq::MemoryDeadLetters::default();
        failed.extend(failed_ids(
            &crate::consumer::handle_batch(consumer, &dead_letters, &batch, now, now + 10_000).await,
        ));
    }
    failed
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

/// Whether the EventBridge rules feeding a consumer's queue (their `EventPattern`s, as
/// `testkit`'s stack description lists them) route exactly the events it accepts: the same
/// (source, detail-type) pairs, none missing (lost events) and none extra (poison the
/// consumer would dead-letter). A description of every difference when they do not.
pub fn rules_match<E: Accepts>(rules: &[serde_json::Value]) -> Result<(), String> {
    use std::collections::BTreeSet;
    let mut routed = BTreeSet::new();
    for rule in rules {
        routed.extend(crate::events::routed_pairs(rule)?);
    }
    let accepted: BTreeSet<(String, String)> =
        E::ACCEPTED.iter().map(|(s, t, _)| ((*s).to_owned(), (*t).to_owned())).collect();
    let mut differences = Vec::new();
    let missing: Vec<_> = accepted.difference(&routed).collect();
    let extra: Vec<_> = routed.difference(&accepted).collect();
    if !missing.is_empty() {
        differences.push(format!("accepted but not routed: {missing:?}"));
    }
    if !extra.is_empty() {
        differences.push(format!("routed but not accepted: {extra:?}"));
    }
    if rules.is_empty() {
        differences.push("no rule feeds the consumer".into());
    }
    if differences.is_empty() {
        Ok(())
    } else {
        Err(differences.join("; "))
    }
}

/// What API Gateway's JWT authorizer puts in `requestContext.authorizer` for a verified access
/// token of `subject` carrying `scopes`: every claim a string, as API Gateway passes them.
pub fn verified_token(subject: &str, scopes: &[&str]) -> aws_lambda_events::event::apigw::ApiGatewayRequestAuthorizer {
    use aws_lambda_events::event::apigw::{ApiGatewayRequestAuthorizer, ApiGatewayRequestAuthorizerJwtDescription};
    let mut jwt = ApiGatewayRequestAuthorizerJwtDescription::default();
    jwt.claims = [
        ("iss", "https://issuer.example"),
        ("sub", subject),
        ("aud", "shop-web"),
        ("token_use", "access"),
        ("iat", "1767268800"),
        ("exp", "1767272400"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    if !scopes.is_empty() {
        jwt.claims.insert("scope".to_owned(), scopes.join(" "));
    }
    let mut authorizer = ApiGatewayRequestAuthorizer::default();
    authorizer.jwt = Some(jwt);
    authorizer
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    crate::event_set! {
        enum Lifecycle { Placed(OrderPlacedV2), Shipped(OrderShippedV1) }
    }

    fn exact() -> serde_json::Value {
        json!({"$or": [
            {"source": ["shop.checkout"], "detail-type": ["order.placed"]},
            {"source": ["shop.fulfilment"], "detail-type": ["order.shipped"]},
        ]})
    }

    #[test]
    fn rules_naming_exactly_the_accepted_source_and_type_pairs_match() {
        assert_eq!(rules_match::<Lifecycle>(&[exact()]), Ok(()));
    }

    #[test]
    fn a_rule_routing_every_source_with_every_type_routes_pairs_nobody_accepts() {
        let rule =
            json!({"source": ["shop.checkout", "shop.fulfilment"], "detail-type": ["order.shipped", "order.placed"]});
        let why = rules_match::<Lifecycle>(&[rule]).unwrap_err();
        assert!(why.contains("routed but not accepted") && why.contains("shop.fulfilment"), "{why}");
    }

    #[test]
    fn a_rule_missing_an_accepted_type_does_not_match() {
        let rule = json!({"$or": [{"source": ["shop.checkout"], "detail-type": ["order.placed"]}]});
        let why = rules_match::<Lifecycle>(&[rule]).unwrap_err();
        assert!(why.contains("not routed") && why.contains("order.shipped"), "{why}");
    }

    #[test]
    fn a_rule_routing_a_type_the_consumer_refuses_does_not_match() {
        let rule = json!({"source": ["shop.checkout"], "detail-type": ["order.placed", "order.cancelled"]});
        let why = rules_match::<OrderPlacedV2>(&[rule]).unwrap_err();
        assert!(why.contains("routed but not accepted") && why.contains("order.cancelled"), "{why}");
    }

    #[test]
    fn no_rule_at_all_does_not_match() {
        assert!(rules_match::<OrderPlacedV2>(&[]).is_err());
    }

    #[test]
    fn lifecycle_fixtures_belong_to_the_placed_order_and_follow_its_version() {
        let placed = order_placed("ada", &[("MUG", 2, 1250)]);
        let (cancelled, shipped, delivered) =
            (order_cancelled(&placed), order_shipped(&placed), order_delivered(&placed));
        assert_eq!([cancelled.order_id, shipped.order_id, delivered.order_id], [placed.order_id; 3]);
        assert_eq!([placed.order_version, cancelled.order_version, delivered.order_version], [2, 3, 4]);
        assert_eq!(cancelled.data.total_money(), placed.data.total);
        assert_eq!(cancelled.data.per_sku(), placed.data.per_sku());
    }

    #[test]
    fn the_v1_fixture_is_the_same_event_and_reads_back_as_the_v2_it_came_from() {
        let placed = order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2099)]);
        let v1 = as_v1(&placed);
        assert_eq!((v1.event_id, v1.order_id, v1.version), (placed.event_id, placed.order_id, 1));
        assert_eq!(received_as::<OrderPlacedV2, _>(&v1).data, placed.data);
    }
}
