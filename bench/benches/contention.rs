//! Contention on one popular SKU: 200 customers order the same product at once, 50 units in
//! stock, against an order store whose transactions conflict as DynamoDB's do (a transaction
//! touching an item another transaction holds is cancelled). Reports units sold (must be 50
//! exactly), oversold units (must be 0), 5xx answers (must be 0: conflicts are retried inside
//! the function) and the latency distribution. `cargo bench -p bench --bench contention`.

use checkout::service::PostOrder;
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::domain::pricing::Product;
use shared::domain::{Currency, Money};
use shared::faults::Contended;
use std::sync::Arc;
use std::time::{Duration, Instant};

// EMF lines would drown the report: metrics go to the (unset) log instead.
fn quiet() {
    shared::telemetry::metrics_to_log();
}

const CUSTOMERS: usize = 200;
const UNITS: i64 = 50;
/// How long one transaction holds its items: DynamoDB's TransactWriteItems is ~10 ms.
const HOLD: Duration = Duration::from_millis(10);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    quiet();
    let product =
        Product { sku: "HOT".into(), name: "A popular mug".into(), unit_price: Money::new(1250, Currency::EUR) };
    let shop = Arc::new(MemoryShop::default().with_product(product, UNITS));
    let contended = Arc::new(Contended::new(shop.clone(), HOLD));
    let checkout = Arc::new(checkout::Checkout::new(
        checkout::Ports {
            catalogue: shop.clone(),
            orders: contended.clone(),
            outbox: shop.clone(),
            publisher: Arc::new(MemoryBus::default()),
            payments: Arc::new(SandboxGateway::in_memory()),
        },
        Arc::new(MemoryIdempotency::default()),
    ));
    let started = Instant::now();
    let customers = (0..CUSTOMERS).map(|n| {
        let checkout = checkout.clone();
        tokio::spawn(async move {
            let body = format!(
                r#"{{"customerId":"cust-{n}","items":[{{"sku":"HOT","quantity":1}}],"paymentToken":"tok_visa","currency":"EUR"}}"#
            );
            let now = chrono::Utc::now().timestamp_millis();
            let key = format!("contention-{n}");
            let request = PostOrder {
                content_type: Some("application/json"),
                idempotency_key: Some(&key),
                body: body.as_bytes(),
                correlation_id: "bench",
                now_ms: now,
                deadline_ms: now + 10_000,
            };
            let t = Instant::now();
            let reply = checkout.post_order(request).await;
            (reply.status, t.elapsed())
        })
    });
    // Spawn them all before awaiting any: they run at once.
    let customers: Vec<_> = customers.collect();
    let mut results = Vec::new();
    for customer in customers {
        results.push(customer.await.expect("a customer task"));
    }
    let wall = started.elapsed();
    let mut latencies: Vec<Duration> = results.iter().map(|(_, d)| *d).collect();
    latencies.sort();
    let count = |f: &dyn Fn(u16) -> bool| results.iter().filter(|(s, _)| f(*s)).count();
    let stock = shop.stock("HOT");
    println!("contention: {CUSTOMERS} concurrent orders of 1 unit, {UNITS} in stock, transactions hold items {HOLD:?}");
    println!(
        "  placed (201): {}  out of stock (409): {}  5xx: {}  other: {}",
        count(&|s| s == 201),
        count(&|s| s == 409),
        count(&|s| s >= 500),
        count(&|s| s != 201 && s != 409 && s < 500)
    );
    println!(
        "  units sold: {}  oversold: {}  available: {}  transaction conflicts retried: {}",
        stock.reserved,
        (stock.reserved - UNITS).max(0),
        stock.available,
        contended.conflicts()
    );
    println!(
        "  latency p50 {:?}  p99 {:?}  max {:?}  wall {:?}",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies[latencies.len() - 1],
        wall
    );
}
