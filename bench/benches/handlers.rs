//! Handler CPU cost with in-memory ports (criterion): one checkout (validate, price, reserve,
//! charge, persist, publish) and one event through the consumer harness (parse, dedupe, effect)
//! for each consumer. Run with `make bench` (or `cargo bench -p bench --bench handlers`);
//! `shop-bench` reads the estimates criterion writes under target/criterion/ into its report.
//!
//! Every iteration gets a fresh world (built outside the timing), so a measurement never
//! includes the growth of a fake's maps over hundreds of thousands of orders. Logs are
//! formatted as JSON exactly as in Lambda and written to a sink: formatting is CPU the handler
//! spends, the terminal is not.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::consumer::{handle_batch, Consumer};
use shared::domain::pricing::Product;
use shared::domain::{Currency, Money};
use shared::testing::{eventbridge_body, failed_ids, order_placed, sqs_batch};
use std::sync::Arc;

const CUSTOMER: &str = "cust-ada";
/// The order's body: its customer is the caller (the token's subject), never the body.
const ORDER: &str =
    r#"{"items":[{"sku":"MUG","quantity":2},{"sku":"TEE","quantity":1}],"paymentToken":"tok_visa","currency":"EUR"}"#;
const STOCK: i64 = 1_000_000;

fn runtime() -> tokio::runtime::Runtime {
    // One thread, as a Lambda sandbox runs one invocation at a time.
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

fn logs_to_sink() {
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_writer(std::io::sink)
        .try_init();
    // EMF metric lines go through the log too, instead of println! into criterion's output.
    shared::telemetry::metrics_to_log();
}

fn product(sku: &str, cents: i64) -> Product {
    Product { sku: sku.into(), name: format!("A {sku}"), unit_price: Money::new(cents, Currency::EUR) }
}

fn checkout() -> checkout::Checkout {
    let shop = Arc::new(
        MemoryShop::default().with_product(product("MUG", 1250), STOCK).with_product(product("TEE", 2000), STOCK),
    );
    checkout::Checkout::new(
        checkout::Ports {
            catalogue: shop.clone(),
            orders: shop.clone(),
            outbox: shop,
            publisher: Arc::new(MemoryBus::default()),
            payments: Arc::new(SandboxGateway::in_memory()),
        },
        Arc::new(MemoryIdempotency::default()),
    )
}

async fn place(checkout: &checkout::Checkout) -> checkout::service::Reply {
    let now = chrono::Utc::now().timestamp_millis();
    checkout
        .post_order(checkout::service::PostOrder {
            caller: &shared::auth::Caller { subject: shared::domain::CustomerId(CUSTOMER.into()), staff: false },
            content_type: Some("application/json"),
            idempotency_key: Some("bench-key-1"),
            body: ORDER.as_bytes(),
            correlation_id: "bench",
            now_ms: now,
            deadline_ms: now + 10_000,
        })
        .await
}

fn bench_checkout(c: &mut Criterion) {
    logs_to_sink();
    let rt = runtime();
    let sanity = rt.block_on(place(&checkout()));
    assert_eq!(sanity.status, 201, "the benchmark must measure a placed order: {}", sanity.body);
    let mut group = c.benchmark_group("checkout");
    group.bench_function("place-order", |b| {
        b.to_async(&rt).iter_batched(
            checkout,
            |checkout| async move {
                let reply = place(&checkout).await;
                (checkout, reply)
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A new `order.placed` (new event ID) as SQS delivers it, so every iteration does the effect
/// rather than the duplicate check alone.
fn fresh_batch() -> aws_lambda_events::event::sqs::SqsEvent {
    sqs_batch(&[eventbridge_body(&order_placed(CUSTOMER, &[("MUG", 2, 1250), ("TEE", 1, 2000)]))])
}

fn bench_consumer<C: Consumer + 'static>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    make: impl Fn() -> C + Copy,
) {
    let now = chrono::Utc::now().timestamp_millis();
    let sanity = rt.block_on(async {
        handle_batch(&make(), &MemoryDeadLetters::default(), &fresh_batch(), now, now + 10_000).await
    });
    assert!(failed_ids(&sanity).is_empty(), "the benchmark must measure a processed event ({name})");
    group.bench_function(name, |b| {
        b.to_async(rt).iter_batched(
            || (make(), fresh_batch()),
            |(consumer, batch)| async move {
                let response = handle_batch(&consumer, &MemoryDeadLetters::default(), &batch, now, now + 10_000).await;
                (consumer, batch, response)
            },
            BatchSize::SmallInput,
        )
    });
}

fn bench_consumers(c: &mut Criterion) {
    logs_to_sink();
    let rt = runtime();
    let mut group = c.benchmark_group("consumer");
    bench_consumer(&mut group, &rt, "loyalty", || loyalty::Loyalty {
        ledger: loyalty::memory::MemoryLedger::default(),
    });
    bench_consumer(&mut group, &rt, "email", || email::Email {
        customers: email::memory::MemoryCustomers::default().with(CUSTOMER, "ada@example.com", "Ada Lovelace"),
        mailer: email::memory::MemoryMailer::default(),
        records: shared::adapters::memory_records::MemoryOrderRecords::default(),
    });
    bench_consumer(&mut group, &rt, "inventory", || inventory::Inventory {
        stock: inventory::memory::MemoryStock::default()
            .with("MUG", inventory::memory::Product { available: STOCK, reserved: STOCK, threshold: Some(10) })
            .with("TEE", inventory::memory::Product { available: STOCK, reserved: STOCK, threshold: Some(5) }),
        bus: MemoryBus::default(),
    });
    bench_consumer(&mut group, &rt, "analytics", || analytics::Analytics {
        counters: analytics::memory::MemoryCounters::default(),
    });
    bench_consumer(&mut group, &rt, "recommendations", || recommendations::Recommendations {
        store: recommendations::memory::MemoryCoPurchases::default(),
    });
    // The dedupe path alone: after the first delivery, every delivery of the same event is
    // skipped, and a skipped delivery changes no state, so one consumer serves every iteration.
    let consumer = loyalty::Loyalty { ledger: loyalty::memory::MemoryLedger::default() };
    let batch = fresh_batch();
    let now = chrono::Utc::now().timestamp_millis();
    let dead_letters = MemoryDeadLetters::default();
    rt.block_on(handle_batch(&consumer, &dead_letters, &batch, now, now + 10_000));
    group.bench_function("loyalty-duplicate", |b| {
        b.to_async(&rt).iter(|| handle_batch(&consumer, &dead_letters, &batch, now, now + 10_000));
    });
    group.finish();
}

criterion_group!(benches, bench_checkout, bench_consumers);
criterion_main!(benches);
