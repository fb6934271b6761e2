//! The AWS adapters against the local emulator (moto server), on a stack created from
//! template.yaml. One emulator and stack per test binary; tests use their own keys and SKUs.

use aws_sdk_dynamodb::types::AttributeValue;
use shared::adapters::dynamodb::{DynamoIdempotency, DynamoOutbox, DynamoProcessedEvents, DynamoShop, ShopTables};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::domain::{Currency, EventId, LineItem, Money, OrderEvent, OrderId, OrderStatus, Sku};
use shared::events::{Envelope, OrderPlacedV2};
use shared::ports::*;

use testkit::shared as env;

async fn dynamodb() -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(&env().emulator.sdk_config().await)
}

fn tables() -> ShopTables {
    let s = &env().stack;
    ShopTables {
        products: s.output("ProductsTableName").to_owned(),
        orders: s.output("OrdersTableName").to_owned(),
        outbox: s.output("OutboxTableName").to_owned(),
    }
}

/// A product only this test uses, with `available` in stock.
async fn given_product(client: &aws_sdk_dynamodb::Client, available: i64) -> Sku {
    let sku = format!("T-{}", ulid::Ulid::new());
    client
        .put_item()
        .table_name(tables().products)
        .item("sku", AttributeValue::S(sku.clone()))
        .item("name", AttributeValue::S("Test product".into()))
        .item("unitPrice", AttributeValue::N("1000".into()))
        .item("currency", AttributeValue::S("EUR".into()))
        .item("available", AttributeValue::N(available.to_string()))
        .item("reserved", AttributeValue::N("0".into()))
        .item("lowStockThreshold", AttributeValue::N("1".into()))
        .send()
        .await
        .unwrap();
    Sku(sku)
}

async fn stock(client: &aws_sdk_dynamodb::Client, sku: &Sku) -> (i64, i64) {
    let item = client
        .get_item()
        .table_name(tables().products)
        .key("sku", AttributeValue::S(sku.0.clone()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let num = |k: &str| item[k].as_n().unwrap().parse::<i64>().unwrap();
    (num("available"), num("reserved"))
}

fn line(sku: &Sku, quantity: u32) -> LineItem {
    LineItem { sku: sku.clone(), quantity, unit_price: Money::new(1000, Currency::EUR) }
}

fn opened(lines: &[LineItem]) -> OrderEvent {
    let total = Money::new(lines.iter().map(|l| 1000 * i64::from(l.quantity)).sum(), Currency::EUR);
    OrderEvent::Opened {
        customer_id: "cust-it".into(),
        lines: lines.to_vec(),
        total,
        at: chrono::Utc::now(),
        correlation_id: "corr-it".into(),
    }
}

#[tokio::test]
async fn the_catalogue_prices_seeded_products_and_omits_unknown_ones() {
    let _serial = testkit::serial().await;
    let shop = DynamoShop::new(dynamodb().await, tables());
    let found = shop.products(&["MUG".into(), "NOPE".into()]).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[&Sku::from("MUG")].unit_price, Money::new(1250, Currency::EUR));
}

#[tokio::test]
async fn reserving_stock_is_all_or_nothing() {
    let _serial = testkit::serial().await;
    let client = dynamodb().await;
    let shop = DynamoShop::new(client.clone(), tables());
    let (plenty, scarce) = (given_product(&client, 5).await, given_product(&client, 1).await);
    let lines = [line(&plenty, 2), line(&scarce, 2)];
    let event = opened(&lines);
    let change = OrderChange {
        order_id: OrderId::new(),
        version: 1,
        event: &event,
        stock: StockEffect::Reserve(&lines),
        outbox: None,
        correlation_id: "corr",
    };
    assert_eq!(shop.commit(change).await, Err(CommitError::InsufficientStock(vec![scarce.clone()])));
    assert_eq!(stock(&client, &plenty).await, (5, 0), "the line that fitted was not reserved either");
    assert_eq!(stock(&client, &scarce).await, (1, 0));
}

#[tokio::test]
async fn a_reservation_and_its_release_move_stock_there_and_back() {
    let _serial = testkit::serial().await;
    let client = dynamodb().await;
    let shop = DynamoShop::new(client.clone(), tables());
    let sku = given_product(&client, 5).await;
    let lines = [line(&sku, 2)];
    let (id, open) = (OrderId::new(), opened(&lines));
    shop.commit(OrderChange {
        order_id: id,
        version: 1,
        event: &open,
        stock: StockEffect::Reserve(&lines),
        outbox: None,
        correlation_id: "corr",
    })
    .await
    .unwrap();
    assert_eq!(stock(&client, &sku).await, (3, 2));
    let cancel = OrderEvent::Cancelled { reason: shared::domain::CancelReason::PaymentFailed, at: chrono::Utc::now() };
    shop.commit(OrderChange {
        order_id: id,
        version: 2,
        event: &cancel,
        stock: StockEffect::Release(&lines),
        outbox: None,
        correlation_id: "corr",
    })
    .await
    .unwrap();
    assert_eq!(stock(&client, &sku).await, (5, 0));
    assert_eq!(shop.load(id).await.unwrap().unwrap().status, OrderStatus::Cancelled);
}

#[tokio::test]
async fn a_product_seeded_without_a_reserved_count_can_still_be_reserved() {
    let _serial = testkit::serial().await;
    let client = dynamodb().await;
    let shop = DynamoShop::new(client.clone(), tables());
    let sku = given_product(&client, 5).await;
    client
        .update_item()
        .table_name(tables().products)
        .key("sku", AttributeValue::S(sku.0.clone()))
        .update_expression("REMOVE reserved")
        .send()
        .await
        .unwrap();
    let lines = [line(&sku, 2)];
    let open = opened(&lines);
    let change = OrderChange {
        order_id: OrderId::new(),
        version: 1,
        event: &open,
        stock: StockEffect::Reserve(&lines),
        outbox: None,
        correlation_id: "corr",
    };
    assert_eq!(shop.commit(change).await, Ok(()));
    assert_eq!(stock(&client, &sku).await, (3, 2));
}

#[tokio::test]
async fn an_open_order_is_found_by_the_sparse_index_until_its_saga_ends() {
    let _serial = testkit::serial().await;
    let client = dynamodb().await;
    let shop = DynamoShop::new(client.clone(), tables());
    let sku = given_product(&client, 5).await;
    let lines = [line(&sku, 1)];
    let (id, open) = (OrderId::new(), opened(&lines));
    shop.commit(OrderChange {
        order_id: id,
        version: 1,
        event: &open,
        stock: StockEffect::Reserve(&lines),
        outbox: None,
        correlation_id: "corr",
    })
    .await
    .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    let earlier = chrono::Utc::now() - chrono::Duration::seconds(60);
    assert!(shop.open_before(later, 1000).await.unwrap().iter().any(|o| o.order_id == id));
    assert!(!shop.open_before(earlier, 1000).await.unwrap().iter().any(|o| o.order_id == id), "too young");
    assert_eq!(shop.load(id).await.unwrap().unwrap().version, 1, "the marker is not an event");
    let cancel = OrderEvent::Cancelled { reason: shared::domain::CancelReason::Expired, at: chrono::Utc::now() };
    shop.commit(OrderChange {
        order_id: id,
        version: 2,
        event: &cancel,
        stock: StockEffect::Release(&lines),
        outbox: None,
        correlation_id: "corr",
    })
    .await
    .unwrap();
    assert!(!shop.open_before(later, 1000).await.unwrap().iter().any(|o| o.order_id == id));
}

#[tokio::test]
async fn an_order_version_can_be_written_once_and_the_loser_changes_nothing() {
    let _serial = testkit::serial().await;
    let client = dynamodb().await;
    let shop = DynamoShop::new(client.clone(), tables());
    let sku = given_product(&client, 5).await;
    let lines = [line(&sku, 1)];
    let (id, open) = (OrderId::new(), opened(&lines));
    let change = OrderChange {
        order_id: id,
        version: 1,
        event: &open,
        stock: StockEffect::Reserve(&lines),
        outbox: None,
        correlation_id: "corr",
    };
    shop.commit(change).await.unwrap();
    assert_eq!(shop.commit(change).await, Err(CommitError::VersionConflict));
    assert_eq!(stock(&client, &sku).await, (4, 1), "never reserved twice");
}

#[tokio::test]
async fn the_outbox_entry_is_written_with_the_event_and_cleared_after_publishing() {
    let _serial = testkit::serial().await;
    let client = dynamodb().await;
    let shop = DynamoShop::new(client.clone(), tables());
    let outbox = DynamoOutbox::new(client, tables().outbox);
    let (id, lines) = (OrderId::new(), vec![]);
    let open = opened(&lines);
    let total = Money::new(0, Currency::EUR);
    let event = Envelope::new(id, 2, "corr", chrono::Utc::now(), OrderPlacedV2::new("cust-it".into(), &lines, total))
        .to_outbound();
    shop.commit(OrderChange {
        order_id: id,
        version: 1,
        event: &open,
        stock: StockEffect::None,
        outbox: Some(&event),
        correlation_id: "corr",
    })
    .await
    .unwrap();
    let later = chrono::Utc::now() + chrono::Duration::seconds(5);
    let pending = outbox.pending(later, 1000).await.unwrap();
    assert!(pending.iter().any(|p| p.event == event));
    outbox.clear(&[event.event_id]).await.unwrap();
    assert!(!outbox.pending(later, 1000).await.unwrap().iter().any(|p| p.event.event_id == event.event_id));
}

fn claim(key: &str, hash: &str, now_ms: i64) -> ClaimRequest {
    ClaimRequest {
        key: key.into(),
        payload_hash: hash.into(),
        order_id: OrderId::new(),
        attempt: ulid::Ulid::new().to_string(),
        now_ms,
        lease_until_ms: now_ms + 10_000,
        expires_at: now_ms / 1000 + 3600,
    }
}

#[tokio::test]
async fn an_idempotency_key_is_claimed_once_then_replays_its_response() {
    let _serial = testkit::serial().await;
    let store = DynamoIdempotency::new(dynamodb().await, env().stack.output("IdempotencyTableName"));
    let key = ulid::Ulid::new().to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let first = claim(&key, "h1", now);
    assert_eq!(store.claim(&first).await.unwrap(), Claim::Started { order_id: first.order_id });
    assert_eq!(store.claim(&claim(&key, "h1", now)).await.unwrap(), Claim::InProgress);
    assert_eq!(store.claim(&claim(&key, "other", now)).await.unwrap(), Claim::PayloadMismatch);
    let response =
        StoredResponse { status: 201, headers: vec![("location".into(), "/orders/x".into())], body: "{}".into() };
    store.complete(&key, &first.attempt, &response).await.unwrap();
    assert_eq!(store.claim(&claim(&key, "h1", now)).await.unwrap(), Claim::Replay(response));
}

#[tokio::test]
async fn a_lapsed_lease_is_taken_over_and_resumes_the_same_order() {
    let _serial = testkit::serial().await;
    let store = DynamoIdempotency::new(dynamodb().await, env().stack.output("IdempotencyTableName"));
    let key = ulid::Ulid::new().to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let Claim::Started { order_id: first } = store.claim(&claim(&key, "h1", now)).await.unwrap() else { panic!() };
    let retry = store.claim(&claim(&key, "h1", now + 20_000)).await.unwrap();
    assert_eq!(retry, Claim::TakenOver { order_id: first });
    // And the record still names that order, for any later crash.
    let again = store.claim(&claim(&key, "h1", now + 40_000)).await.unwrap();
    assert_eq!(again, Claim::TakenOver { order_id: first });
}

/// Fails the next `remaining` calls of one DynamoDB operation before they are sent: a fault
/// between two calls of an adapter, which moto alone never produces.
#[derive(Debug)]
struct FailOperation<I> {
    remaining: std::sync::atomic::AtomicU32,
    operation: std::marker::PhantomData<fn(I)>,
}

impl<I: std::fmt::Debug + Send + Sync + 'static> aws_sdk_dynamodb::config::Intercept for FailOperation<I> {
    fn name(&self) -> &'static str {
        "FailOperation"
    }

    fn read_before_execution(
        &self,
        context: &aws_sdk_dynamodb::config::interceptors::BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        use std::sync::atomic::Ordering;
        let targeted = context.input().downcast_ref::<I>().is_some();
        if targeted && self.remaining.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok() {
            return Err("injected fault".into());
        }
        Ok(())
    }
}

/// A client whose next call of the operation taking input `I` fails.
async fn dynamodb_failing_once<I: std::fmt::Debug + Send + Sync + 'static>() -> aws_sdk_dynamodb::Client {
    let fault = FailOperation::<I> { remaining: 1.into(), operation: std::marker::PhantomData };
    let config = aws_sdk_dynamodb::config::Builder::from(&env().emulator.sdk_config().await).interceptor(fault).build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test]
async fn a_takeover_interrupted_half_way_still_resumes_the_first_order() {
    let _serial = testkit::serial().await;
    let table = env().stack.output("IdempotencyTableName");
    let store = DynamoIdempotency::new(dynamodb().await, table);
    let key = ulid::Ulid::new().to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let Claim::Started { order_id: first } = store.claim(&claim(&key, "h1", now)).await.unwrap() else { panic!() };
    // Given a takeover whose second write fails (or whose function dies after the first),
    let faulty = DynamoIdempotency::new(
        dynamodb_failing_once::<aws_sdk_dynamodb::operation::update_item::UpdateItemInput>().await,
        table,
    );
    let _ = faulty.claim(&claim(&key, "h1", now + 20_000)).await;
    // then the next takeover still resumes the order the key was first bound to.
    let again = store.claim(&claim(&key, "h1", now + 40_000)).await.unwrap();
    assert_eq!(again, Claim::TakenOver { order_id: first });
}

#[tokio::test]
async fn a_late_attempt_cannot_release_a_key_a_newer_attempt_holds() {
    let _serial = testkit::serial().await;
    let store = DynamoIdempotency::new(dynamodb().await, env().stack.output("IdempotencyTableName"));
    let key = ulid::Ulid::new().to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let slow = claim(&key, "h1", now);
    store.claim(&slow).await.unwrap();
    // Given a newer attempt took over after the first one's lease lapsed,
    let newer = store.claim(&claim(&key, "h1", now + 20_000)).await.unwrap();
    assert!(matches!(newer, Claim::TakenOver { .. }));
    // when the slow first attempt finally gives up and releases, or completes,
    store.release(&key, &slow.attempt).await.unwrap();
    let late = StoredResponse { status: 503, headers: vec![], body: "{}".into() };
    store.complete(&key, &slow.attempt, &late).await.unwrap();
    // then the key is still held by the newer attempt: no third attempt starts another order.
    assert_eq!(store.claim(&claim(&key, "h1", now + 21_000)).await.unwrap(), Claim::InProgress);
}

#[tokio::test]
async fn a_released_key_can_be_claimed_afresh() {
    let _serial = testkit::serial().await;
    let store = DynamoIdempotency::new(dynamodb().await, env().stack.output("IdempotencyTableName"));
    let key = ulid::Ulid::new().to_string();
    let now = chrono::Utc::now().timestamp_millis();
    let first = claim(&key, "h1", now);
    store.claim(&first).await.unwrap();
    store.release(&key, &first.attempt).await.unwrap();
    assert!(matches!(store.claim(&claim(&key, "h1", now)).await.unwrap(), Claim::Started { .. }));
}

#[tokio::test]
async fn processed_markers_lease_complete_and_report_duplicates() {
    let _serial = testkit::serial().await;
    let store = DynamoProcessedEvents::new(dynamodb().await, env().stack.output("ProcessedEventsTableName"));
    let marker = Marker { consumer: "it", event_id: EventId::new(), expires_at: 4_000_000_000 };
    let now = chrono::Utc::now().timestamp_millis();
    assert_eq!(store.claim(&marker, now, now + 5_000).await, Ok(Lease::Acquired));
    assert_eq!(store.claim(&marker, now, now + 5_000).await, Ok(Lease::HeldElsewhere));
    assert_eq!(
        store.claim(&marker, now + 6_000, now + 9_000).await,
        Ok(Lease::Acquired),
        "a lapsed lease is taken over"
    );
    store.complete(&marker).await.unwrap();
    assert_eq!(store.claim(&marker, now + 10_000, now + 15_000).await, Ok(Lease::AlreadyProcessed));
}

#[tokio::test]
async fn put_events_reaches_the_consumer_queues_through_the_rules_of_the_template() {
    let _serial = testkit::serial().await;
    let config = env().emulator.sdk_config().await;
    let publisher =
        EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&config), env().stack.output("EventBusName"));
    let lines = vec![LineItem { sku: "MUG".into(), quantity: 1, unit_price: Money::new(1250, Currency::EUR) }];
    let envelope = Envelope::new(
        OrderId::new(),
        2,
        "corr-it",
        chrono::Utc::now(),
        OrderPlacedV2::new("cust-it".into(), &lines, Money::new(1250, Currency::EUR)),
    );
    let rejected = publisher.put(&[envelope.to_outbound()]).await.unwrap();
    assert!(rejected.is_empty());
    let sqs = aws_sdk_sqs::Client::new(&config);
    let queue = env().stack.output("AnalyticsQueueUrl");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let found =
            received.messages().iter().filter_map(|m| m.body()).find(|b| b.contains(&envelope.event_id.to_string()));
        if let Some(body) = found {
            let event: serde_json::Value = serde_json::from_str(body).unwrap();
            assert_eq!(event["detail-type"], "order.placed");
            assert_eq!(Envelope::<OrderPlacedV2>::from_detail(&event["detail"]).unwrap(), envelope);
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the event never reached the analytics queue");
    }
}
