//! The sweeper on the template's wiring in the local emulator: orders left open by the real
//! adapters (the checkout built from its template environment, or the order store itself) are
//! found through the orders table's `OpenOrders` index and settled by the sweeper built from
//! its own template environment, against the gateway ledger table both share; and a
//! customer-cancelled order left waiting for its refund is refunded through that table.

use aws_sdk_dynamodb::types::AttributeValue;
use checkout::service::PostOrder;
use chrono::Utc;
use shared::adapters::dynamodb::DynamoShop;
use shared::auth::Caller;
use shared::config::{self, Env};
use shared::domain::{CancelReason, Currency, CustomerId, LineItem, Money, OrderEvent, OrderId, OrderStatus};
use shared::ports::{OrderChange, OrderStore, StockEffect};
use std::time::{Duration, Instant};
use sweeper::Sweeper;
use testkit::shared as aws;

/// Each test sweeps every open order of the shared stack: one at a time, so that the counts are
/// each test's own.
static SWEEPS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn sdk() -> aws_config::SdkConfig {
    aws().emulator.sdk_config().await
}

fn env(function: &str) -> Env {
    Env(aws().stack.function(function).environment.clone())
}

async fn shop() -> DynamoShop {
    DynamoShop::new(config::dynamodb(&sdk().await), config::shop_tables(&env("SweeperFunction")).unwrap())
}

/// The sweeper as deployed (grace from the template), run as if the grace had passed.
async fn sweep() -> sweeper::SweepReport {
    let sweeper = Sweeper::from_env(&env("SweeperFunction"), &sdk().await).unwrap();
    let later = Utc::now() + sweeper.grace + chrono::Duration::seconds(1);
    let deadline = shared::deadline::Deadline::at(std::time::SystemTime::now() + std::time::Duration::from_secs(60));
    sweeper.run_once(later, &deadline).await.unwrap()
}

async fn is_listed_open(id: OrderId) -> bool {
    let open = shop().await.open_before(Utc::now() + chrono::Duration::hours(1), 1000).await.unwrap();
    open.iter().any(|o| o.order_id == id)
}

async fn stock(sku: &str) -> (String, String) {
    let item = config::dynamodb(&sdk().await)
        .get_item()
        .table_name(aws().stack.output("ProductsTableName"))
        .key("sku", AttributeValue::S(sku.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let n = |k: &str| item.get(k).and_then(|v| v.as_n().ok()).cloned().unwrap_or_default();
    (n("available"), n("reserved"))
}

async fn post(checkout: &checkout::Checkout, key: &str, now_ms: i64) -> checkout::service::Reply {
    let body = r#"{"items":[{"sku":"STICKER","quantity":2}],"paymentToken":"tok_timeout","currency":"EUR"}"#;
    checkout
        .post_order(PostOrder {
            caller: &ada(),
            content_type: Some("application/json"),
            idempotency_key: Some(key),
            body: body.as_bytes(),
            correlation_id: "aws-sweeper",
            now_ms,
            deadline_ms: now_ms + 10_000,
        })
        .await
}

/// The order the checkout bound to an Idempotency-Key, read from its record.
/// The customer the orders are placed for.
fn ada() -> Caller {
    Caller { subject: CustomerId("cust-ada".into()), staff: false }
}

/// The order bound to cust-ada's `POST /orders` key.
async fn order_of_key(key: &str) -> OrderId {
    let item = config::dynamodb(&sdk().await)
        .get_item()
        .table_name(aws().stack.output("IdempotencyTableName"))
        .key("id", AttributeValue::S(checkout::idempotency::record_id("checkout:POST /orders", "cust-ada", key)))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the interrupted request keeps its key");
    item["orderId"].as_s().unwrap().parse().unwrap()
}

/// Whether `order.placed` of `order_id` reached AnalyticsQueue through the bus and its rule.
async fn reached_a_consumer_queue(order_id: OrderId) -> bool {
    let sqs = aws_sdk_sqs::Client::new(&sdk().await);
    let queue = aws().stack.output("AnalyticsQueueUrl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let out = sqs.receive_message().queue_url(queue).max_number_of_messages(10).wait_time_seconds(1).send().await;
        let messages = out.unwrap().messages.unwrap_or_default();
        if messages.iter().any(|m| m.body().is_some_and(|b| b.contains(&order_id.to_string()))) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn given_a_checkout_interrupted_after_its_charge_when_the_sweeper_runs_then_it_is_found_through_the_index_and_placed(
) {
    let _serial = testkit::serial().await;
    let _one_at_a_time = SWEEPS.lock().await;
    let checkout = checkout::from_env(&env("CheckoutFunction"), &sdk().await).unwrap();
    let key = format!("aws-sweeper-{}", ulid::Ulid::new());
    let now_ms = Utc::now().timestamp_millis();
    assert_eq!(post(&checkout, &key, now_ms).await.status, 502, "tok_timeout: charged, answer lost");
    let id = order_of_key(&key).await;
    assert!(is_listed_open(id).await, "the OpenOrders index lists the interrupted order");

    let report = sweep().await;

    assert_eq!((report.placed, report.expired, report.failed), (1, 0, 0), "{report:?}");
    let order = shop().await.load(id).await.unwrap().unwrap();
    assert_eq!(order.status, OrderStatus::Placed);
    assert_eq!(order.charge_id, Some(format!("ch_{id}")), "the charge the checkout made, read from the ledger table");
    assert!(!is_listed_open(id).await, "settled orders leave the index");
    assert!(reached_a_consumer_queue(id).await, "order.placed was published to the bus");
    // The client retries after all, long after its lease: the settled answer, no second charge.
    let late = post(&checkout, &key, now_ms + 3_600_000).await;
    assert_eq!(late.status, 201, "{}", late.body);
    assert!(late.body.contains(&id.to_string()));
}

#[tokio::test]
async fn given_an_order_opened_but_never_charged_when_the_sweeper_runs_then_it_expires_and_its_stock_is_released() {
    let _serial = testkit::serial().await;
    let _one_at_a_time = SWEEPS.lock().await;
    let before = stock("HOODIE").await;
    let id = OrderId::new();
    let lines = vec![LineItem { sku: "HOODIE".into(), quantity: 1, unit_price: Money::new(4500, Currency::EUR) }];
    let opened = OrderEvent::Opened {
        customer_id: "cust-grace".into(),
        lines: lines.clone(),
        total: Money::new(4500, Currency::EUR),
        at: Utc::now(),
        correlation_id: "aws-sweeper-uncharged".into(),
    };
    let change = OrderChange {
        order_id: id,
        version: 1,
        event: &opened,
        stock: StockEffect::Reserve(&lines),
        outbox: None,
        correlation_id: "corr",
    };
    shop().await.commit(change).await.unwrap();
    assert!(is_listed_open(id).await);

    let report = sweep().await;

    assert_eq!((report.placed, report.expired, report.failed), (0, 1, 0), "{report:?}");
    let order = shop().await.load(id).await.unwrap().unwrap();
    assert_eq!((order.status, order.cancel_reason), (OrderStatus::Cancelled, Some(CancelReason::Expired)));
    assert_eq!(stock("HOODIE").await, before, "the reservation was released");
    assert!(!is_listed_open(id).await);
}

#[tokio::test]
async fn given_a_cancel_that_stopped_before_its_refund_when_the_sweeper_runs_then_it_refunds_through_the_ledger_table()
{
    let _serial = testkit::serial().await;
    let _one_at_a_time = SWEEPS.lock().await;
    let checkout = checkout::from_env(&env("CheckoutFunction"), &sdk().await).unwrap();
    let now_ms = Utc::now().timestamp_millis();
    let body = r#"{"items":[{"sku":"STICKER","quantity":1}],"paymentToken":"tok_visa","currency":"EUR"}"#;
    let key = format!("aws-sweeper-refund-{}", ulid::Ulid::new());
    let placed = checkout
        .post_order(PostOrder {
            caller: &ada(),
            content_type: Some("application/json"),
            idempotency_key: Some(&key),
            body: body.as_bytes(),
            correlation_id: "aws-sweeper-place",
            now_ms,
            deadline_ms: now_ms + 10_000,
        })
        .await;
    assert_eq!(placed.status, 201, "{}", placed.body);
    let id = order_of_key(&key).await;
    // The customer's cancel appended its Cancelled (and order.cancelled), then stopped.
    let order = shop().await.load(id).await.unwrap().unwrap();
    let cancelled = OrderEvent::Cancelled { reason: CancelReason::CustomerRequested, at: Utc::now() };
    let announced = checkout::journal::announce(&order, &cancelled, 3, "aws-sweeper-cancel");
    let change = OrderChange {
        order_id: id,
        version: 3,
        event: &cancelled,
        stock: StockEffect::None,
        outbox: announced.as_ref(),
        correlation_id: "aws-sweeper-cancel",
    };
    shop().await.commit(change).await.unwrap();
    assert!(is_listed_open(id).await, "a cancellation waiting for its refund is open");

    let report = sweep().await;

    assert_eq!((report.refunded, report.failed), (1, 0), "{report:?}");
    let history = shop().await.history(id).await.unwrap();
    let last = history.last().unwrap();
    assert!(matches!(last.event, OrderEvent::Refunded { .. }), "{:?}", last.event);
    assert_eq!((last.version, last.correlation_id.as_str()), (4, "aws-sweeper-cancel"));
    assert!(!is_listed_open(id).await, "the refund ended the saga");
}
