//! The read side on the template's tables in the local emulator: the views table's conditional
//! writes and its `ByCustomer` index, the projector fed stream records (Lambda's own typed
//! records) of events the real order store wrote, the API on top, and the rebuild into a fresh
//! table that notices a tampered live view.

mod common;

use aws_sdk_dynamodb::Client;
use common::*;
use lambda_http::http::Method;
use order_views::api::{self, Views};
use order_views::dynamo::{item_of, DynamoViews};
use order_views::ports::{CustomerViews, Saved, ViewStore};
use order_views::projector::{handle, Projector};
use order_views::record::insert_record;
use serde_json::Value;
use shared::adapters::dynamodb::{s, DynamoShop, Item, ShopTables};
use shared::config::Env;
use shared::domain::{CustomerId, OrderId, OrderStatus, Recorded};
use std::collections::BTreeMap;
use testkit::shared as aws;

async fn client() -> Client {
    shared::config::dynamodb(&aws().emulator.sdk_config().await)
}

fn output(name: &str) -> String {
    aws().stack.output(name).to_owned()
}

/// The projector's and the API's environment, as the template sets it.
fn env(views_table: &str) -> Env {
    Env(BTreeMap::from([
        ("ORDER_VIEWS_TABLE".to_owned(), views_table.to_owned()),
        ("ORDERS_TABLE".to_owned(), output("OrdersTableName")),
    ]))
}

async fn live_views() -> DynamoViews {
    DynamoViews::new(client().await, output("OrderViewsTableName"))
}

async fn shop() -> DynamoShop {
    let tables = ShopTables {
        products: output("ProductsTableName"),
        orders: output("OrdersTableName"),
        outbox: output("OutboxTableName"),
    };
    DynamoShop::new(client().await, tables)
}

/// A customer of this test alone: tests share the stack.
fn customer() -> String {
    format!("cust-{}", ulid::Ulid::new())
}

/// Commits `history` through the real order store (event items, open-order markers).
async fn committed(history: &[Recorded]) -> OrderId {
    let (shop, id) = (shop().await, OrderId::new());
    for r in history {
        commit(&shop, id, r).await;
    }
    id
}

/// Every item the orders table holds for `id` (its events, and its marker while open).
async fn stored_items(id: OrderId) -> Vec<Item> {
    let out = client()
        .await
        .query()
        .table_name(output("OrdersTableName"))
        .key_condition_expression("orderId = :id")
        .expression_attribute_values(":id", s(id.to_string()))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    out.items().to_vec()
}

/// Every item of the orders table.
async fn all_order_items() -> Vec<Item> {
    let (client, mut items, mut start) = (client().await, Vec::new(), None);
    loop {
        let out = client
            .scan()
            .table_name(output("OrdersTableName"))
            .consistent_read(true)
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .unwrap();
        items.extend(out.items().iter().cloned());
        match out.last_evaluated_key() {
            Some(key) if !key.is_empty() => start = Some(key.clone()),
            _ => return items,
        }
    }
}

fn version(item: &Item) -> u32 {
    item["version"].as_n().unwrap().parse().unwrap()
}

fn list_request(customer: &str, query: &str) -> lambda_http::Request {
    let path = format!("/customers/{customer}/orders");
    let mut event = aws_lambda_events::event::apigw::ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some("GET /customers/{customerId}/orders".into());
    event.raw_path = Some(path.clone());
    event.raw_query_string = Some(query.into());
    event.path_parameters = [("customerId".to_owned(), customer.to_owned())].into();
    event.request_context.stage = Some("$default".into());
    event.request_context.http.method = Method::GET;
    event.request_context.http.path = Some(path);
    event.request_context.authorizer = Some(shared::testing::verified_token(customer, &[]));
    lambda_http::request::from_str(&serde_json::to_string(&event).unwrap()).unwrap()
}

/// The customer's own list, as they ask for it with their token.
async fn list(views: &Views, customer: &str, query: &str) -> (u16, Value) {
    let access = shared::auth::Access::default();
    let response = api::handle(views, &access, list_request(customer, query)).await.unwrap();
    (response.status().as_u16(), serde_json::from_slice(response.body().as_ref()).unwrap())
}

#[tokio::test]
async fn given_the_views_table_when_views_are_put_conditionally_then_only_the_next_version_is_written() {
    let _serial = testkit::serial().await;
    let views = live_views().await;
    let history = recorded(events(Life::Delivered, &customer(), 2500, start()));
    let id = OrderId::new();
    let (v1, v2) = (fold(id, &history[..1]), fold(id, &history[..2]));

    assert_eq!(views.put_if(&v1, 0).await, Ok(Saved::Written));
    assert_eq!(views.put_if(&v1, 0).await, Ok(Saved::Moved), "a first version exists already");
    assert_eq!(views.put_if(&v2, 1).await, Ok(Saved::Written));
    assert_eq!(views.put_if(&v2, 1).await, Ok(Saved::Moved), "the view moved on to version 2");

    assert_eq!(views.get(id).await, Ok(Some(v2)));
    assert_eq!(views.get(OrderId::new()).await, Ok(None));
}

#[tokio::test]
async fn given_a_customers_views_when_listed_through_by_customer_then_pages_come_newest_first_each_view_once() {
    let _serial = testkit::serial().await;
    let (views, ada, bob) = (live_views().await, customer(), customer());
    let mut expected = Vec::new();
    for i in 0..5 {
        let history = recorded(events(Life::ALL[i % 4], &ada, 100, start() + chrono::Duration::hours(i as i64)));
        let view = fold(OrderId::new(), &history);
        assert_eq!(views.put_if(&view, 0).await, Ok(Saved::Written));
        expected.insert(0, view);
    }
    let bobs = fold(OrderId::new(), &recorded(events(Life::Delivered, &bob, 1, start())));
    views.put_if(&bobs, 0).await.unwrap();

    let (mut seen, mut after) = (Vec::new(), None);
    loop {
        let page = views.page(&CustomerId(ada.clone()), 2, after.as_ref()).await.unwrap();
        assert!(page.views.len() <= 2);
        seen.extend(page.views);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }

    assert_eq!(seen, expected);
}

#[tokio::test]
async fn given_events_written_by_the_order_store_when_their_stream_records_arrive_out_of_order_twice_then_the_views_are_their_folds_and_the_api_lists_them(
) {
    let _serial = testkit::serial().await;
    let ada = customer();
    let delivered = recorded(events(Life::Delivered, &ada, 2500, start()));
    let pending = recorded(events(Life::Declined, &ada, 900, start() + chrono::Duration::hours(1)));
    let (delivered_id, pending_id) = (committed(&delivered).await, committed(&pending[..1]).await);
    let mut items = stored_items(delivered_id).await;
    items.reverse();
    let pending_items = stored_items(pending_id).await;
    assert!(pending_items.iter().any(|i| version(i) == 0), "an open order has its marker item");
    items.extend(pending_items);
    items.extend(stored_items(delivered_id).await);
    let records = items.iter().enumerate().map(|(i, item)| insert_record(item, &format!("{:06}", i + 1))).collect();
    let projector = Projector::from_env(&env(&output("OrderViewsTableName")), &aws().emulator.sdk_config().await)
        .expect("the projector needs only the two tables");

    let response = handle(&projector, &batch(records)).await;

    assert!(failed(&response).is_empty(), "{response:?}");
    let views = live_views().await;
    assert_eq!(views.get(delivered_id).await.unwrap(), Some(fold(delivered_id, &delivered)));
    assert_eq!(views.get(pending_id).await.unwrap(), Some(fold(pending_id, &pending[..1])));

    let api = Views::from_env(&env(&output("OrderViewsTableName")), &aws().emulator.sdk_config().await).unwrap();
    let (status, page) = list(&api, &ada, "limit=1").await;
    assert_eq!(status, 200);
    assert_eq!(page["orders"][0]["orderId"], pending_id.to_string(), "newest first");
    assert_eq!(page["orders"][0]["status"], "PENDING_PAYMENT");
    let cursor = page["nextCursor"].as_str().unwrap().to_owned();
    let (status, rest) = list(&api, &ada, &format!("limit=1&cursor={cursor}")).await;
    assert_eq!(status, 200);
    assert_eq!(rest["orders"][0]["orderId"], delivered_id.to_string());
    assert_eq!(
        (rest["orders"][0]["status"].as_str(), rest["orders"][0]["version"].as_u64()),
        (Some("DELIVERED"), Some(4))
    );
    assert_eq!(rest["nextCursor"], Value::Null);
    let (status, _) = list(&api, &customer(), &format!("cursor={cursor}")).await;
    assert_eq!(status, 400, "ada's cursor is not another customer's");
    let (status, _) = list(&api, &ada, "cursor=eyJjIjoiIn0").await;
    assert_eq!(status, 400, "a cursor that decodes to something else");
}

#[tokio::test]
async fn given_a_view_item_that_cannot_be_read_when_listed_then_the_api_answers_500_not_garbage() {
    let _serial = testkit::serial().await;
    let ada = customer();
    let mut item = item_of(&fold(OrderId::new(), &recorded(events(Life::Expired, &ada, 1, start())))).unwrap();
    item.insert("state".into(), s("{broken"));
    let client = client().await;
    client.put_item().table_name(output("OrderViewsTableName")).set_item(Some(item)).send().await.unwrap();
    let api = Views::from_env(&env(&output("OrderViewsTableName")), &aws().emulator.sdk_config().await).unwrap();

    let (status, problem) = list(&api, &ada, "").await;

    assert_eq!((status, problem["type"].as_str()), (500, Some("https://shop.example/problems/internal")));
}

#[tokio::test]
async fn given_every_order_projected_into_a_live_table_when_rebuilt_into_a_fresh_one_then_they_match_until_a_live_view_is_tampered(
) {
    let _serial = testkit::serial().await;
    let sdk = aws().emulator.sdk_config().await;
    let client = client().await;
    // A live table of this test's own, so that other tests' views do not show as differences.
    let live = format!("live-views-{}", ulid::Ulid::new().to_string().to_lowercase());
    order_views::dynamo::create_like(&client, &output("OrderViewsTableName"), &live).await.unwrap();
    let ada = customer();
    for (i, life) in Life::ALL.into_iter().enumerate() {
        committed(&recorded(events(life, &ada, 10 * i as i64 + 1, start() + chrono::Duration::hours(i as i64)))).await;
    }
    // The whole event store, in scan order (not an order's version order), through the projector.
    let items = all_order_items().await;
    let orders = items.iter().filter(|i| version(i) > 0).map(|i| i["orderId"].as_s().unwrap().clone());
    let orders: std::collections::BTreeSet<String> = orders.collect();
    let projector = Projector::from_env(&env(&live), &sdk).unwrap();
    for chunk in items.chunks(10) {
        let records = chunk.iter().enumerate().map(|(i, item)| insert_record(item, &i.to_string())).collect();
        assert!(failed(&handle(&projector, &batch(records)).await).is_empty());
    }

    let fresh = format!("fresh-views-{}", ulid::Ulid::new().to_string().to_lowercase());
    let report = order_views::rebuild::run(&env(&live), &sdk, &fresh).await.unwrap();

    assert!(report.matches(), "{report:?}");
    assert_eq!((report.orders, report.written, report.identical), (orders.len(), orders.len(), orders.len()));
    let rebuilt = DynamoViews::new(client.clone(), &fresh);
    let listed = rebuilt.page(&CustomerId(ada.clone()), 10, None).await.unwrap();
    assert_eq!(listed.views.len(), 4, "the fresh table has the ByCustomer index");

    let tampered = listed.views[0].order_id;
    client
        .update_item()
        .table_name(&live)
        .key("orderId", s(tampered.to_string()))
        .update_expression("SET #status = :delivered")
        .expression_attribute_names("#status", "status")
        .expression_attribute_values(":delivered", s(OrderStatus::Delivered.as_str()))
        .send()
        .await
        .unwrap();
    let again = format!("fresh-views-{}", ulid::Ulid::new().to_string().to_lowercase());
    let report = order_views::rebuild::run(&env(&live), &sdk, &again).await.unwrap();

    assert!(!report.matches());
    assert_eq!(report.differing, vec![tampered.to_string()]);
    assert_eq!(report.identical, orders.len() - 1);
    assert!(matches!(
        order_views::rebuild::run(&env(&live), &sdk, &live).await,
        Err(order_views::rebuild::RebuildError::IntoLive(_))
    ));

    // The operator's command: the same report on stdout, and --check fails on a difference.
    let third = format!("fresh-views-{}", ulid::Ulid::new().to_string().to_lowercase());
    let out = rebuild_command(&live, &["--into", &third, "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("the report as JSON on stdout");
    assert_eq!(printed["differing"], serde_json::json!([tampered.to_string()]));
    assert_eq!(printed["orders"], orders.len());
    let out = rebuild_command(&live, &["--check"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
}

/// `rebuild-order-views` run against the emulator with `live` as the live views table.
fn rebuild_command(live: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rebuild-order-views"))
        .args(args)
        .env("ORDER_VIEWS_TABLE", live)
        .env("ORDERS_TABLE", output("OrdersTableName"))
        .env("AWS_ENDPOINT_URL", &aws().emulator.endpoint)
        .env("AWS_REGION", testkit::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .output()
        .expect("run rebuild-order-views")
}
