//! `shop-ops` against the emulator: the binary itself, run as an operator runs it, on the
//! stack provisioned from template.yaml (one emulator and stack for this whole test binary).
//! Locally through an outputs file like the one `make dev` writes; as a deployed stack through
//! CloudFormation's `DescribeStacks` on the same emulator (`AWS_ENDPOINT_URL`).
//!
//! Every test holds `testkit::serial()`: they count messages in shared queues.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
use chrono::{Duration as Span, Utc};
use serde_json::Value;
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::handle_batch;
use shared::domain::{Currency, CustomerId, LineItem, Money, OrderEvent, OrderId};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_message};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use testkit::shared as aws;

// --------------------------------------------------------------------------------------------
// Running the CLI
// --------------------------------------------------------------------------------------------

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", self.stdout, self.stderr))
    }

    fn ok(self) -> Run {
        assert_eq!(self.code, 0, "shop-ops failed:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        self
    }
}

/// A directory without `.local/`, so that only the flags choose the target.
fn workdir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("shop-ops-test-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// The local stack's outputs as `make dev` writes them: the stack's outputs and the emulator.
fn local_outputs() -> &'static Path {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let mut outputs = aws().stack.outputs.clone();
        outputs.insert("EmulatorEndpoint".into(), aws().emulator.endpoint.clone());
        let file = workdir().join("stack-outputs.json");
        std::fs::write(&file, serde_json::to_string_pretty(&outputs).unwrap()).unwrap();
        file
    })
}

/// The binary, with no AWS settings from the machine running the tests.
fn command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_shop-ops"));
    command.args(args).current_dir(workdir()).stdin(Stdio::null());
    for (name, _) in std::env::vars() {
        if name.starts_with("AWS_") {
            command.env_remove(name);
        }
    }
    command
        .env("AWS_CONFIG_FILE", "/nonexistent/aws-config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws-credentials")
        .env("AWS_EC2_METADATA_DISABLED", "true");
    command
}

fn run(mut command: Command) -> Run {
    let out = command.output().expect("run shop-ops");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `shop-ops --local --outputs <file> <args>`.
fn local(args: &[&str]) -> Run {
    let file = local_outputs().to_str().unwrap();
    let mut all = vec!["--local", "--outputs", file];
    all.extend_from_slice(args);
    run(command(&all))
}

/// `shop-ops --stack <name> <args>`, AWS being the emulator.
async fn deployed(args: &[&str]) -> Run {
    let name = stack_name().await;
    let mut all = vec!["--stack", name.as_str()];
    all.extend_from_slice(args);
    run(as_aws(command(&all)))
}

/// The emulator as AWS, found through the standard environment variables.
fn as_aws(mut command: Command) -> Command {
    command
        .env("AWS_ENDPOINT_URL", &aws().emulator.endpoint)
        .env("AWS_REGION", testkit::REGION)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test");
    command
}

/// The CloudFormation name of the stack testkit provisioned: the one stack in this emulator.
async fn stack_name() -> String {
    let out = aws_sdk_cloudformation::Client::new(&config().await).describe_stacks().send().await.unwrap();
    let names: Vec<&str> = out.stacks().iter().filter_map(|s| s.stack_name()).collect();
    assert_eq!(names.len(), 1, "one stack in this test binary's emulator: {names:?}");
    names[0].to_owned()
}

// --------------------------------------------------------------------------------------------
// The emulator, directly
// --------------------------------------------------------------------------------------------

async fn config() -> aws_config::SdkConfig {
    aws().emulator.sdk_config().await
}

async fn sqs() -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(&config().await)
}

fn output(key: &str) -> &'static str {
    aws().stack.output(key)
}

/// Empties a queue by receiving and deleting (moto, as SQS, allows one `PurgeQueue` a minute).
async fn drain(url: &str) {
    let sqs = sqs().await;
    loop {
        let out = sqs.receive_message().queue_url(url).max_number_of_messages(10).visibility_timeout(30).send().await;
        let messages = out.unwrap().messages.unwrap_or_default();
        if messages.is_empty() {
            return;
        }
        for m in messages {
            sqs.delete_message().queue_url(url).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
        }
    }
}

async fn drain_every_consumer_queue() {
    for prefix in ["Email", "Inventory", "Analytics", "Loyalty", "Recommendations"] {
        drain(output(&format!("{prefix}QueueUrl"))).await;
        drain(output(&format!("{prefix}DeadLetterQueueUrl"))).await;
    }
}

fn string(value: &str) -> MessageAttributeValue {
    MessageAttributeValue::builder().data_type("String").string_value(value).build().unwrap()
}

/// A message as the harness dead-letters it: the body unchanged, with `ErrorKind`/`ErrorReason`.
async fn dead_letter(url: &str, body: &str, kind: &str, reason: &str) {
    sqs()
        .await
        .send_message()
        .queue_url(url)
        .message_body(body)
        .message_attributes("ErrorKind", string(kind))
        .message_attributes("ErrorReason", string(reason))
        .send()
        .await
        .unwrap();
}

async fn visible(url: &str) -> u64 {
    let out = sqs()
        .await
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .unwrap();
    let attributes = out.attributes().unwrap();
    attributes[&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages].parse().unwrap()
}

/// Up to ten messages of the queue, left visible (visibility timeout 0).
async fn receive_all(url: &str) -> Vec<aws_sdk_sqs::types::Message> {
    let out = sqs()
        .await
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(0)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    out.messages.unwrap_or_default()
}

// --------------------------------------------------------------------------------------------
// dlq
// --------------------------------------------------------------------------------------------

#[tokio::test]
async fn dlq_list_reports_every_consumer_s_queue_and_dead_letter_depth() {
    let _serial = testkit::serial().await;
    drain_every_consumer_queue().await;
    let dlq = output("RecommendationsDeadLetterQueueUrl");
    for n in 0..3 {
        dead_letter(dlq, &format!("poison {n}"), "permanent", "poison").await;
    }

    let listed = local(&["--json", "dlq", "list"]).ok().json();

    let consumers = listed["consumers"].as_array().unwrap();
    let names: Vec<&str> = consumers.iter().map(|c| c["consumer"].as_str().unwrap()).collect();
    assert_eq!(names, ["email", "inventory", "analytics", "loyalty", "recommendations"]);
    let recommendations = &consumers[4];
    assert_eq!(recommendations["deadLetterQueue"]["messages"], 3);
    assert_eq!(recommendations["deadLetterQueue"]["url"], dlq);
    assert_eq!(consumers[0]["deadLetterQueue"]["messages"], 0);
    let text = local(&["dlq", "list"]).ok().stdout;
    assert!(text.contains("3 dead letter(s)") && text.contains("dlq show <consumer>"), "{text}");
}

#[tokio::test]
async fn dlq_show_describes_each_dead_letter_and_leaves_every_one_in_the_queue() {
    let _serial = testkit::serial().await;
    let dlq = output("EmailDeadLetterQueueUrl");
    drain(dlq).await;
    let event = order_placed("cust-nobody", &[("MUG", 1, 1250)]);
    dead_letter(dlq, &eventbridge_body(&event), "permanent", "unknown customer cust-nobody").await;
    dead_letter(dlq, "{not an event", "permanent", "poison: body is not an EventBridge event").await;

    let first = local(&["--json", "dlq", "show", "email"]).ok().json();
    let again = local(&["--json", "dlq", "show", "email"]).ok().json();

    let messages = first["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{first}");
    let placed = messages.iter().find(|m| m["readable"] == true).expect("the event");
    assert_eq!(placed["eventType"], "order.placed");
    assert_eq!(placed["eventId"], event.event_id.to_string());
    assert_eq!(placed["orderId"], event.order_id.to_string());
    assert_eq!(placed["errorKind"], "permanent");
    assert_eq!(placed["errorReason"], "unknown customer cust-nobody");
    assert!(placed["receiveCount"].as_u64().unwrap() >= 1);
    assert!(placed["firstReceivedAt"].is_string());
    let poison = messages.iter().find(|m| m["readable"] == false).expect("the poison message");
    assert_eq!(poison["body"], "{not an event");
    assert_eq!(again["messages"].as_array().unwrap().len(), 2, "a second look sees the same messages");
    assert_eq!(visible(dlq).await, 2, "nothing consumed, nothing left hidden");
    let text = local(&["dlq", "show", "email"]).ok().stdout;
    assert!(text.contains("left in the queue") && text.contains("permanent: unknown customer"), "{text}");
}

async fn points(customer: &str) -> i64 {
    let item = aws_sdk_dynamodb::Client::new(&config().await)
        .get_item()
        .table_name(output("LoyaltyTableName"))
        .key("customerId", AttributeValue::S(customer.into()))
        .key("entry", AttributeValue::S("BALANCE".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item;
    item.and_then(|i| i.get("points").and_then(|p| p.as_n().ok()).and_then(|p| p.parse().ok())).unwrap_or(0)
}

/// Receives the loyalty queue's messages and runs the loyalty consumer on them as its event
/// source does, deleting what it processed. Returns how many it was given.
async fn deliver_to_loyalty() -> usize {
    let queue = output("LoyaltyQueueUrl");
    let env = shared::config::Env(aws().stack.function("LoyaltyFunction").environment.clone());
    let consumer = loyalty::Loyalty::from_env(&env, &config().await).unwrap();
    let messages = receive_all(queue).await;
    let mut batch = aws_lambda_events::event::sqs::SqsEvent::default();
    batch.records = messages.iter().map(|m| sqs_message(m.message_id().unwrap(), m.body().unwrap(), 1)).collect();
    let now = Utc::now().timestamp_millis();
    let response = handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, now, now + 10_000).await;
    assert!(failed_ids(&response).is_empty(), "the consumer applied every message");
    for m in &messages {
        sqs().await.delete_message().queue_url(queue).receipt_handle(m.receipt_handle().unwrap()).send().await.unwrap();
    }
    messages.len()
}

#[tokio::test]
async fn a_redriven_dead_letter_is_applied_once_and_a_second_redrive_or_delivery_changes_nothing() {
    let _serial = testkit::serial().await;
    let (queue, dlq) = (output("LoyaltyQueueUrl"), output("LoyaltyDeadLetterQueueUrl"));
    drain(queue).await;
    drain(dlq).await;
    // Given an order.placed the loyalty consumer never applied, dead-lettered after a fault.
    let customer = format!("cust-redrive-{}", &ulid::Ulid::new().to_string()[16..]);
    let event = order_placed(&customer, &[("MUG", 2, 1250), ("TEE", 1, 2000)]);
    let body = eventbridge_body(&event);
    dead_letter(dlq, &body, "transient", "loyalty table unavailable").await;
    assert_eq!(points(&customer).await, 0);

    // When it is redriven
    let redriven = local(&["--json", "dlq", "redrive", "loyalty"]).ok().json();

    // Then it is back in the consumer's queue, body and attributes unchanged, and gone from the DLQ.
    assert_eq!((redriven["moved"].as_u64(), redriven["status"].as_str()), (Some(1), Some("moved")), "{redriven}");
    assert_eq!(visible(dlq).await, 0);
    let back = receive_all(queue).await;
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].body(), Some(body.as_str()));
    let kind = back[0].message_attributes().and_then(|a| a.get("ErrorKind")).and_then(|v| v.string_value());
    assert_eq!(kind, Some("transient"));
    // And the consumer applies it: once.
    assert_eq!(deliver_to_loyalty().await, 1);
    let credited = points(&customer).await;
    assert_eq!(credited, loyalty::points_for(Money::new(4500, Currency::EUR)));

    // A second redrive finds nothing; the same event delivered again is skipped as a duplicate.
    let again = local(&["dlq", "redrive", "loyalty"]).ok();
    assert!(again.stdout.contains("empty: nothing to redrive"), "{}", again.stdout);
    sqs().await.send_message().queue_url(queue).message_body(&body).send().await.unwrap();
    assert_eq!(deliver_to_loyalty().await, 1);
    assert_eq!(points(&customer).await, credited, "credited once");
}

#[tokio::test]
async fn dlq_purge_refuses_without_yes_and_deletes_everything_with_it() {
    let _serial = testkit::serial().await;
    let dlq = output("InventoryDeadLetterQueueUrl");
    drain(dlq).await;
    dead_letter(dlq, "one", "permanent", "poison").await;
    dead_letter(dlq, "two", "permanent", "poison").await;

    let refused = local(&["dlq", "purge", "inventory"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("--yes") && refused.stderr.contains("for good"), "{}", refused.stderr);
    assert_eq!(visible(dlq).await, 2, "nothing deleted without --yes");

    let purged = local(&["--json", "dlq", "purge", "inventory", "--yes"]).ok().json();
    assert_eq!(purged["purged"], 2);
    assert_eq!(visible(dlq).await, 0);
}

#[tokio::test]
async fn an_empty_dead_letter_queue_is_answered_clearly_by_every_command() {
    let _serial = testkit::serial().await;
    drain(output("AnalyticsDeadLetterQueueUrl")).await;

    let shown = local(&["dlq", "show", "analytics"]).ok();
    assert!(shown.stdout.contains("analytics's dead-letter queue is empty: nothing to show"), "{}", shown.stdout);
    assert_eq!(local(&["--json", "dlq", "show", "analytics"]).ok().json()["messages"], serde_json::json!([]));
    let redriven = local(&["--json", "dlq", "redrive", "analytics"]).ok().json();
    assert_eq!((redriven["moved"].as_u64(), redriven["status"].as_str()), (Some(0), Some("empty")));
    let purged = local(&["dlq", "purge", "analytics"]).ok();
    assert!(purged.stdout.contains("already empty"), "{}", purged.stdout);
}

#[tokio::test]
async fn an_unknown_consumer_is_refused_with_the_consumers_there_are() {
    let refused = local(&["dlq", "show", "shipping"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("'shipping'")
            && refused.stderr.contains("email, inventory, analytics, loyalty, recommendations"),
        "{}",
        refused.stderr
    );
}

#[tokio::test]
async fn redrive_status_locally_says_there_are_no_move_tasks_to_follow() {
    let _serial = testkit::serial().await;
    let status = local(&["--json", "dlq", "redrive-status", "email"]).ok().json();
    assert_eq!(status["tasks"], serde_json::json!([]));
    assert!(status["note"].as_str().unwrap().contains("moto has no message move tasks"));
}

// --------------------------------------------------------------------------------------------
// seed
// --------------------------------------------------------------------------------------------

fn seed_file(sku: &str, customer: &str, available: i64) -> PathBuf {
    let file = workdir().join(format!("seed-{sku}.json"));
    let seed = serde_json::json!({
        "products": [{"sku": sku, "name": "Ops mug", "unitPrice": 1250, "currency": "EUR", "available": available,
                      "lowStockThreshold": 2}],
        "customers": [{"customerId": customer, "email": format!("{customer}@example.com"), "name": "Ops Customer"}],
    });
    std::fs::write(&file, seed.to_string()).unwrap();
    file
}

async fn item(table: &str, key: &str, value: &str) -> std::collections::HashMap<String, AttributeValue> {
    aws_sdk_dynamodb::Client::new(&config().await)
        .get_item()
        .table_name(output(table))
        .key(key, AttributeValue::S(value.into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_else(|| panic!("no {value} in {table}"))
}

fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item[name].as_n().unwrap().parse().unwrap()
}

#[tokio::test]
async fn seeding_twice_leaves_the_tables_as_seeding_once() {
    let _serial = testkit::serial().await;
    let suffix = &ulid::Ulid::new().to_string()[18..];
    let (sku, customer) = (format!("OPS-{suffix}"), format!("cust-ops-{suffix}"));
    let file = seed_file(&sku, &customer, 7);
    let file = file.to_str().unwrap();

    let first = local(&["--json", "seed", "--file", file]).ok();
    let after_first =
        (item("ProductsTableName", "sku", &sku).await, item("CustomersTableName", "customerId", &customer).await);
    let second = local(&["--json", "seed", "--file", file]).ok();
    let after_second =
        (item("ProductsTableName", "sku", &sku).await, item("CustomersTableName", "customerId", &customer).await);

    assert_eq!(after_first, after_second);
    let product = &after_first.0;
    assert_eq!(product["name"].as_s().unwrap(), "Ops mug");
    assert_eq!((number(product, "unitPrice"), number(product, "available"), number(product, "reserved")), (1250, 7, 0));
    assert_eq!(product["currency"].as_s().unwrap(), "EUR");
    assert_eq!(number(product, "lowStockThreshold"), 2);
    assert_eq!(after_first.1["email"].as_s().unwrap(), &format!("{customer}@example.com"));
    assert_eq!(first.json()["products"]["created"], serde_json::json!([sku]));
    assert_eq!(second.json()["products"]["updated"], serde_json::json!([sku]));
    assert_eq!(second.json()["customers"]["updated"], serde_json::json!([customer]));
    assert!(first.stderr.contains(&format!("product {sku}: created")), "progress on stderr: {}", first.stderr);
}

#[tokio::test]
async fn seeding_a_live_stack_keeps_its_stock_unless_told_to_reset_it() {
    let _serial = testkit::serial().await;
    let suffix = &ulid::Ulid::new().to_string()[18..];
    let (sku, customer) = (format!("OPS-{suffix}"), format!("cust-ops-{suffix}"));
    let file = seed_file(&sku, &customer, 10);
    let file = file.to_str().unwrap();
    local(&["seed", "--file", file]).ok();
    // A checkout reserves 3 (as the saga's transaction does).
    aws_sdk_dynamodb::Client::new(&config().await)
        .update_item()
        .table_name(output("ProductsTableName"))
        .key("sku", AttributeValue::S(sku.clone()))
        .update_expression("SET available = available - :q, reserved = reserved + :q")
        .expression_attribute_values(":q", AttributeValue::N("3".into()))
        .send()
        .await
        .unwrap();

    local(&["seed", "--file", file]).ok();
    let kept = item("ProductsTableName", "sku", &sku).await;
    local(&["seed", "--file", file, "--reset-stock"]).ok();
    let reset = item("ProductsTableName", "sku", &sku).await;

    assert_eq!((number(&kept, "available"), number(&kept, "reserved")), (7, 3), "the sale and its reservation kept");
    assert_eq!((number(&reset, "available"), number(&reset, "reserved")), (10, 3), "reserved belongs to the order");
}

#[tokio::test]
async fn a_seed_file_with_mistakes_is_refused_whole_with_every_mistake_named() {
    let _serial = testkit::serial().await;
    let file = workdir().join("bad-seed.json");
    let sku = format!("OPS-BAD-{}", &ulid::Ulid::new().to_string()[18..]);
    let bad = serde_json::json!({"products": [
        {"sku": sku, "name": "Fine", "unitPrice": 100, "currency": "EUR", "available": 1},
        {"sku": "OPS-BAD", "name": "Bad", "unitPrice": -5, "currency": "YEN", "available": 1},
    ]});
    std::fs::write(&file, bad.to_string()).unwrap();

    let refused = local(&["seed", "--file", file.to_str().unwrap()]);

    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("2 problem(s), nothing was seeded"), "{}", refused.stderr);
    assert!(refused.stderr.contains("products[1] (OPS-BAD): currency YEN"), "{}", refused.stderr);
    let found = aws_sdk_dynamodb::Client::new(&config().await)
        .get_item()
        .table_name(output("ProductsTableName"))
        .key("sku", AttributeValue::S(sku))
        .send()
        .await
        .unwrap();
    assert!(found.item.is_none(), "not even the valid entry was written");
}

// --------------------------------------------------------------------------------------------
// orders, projections
// --------------------------------------------------------------------------------------------

/// An order placed through the event store: `Opened` then `PaymentCaptured`, stored as the
/// checkout stores them. No projector runs here, so the live views never see it.
async fn placed_order() -> OrderId {
    let id = OrderId::new();
    let at = Utc::now();
    let line = LineItem { sku: "MUG".into(), quantity: 2, unit_price: Money::new(1250, Currency::EUR) };
    let events = [
        OrderEvent::Opened {
            customer_id: CustomerId("cust-ada".into()),
            lines: vec![line],
            total: Money::new(2500, Currency::EUR),
            at,
            correlation_id: "corr-ops".into(),
        },
        OrderEvent::PaymentCaptured { charge_id: "ch_1".into(), at: at + Span::seconds(1) },
    ];
    let dynamodb = aws_sdk_dynamodb::Client::new(&config().await);
    for (i, event) in events.iter().enumerate() {
        dynamodb
            .put_item()
            .table_name(output("OrdersTableName"))
            .item("orderId", AttributeValue::S(id.to_string()))
            .item("version", AttributeValue::N((i + 1).to_string()))
            .item("type", AttributeValue::S(event.name().into()))
            .item("event", AttributeValue::S(serde_json::to_string(event).unwrap()))
            .item("at", AttributeValue::S(event.at().to_rfc3339()))
            .item("correlationId", AttributeValue::S("corr-ops".into()))
            .send()
            .await
            .unwrap();
    }
    id
}

#[tokio::test]
async fn orders_show_folds_the_events_into_the_order_s_status_and_history() {
    let _serial = testkit::serial().await;
    let id = placed_order().await.to_string();

    let shown = local(&["--json", "orders", "show", &id]).ok().json();

    assert_eq!(shown["order"]["orderId"], id);
    assert_eq!(shown["order"]["status"], "PLACED");
    assert_eq!(shown["order"]["version"], 2);
    assert_eq!(shown["order"]["total"], 2500);
    let types: Vec<&str> = shown["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["Opened", "PaymentCaptured"]);
    assert_eq!(shown["events"][0]["correlationId"], "corr-ops");
    let text = local(&["orders", "show", &id]).ok().stdout;
    assert!(text.contains("PLACED") && text.contains("2 x MUG") && text.contains("PaymentCaptured"), "{text}");
}

#[tokio::test]
async fn orders_show_of_an_unknown_or_malformed_id_says_so() {
    let _serial = testkit::serial().await;
    let unknown = OrderId::new().to_string();
    let missing = local(&["orders", "show", &unknown]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains(&format!("no order {unknown}")), "{}", missing.stderr);
    let malformed = local(&["--json", "orders", "show", "order-42"]);
    assert_eq!(malformed.code, 2);
    assert!(malformed.json()["error"].as_str().unwrap().contains("not an order ID"));
}

#[tokio::test]
async fn projections_rebuild_check_fails_and_names_the_orders_the_live_views_miss() {
    let _serial = testkit::serial().await;
    let id = placed_order().await.to_string();
    let fresh = format!("ops-rebuild-{}", ulid::Ulid::new().to_string().to_lowercase());

    let checked = local(&["--json", "projections", "rebuild", "--into", &fresh, "--check"]);

    assert_eq!(checked.code, 1, "differences fail --check: {}", checked.stderr);
    let report = checked.json();
    assert_eq!(report["into"], fresh.as_str());
    assert_eq!(report["matches"], false);
    assert!(report["report"]["missingFromLive"].as_array().unwrap().iter().any(|o| o == id.as_str()), "{report}");
    assert!(report["report"]["written"].as_u64().unwrap() >= 1);
    let into_live = local(&["projections", "rebuild", "--into", output("OrderViewsTableName")]);
    assert_eq!(into_live.code, 2);
    assert!(into_live.stderr.contains("refusing to rebuild into the live views table"), "{}", into_live.stderr);
}

// --------------------------------------------------------------------------------------------
// replay
// --------------------------------------------------------------------------------------------

/// Puts `order.placed` on the bus, at `at` (the event's own time, which the archive keeps).
async fn publish(event: &shared::events::Envelope<shared::events::OrderPlacedV2>, at: chrono::DateTime<Utc>) {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(output("EventBusName"))
        .source("shop.checkout")
        .detail_type("order.placed")
        .detail(serde_json::to_string(event).unwrap())
        .time(aws_sdk_eventbridge::primitives::DateTime::from_secs(at.timestamp()))
        .build();
    let out = aws_sdk_eventbridge::Client::new(&config().await).put_events().entries(entry).send().await.unwrap();
    assert_eq!(out.failed_entry_count(), 0);
}

fn bodies_of(messages: &[aws_sdk_sqs::types::Message], order: OrderId) -> Vec<Value> {
    messages
        .iter()
        .filter_map(|m| serde_json::from_str::<Value>(m.body()?).ok())
        .filter(|b| b["detail"]["orderId"] == order.to_string())
        .collect()
}

#[tokio::test]
async fn a_replay_to_one_consumer_delivers_the_range_s_events_to_its_queue_only() {
    let _serial = testkit::serial().await;
    let now = Utc::now();
    let old = order_placed("cust-ada", &[("MUG", 1, 1250)]);
    let recent = order_placed("cust-ada", &[("TEE", 1, 2000)]);
    publish(&old, now - Span::hours(3)).await;
    publish(&recent, now).await;
    // The rules delivered both when they were published; start from empty queues.
    drain_every_consumer_queue().await;
    let (from, to) = ((now - Span::hours(1)).to_rfc3339(), (now + Span::minutes(1)).to_rfc3339());

    let replayed =
        local(&["--json", "replay", "--from", &from, "--to", &to, "--consumer", "loyalty", "--yes"]).ok().json();

    let replay = &replayed["replay"];
    assert_eq!(replay["state"], "COMPLETED");
    assert_eq!(replay["emulated"], true);
    assert_eq!(replay["rules"].as_array().unwrap().len(), 1, "loyalty's rule only");
    assert!(replay["events"].as_u64().unwrap() >= 1);
    let loyalty = receive_all(output("LoyaltyQueueUrl")).await;
    let delivered = bodies_of(&loyalty, recent.order_id);
    assert_eq!(delivered.len(), 1, "the event of the range, once");
    assert_eq!(delivered[0]["detail"]["eventId"], recent.event_id.to_string(), "the same event, for dedupe");
    assert_eq!(delivered[0]["replay-name"], replay["name"]);
    assert!(bodies_of(&loyalty, old.order_id).is_empty(), "an event before the range is not replayed");
    let email = receive_all(output("EmailQueueUrl")).await;
    assert!(bodies_of(&email, recent.order_id).is_empty(), "another consumer's rule gets nothing");
}

#[tokio::test]
async fn a_replay_without_yes_and_without_a_terminal_to_confirm_on_replays_nothing() {
    let _serial = testkit::serial().await;
    let now = Utc::now();
    let event = order_placed("cust-ada", &[("MUG", 1, 1250)]);
    publish(&event, now).await;
    drain_every_consumer_queue().await;
    let (from, to) = ((now - Span::minutes(5)).to_rfc3339(), (now + Span::minutes(1)).to_rfc3339());

    let refused = local(&["replay", "--from", &from, "--to", &to]);

    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("re-run with --yes"), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("every rule of the bus"),
        "the question says what would happen: {}",
        refused.stderr
    );
    assert!(bodies_of(&receive_all(output("LoyaltyQueueUrl")).await, event.order_id).is_empty());
}

#[tokio::test]
async fn a_replay_range_that_ends_before_it_starts_is_refused() {
    let refused = local(&["replay", "--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z", "--yes"]);
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("is not before --to"), "{}", refused.stderr);
    let malformed = local(&["replay", "--from", "yesterday", "--to", "2026-01-01T00:00:00Z"]);
    assert_eq!(malformed.code, 2);
    assert!(malformed.stderr.contains("RFC 3339"), "{}", malformed.stderr);
}

// --------------------------------------------------------------------------------------------
// A deployed stack (the emulator standing in for AWS), and the target errors
// --------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_deployed_stack_is_found_by_name_and_its_names_come_from_its_outputs() {
    let _serial = testkit::serial().await;
    drain_every_consumer_queue().await;
    dead_letter(output("EmailDeadLetterQueueUrl"), "poison", "permanent", "poison").await;

    let listed = deployed(&["--json", "dlq", "list"]).await.ok().json();

    assert_eq!(listed["target"]["stack"], stack_name().await);
    assert_eq!(listed["consumers"][0]["deadLetterQueue"]["url"], output("EmailDeadLetterQueueUrl"));
    assert_eq!(listed["consumers"][0]["deadLetterQueue"]["messages"], 1);
}

#[tokio::test]
async fn a_replay_on_a_deployed_stack_starts_eventbridge_s_replay_and_reports_its_state() {
    let _serial = testkit::serial().await;
    let now = Utc::now();
    let (from, to) = ((now - Span::minutes(5)).to_rfc3339(), now.to_rfc3339());

    let replayed =
        deployed(&["--json", "replay", "--from", &from, "--to", &to, "--consumer", "email", "--yes"]).await.ok().json();

    let replay = &replayed["replay"];
    assert_eq!(replay["emulated"], false);
    assert!(replay["name"].as_str().unwrap().starts_with("shop-ops-email-"));
    assert!(replay["rules"][0].as_str().unwrap().contains("EmailRule"), "{replay}");
    // moto completes a replay within StartReplay; DescribeReplay reports it.
    assert_eq!(replay["state"], "COMPLETED");
    // moto's replay sends the whole archive to every rule: leave no trace for the other tests.
    drain_every_consumer_queue().await;
}

#[tokio::test]
async fn a_stack_name_that_does_not_exist_is_named_in_the_error() {
    let _serial = testkit::serial().await;
    let failed = run(as_aws(command(&["--stack", "no-such-stack", "dlq", "list"])));
    assert_eq!(failed.code, 1);
    assert!(failed.stderr.contains("no stack named no-such-stack in us-east-1"), "{}", failed.stderr);
}

#[test]
fn without_credentials_the_operator_is_told_how_to_provide_them() {
    let mut command = command(&["--stack", "shop", "--region", "eu-west-1", "dlq", "list"]);
    command.env("HOME", workdir());
    let refused = run(command);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stderr.contains("no AWS credentials") && refused.stderr.contains("AWS_PROFILE"),
        "{}",
        refused.stderr
    );
}

#[test]
fn without_a_target_the_operator_is_told_both_ways_to_name_one() {
    let refused = run(command(&["dlq", "list"]));
    assert_eq!(refused.code, 2);
    assert!(refused.stderr.contains("--stack <name>") && refused.stderr.contains("make dev"), "{}", refused.stderr);
}

#[test]
fn a_local_outputs_file_whose_emulator_is_gone_says_to_start_make_dev_again() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let file = workdir().join("stale-outputs.json");
    std::fs::write(&file, format!(r#"{{"EmulatorEndpoint": "http://127.0.0.1:{port}"}}"#)).unwrap();

    let failed = run(command(&["--outputs", file.to_str().unwrap(), "dlq", "list"]));

    assert_eq!(failed.code, 1);
    assert!(failed.stderr.contains("does not answer") && failed.stderr.contains("make dev"), "{}", failed.stderr);
}
