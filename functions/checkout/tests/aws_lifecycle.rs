//! The order's life on the template's wiring in the local emulator: the customer's function
//! and the staff's, each built by its own `from_env`, against the real DynamoDB adapters
//! (orders, outbox, idempotency keys, the sandbox gateway's ledger) and the real bus with the
//! template's rules.

use aws_sdk_dynamodb::types::AttributeValue;
use checkout::commands::Command;
use checkout::service::{PostOrder, Reply};
use checkout::{Checkout, Fulfilment};
use chrono::{SecondsFormat, Utc};
use serde_json::Value;
use shared::adapters::dynamodb::{DynamoOutbox, DynamoShop};
use shared::auth::Caller;
use shared::config::{self, Env};
use shared::domain::{CustomerId, OrderId, OrderStatus};
use shared::ports::{OrderStore, Outbox};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use testkit::shared as aws;

async fn sdk() -> aws_config::SdkConfig {
    aws().emulator.sdk_config().await
}

fn env(function: &str) -> Env {
    Env(aws().stack.function(function).environment.clone())
}

/// The staff function's environment: the template's once it declares the function, until then
/// the names `Fulfilment::from_env` documents, from the stack's outputs.
fn staff_env() -> Env {
    if let Some(function) = aws().stack.functions.get("FulfilmentFunction") {
        return Env(function.environment.clone());
    }
    let stack = &aws().stack;
    let pairs = [
        ("ORDERS_TABLE", "OrdersTableName"),
        ("OUTBOX_TABLE", "OutboxTableName"),
        ("IDEMPOTENCY_TABLE", "IdempotencyTableName"),
        ("EVENT_BUS_NAME", "EventBusName"),
        ("PRODUCTS_TABLE", "ProductsTableName"),
    ];
    Env(pairs.iter().map(|(var, output)| (var.to_string(), stack.output(output).to_owned())).collect())
}

fn ada() -> Caller {
    Caller { subject: CustomerId("cust-ada".into()), staff: false }
}

fn sam() -> Caller {
    Caller { subject: CustomerId("staff-sam".into()), staff: true }
}

async fn customer() -> Checkout {
    checkout::from_env(&env("CheckoutFunction"), &sdk().await).unwrap()
}

async fn staff() -> Fulfilment {
    Fulfilment::from_env(&staff_env(), &sdk().await).unwrap()
}

async fn shop() -> DynamoShop {
    DynamoShop::new(config::dynamodb(&sdk().await), config::shop_tables(&env("CheckoutFunction")).unwrap())
}

fn body(reply: &Reply) -> Value {
    serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body))
}

fn header<'a>(reply: &'a Reply, name: &str) -> Option<&'a str> {
    reply.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", ulid::Ulid::new())
}

/// A sticker pack ordered and paid through the customer's function.
async fn given_a_placed_order() -> OrderId {
    let body = r#"{"items":[{"sku":"STICKER","quantity":1}],"paymentToken":"tok_visa","currency":"EUR"}"#;
    let key = unique("aws-lifecycle-place");
    let now = now_ms();
    let reply = customer()
        .await
        .post_order(PostOrder {
            caller: &ada(),
            content_type: Some("application/json"),
            idempotency_key: Some(&key),
            body: body.as_bytes(),
            correlation_id: "aws-place",
            now_ms: now,
            deadline_ms: now + 10_000,
        })
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    body_id(&reply)
}

fn body_id(reply: &Reply) -> OrderId {
    body(reply)["orderId"].as_str().unwrap().parse().unwrap()
}

fn command<'a>(caller: &'a Caller, id: &'a str, key: &'a str, body: &'a [u8], correlation_id: &'a str) -> Command<'a> {
    let now = now_ms();
    Command {
        caller,
        order_id: id,
        idempotency_key: Some(key),
        content_type: Some("application/json"),
        body,
        correlation_id,
        now_ms: now,
        deadline_ms: now + 10_000,
    }
}

async fn cancel(id: OrderId, key: &str) -> Reply {
    customer().await.cancel(command(&ada(), &id.to_string(), key, b"", "aws-cancel")).await
}

async fn ship(id: OrderId, key: &str) -> Reply {
    let body = br#"{"carrier":"UPS","trackingId":"1Z999AA10123456784"}"#;
    staff().await.ship(command(&sam(), &id.to_string(), key, body, "aws-ship")).await
}

async fn deliver(id: OrderId, key: &str) -> Reply {
    staff().await.deliver(command(&sam(), &id.to_string(), key, b"", "aws-deliver")).await
}

/// The order's events as stored: (version, name, correlation ID).
async fn stored(id: OrderId) -> Vec<(u32, &'static str, String)> {
    let history = shop().await.history(id).await.unwrap();
    history.into_iter().map(|r| (r.version, r.event.name(), r.correlation_id)).collect()
}

async fn is_listed_open(id: OrderId) -> bool {
    let open = shop().await.open_before(Utc::now() + chrono::Duration::hours(1), 1000).await.unwrap();
    open.iter().any(|o| o.order_id == id)
}

/// Whether an outbox entry about the order is still waiting for the relay.
async fn waits_in_the_outbox(id: OrderId) -> bool {
    let outbox = DynamoOutbox::new(config::dynamodb(&sdk().await), aws().stack.output("OutboxTableName"));
    let pending = outbox.pending(Utc::now() + chrono::Duration::hours(1), 1000).await.unwrap();
    pending.iter().any(|p| p.event.detail.contains(&id.to_string()))
}

/// The detail-types of the order's events that reached EmailQueue through the bus and its
/// rule, once all of `expected` did (or 10 s passed). Seen messages are deleted.
async fn reached_email_queue(id: OrderId, expected: &[&str]) -> BTreeSet<String> {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = aws().stack.output("EmailQueueUrl");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !expected.iter().all(|t| seen.contains(*t)) {
        let out = sqs.receive_message().queue_url(queue).max_number_of_messages(10).wait_time_seconds(1).send().await;
        for message in out.unwrap().messages.unwrap_or_default() {
            let Some(event) = message.body().and_then(|b| serde_json::from_str::<Value>(b).ok()) else { continue };
            if event["detail"]["orderId"] == id.to_string() {
                seen.insert(event["detail-type"].as_str().unwrap_or_default().to_owned());
                let handle = message.receipt_handle().unwrap_or_default();
                let _ = sqs.delete_message().queue_url(queue).receipt_handle(handle).send().await;
            }
        }
    }
    seen
}

/// The gateway ledger's entry for the order's refund.
async fn refund_in_the_ledger(id: OrderId) -> Option<String> {
    let item = config::dynamodb(&sdk().await)
        .get_item()
        .table_name(aws().stack.output("SandboxPaymentsTableName"))
        .key("paymentKey", AttributeValue::S(format!("order-{id}#refund")))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item?;
    item.get("refundId").and_then(|v| v.as_s().ok()).cloned()
}

#[tokio::test]
async fn given_a_placed_order_when_the_customer_cancels_then_it_is_cancelled_refunded_and_announced() {
    let _serial = testkit::serial().await;
    let id = given_a_placed_order().await;

    let reply = cancel(id, &unique("aws-cancel")).await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        (body(&reply)["status"].as_str(), body(&reply)["refund"]["amount"].as_i64()),
        (Some("CANCELLED"), Some(300))
    );
    let events = stored(id).await;
    let expected = [(3, "Cancelled", "aws-cancel"), (4, "Refunded", "aws-cancel")];
    assert_eq!(events[2..], expected.map(|(v, n, c)| (v, n, c.to_owned())));
    assert_eq!(refund_in_the_ledger(id).await, Some(format!("re_{id}")), "refunded at the gateway");
    assert!(!is_listed_open(id).await, "the refund ended the saga the cancellation started");
    assert!(!waits_in_the_outbox(id).await, "order.cancelled and payment.refunded were published and cleared");
    let reached = reached_email_queue(id, &["order.placed", "order.cancelled"]).await;
    assert!(reached.contains("order.cancelled"), "{reached:?}");
}

#[tokio::test]
async fn given_a_cancelled_order_when_cancelled_again_then_the_same_answer_replayed_or_not_and_one_refund() {
    let _serial = testkit::serial().await;
    let id = given_a_placed_order().await;
    let key = unique("aws-cancel");
    let first = cancel(id, &key).await;
    let replayed = cancel(id, &key).await;
    let other_key = cancel(id, &unique("aws-cancel")).await;
    assert_eq!((replayed.status, header(&replayed, "idempotent-replayed")), (200, Some("true")));
    assert_eq!((&replayed.body, &other_key.body), (&first.body, &first.body));
    assert_eq!(stored(id).await.iter().filter(|(_, n, _)| *n == "Refunded").count(), 1);
}

#[tokio::test]
async fn given_a_placed_order_when_shipped_and_delivered_then_each_step_is_stored_and_announced() {
    let _serial = testkit::serial().await;
    let id = given_a_placed_order().await;
    let key = unique("aws-ship");

    let shipped = ship(id, &key).await;
    let again = ship(id, &key).await;
    let delivered = deliver(id, &unique("aws-deliver")).await;

    assert_eq!(
        (shipped.status, body(&shipped)["shipment"]["carrier"].as_str()),
        (200, Some("UPS")),
        "{}",
        shipped.body
    );
    assert_eq!((again.status, header(&again, "idempotent-replayed")), (200, Some("true")));
    assert_eq!((delivered.status, body(&delivered)["status"].as_str()), (200, Some("DELIVERED")), "{}", delivered.body);
    let events = stored(id).await;
    let expected = [(3, "Shipped", "aws-ship"), (4, "Delivered", "aws-deliver")];
    assert_eq!(events[2..], expected.map(|(v, n, c)| (v, n, c.to_owned())));
    assert!(!waits_in_the_outbox(id).await, "order.shipped and order.delivered were published and cleared");
    let reached = reached_email_queue(id, &["order.placed", "order.shipped"]).await;
    assert!(reached.contains("order.shipped"), "{reached:?}");
}

#[tokio::test]
async fn illegal_transitions_are_409_with_the_status_and_change_nothing() {
    let _serial = testkit::serial().await;
    let delivered = given_a_placed_order().await;
    ship(delivered, &unique("aws-ship")).await;
    deliver(delivered, &unique("aws-deliver")).await;
    let refused = cancel(delivered, &unique("aws-cancel")).await;
    assert_eq!((refused.status, body(&refused)["orderStatus"].as_str()), (409, Some("DELIVERED")));
    assert_eq!(refund_in_the_ledger(delivered).await, None, "nothing refunded");

    let cancelled = given_a_placed_order().await;
    cancel(cancelled, &unique("aws-cancel")).await;
    let refused = ship(cancelled, &unique("aws-ship")).await;
    assert_eq!((refused.status, body(&refused)["orderStatus"].as_str()), (409, Some("CANCELLED")));

    let placed = given_a_placed_order().await;
    let refused = deliver(placed, &unique("aws-deliver")).await;
    assert_eq!((refused.status, body(&refused)["orderStatus"].as_str()), (409, Some("PLACED")));
    assert_eq!(stored(placed).await.len(), 2);
    let unknown = cancel(OrderId::new(), &unique("aws-cancel")).await;
    assert_eq!(unknown.status, 404);
}

#[tokio::test]
async fn the_history_and_the_order_as_of_a_past_time_read_the_stored_events() {
    let _serial = testkit::serial().await;
    let id = given_a_placed_order().await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let placed_at = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    tokio::time::sleep(Duration::from_millis(20)).await;
    ship(id, &unique("aws-ship")).await;
    let checkout = customer().await;

    let trail = checkout.history(&ada(), &id.to_string()).await;
    let then = checkout.get_order(&ada(), &id.to_string(), Some(&placed_at)).await;
    let before = checkout.get_order(&ada(), &id.to_string(), Some("2020-01-01T00:00:00Z")).await;
    let now = checkout.get_order(&ada(), &id.to_string(), None).await;

    assert_eq!(trail.status, 200, "{}", trail.body);
    let events = body(&trail)["events"].as_array().unwrap().clone();
    let summary: Vec<(u64, &str, &str)> = events
        .iter()
        .map(|e| (e["version"].as_u64().unwrap(), e["type"].as_str().unwrap(), e["correlationId"].as_str().unwrap()))
        .collect();
    assert_eq!(summary, [(1, "Opened", "aws-place"), (2, "PaymentCaptured", "aws-place"), (3, "Shipped", "aws-ship")]);
    assert_eq!(events[2]["data"]["shipment"]["trackingId"], "1Z999AA10123456784");
    assert_eq!((then.status, body(&then)["status"].as_str()), (200, Some("PLACED")), "{}", then.body);
    assert_eq!(before.status, 404, "it did not exist yet");
    assert_eq!(body(&now)["status"], OrderStatus::Shipped.as_str());
}
