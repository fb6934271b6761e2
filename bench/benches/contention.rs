//! Contention on one popular SKU: 200 customers order the same product at once, 50 units in
//! stock, against an order store whose transactions conflict as DynamoDB's do (a transaction
//! touching an item another transaction holds is cancelled). Reports units sold (must be 50
//! exactly), oversold units (must be 0), 5xx answers (must be 0: conflicts are retried inside
//! the function) and the latency distribution, against a baseline measured in the same run:
//! the same 200 orders one after another, where nothing conflicts.
//! `cargo bench -p bench --bench contention` (the first step of `make bench`).

use checkout::service::PostOrder;
use shared::adapters::memory::{MemoryBus, MemoryIdempotency, MemoryShop};
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::domain::pricing::Product;
use shared::domain::{Currency, Money};
use shared::faults::Contended;
use std::sync::Arc;
use std::time::{Duration, Instant};

const CUSTOMERS: usize = 200;
const UNITS: i64 = 50;
/// How long one transaction holds its items: DynamoDB's TransactWriteItems is ~10 ms.
const HOLD: Duration = Duration::from_millis(10);

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

struct Run {
    statuses: Vec<u16>,
    latencies: Vec<Duration>,
    sold: i64,
    available: i64,
    conflicts: u64,
    wall: Duration,
}

impl Run {
    fn count(&self, f: impl Fn(u16) -> bool) -> usize {
        self.statuses.iter().filter(|s| f(**s)).count()
    }

    fn p(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    fn print(&self, name: &str) {
        println!(
            "  {name:<13} 201: {:>3}  409 out of stock: {:>3}  5xx: {}  other: {}  | sold {} oversold {} available {} \
             | conflicts retried {:>5} | p50 {:>8.1?} p99 {:>8.1?} max {:>8.1?} wall {:>7.2?}",
            self.count(|s| s == 201),
            self.count(|s| s == 409),
            self.count(|s| s >= 500),
            self.count(|s| s != 201 && s != 409 && s < 500),
            self.sold,
            (self.sold - UNITS).max(0),
            self.available,
            self.conflicts,
            self.p(0.50),
            self.p(0.99),
            self.latencies[self.latencies.len() - 1],
            self.wall
        );
    }
}

async fn place(checkout: Arc<checkout::Checkout>, n: usize) -> (u16, Duration) {
    // Each customer is a caller of their own (the token's subject); the body names none.
    let body = r#"{"items":[{"sku":"HOT","quantity":1}],"paymentToken":"tok_visa","currency":"EUR"}"#;
    let now = chrono::Utc::now().timestamp_millis();
    let key = format!("contention-{n}");
    let caller = shared::auth::Caller { subject: shared::domain::CustomerId(format!("cust-{n}")), staff: false };
    let request = PostOrder {
        caller: &caller,
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
}

/// One fresh shop, 200 orders: all at once, or one after another.
async fn run(at_once: bool) -> Run {
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
    let mut results = Vec::new();
    if at_once {
        // Spawn them all before awaiting any: they run at once.
        let customers: Vec<_> = (0..CUSTOMERS).map(|n| tokio::spawn(place(checkout.clone(), n))).collect();
        for customer in customers {
            results.push(customer.await.expect("a customer task"));
        }
    } else {
        for n in 0..CUSTOMERS {
            results.push(place(checkout.clone(), n).await);
        }
    }
    let wall = started.elapsed();
    let (statuses, mut latencies): (Vec<u16>, Vec<Duration>) = results.into_iter().unzip();
    latencies.sort();
    let stock = shop.stock("HOT");
    Run {
        statuses,
        latencies,
        sold: stock.reserved,
        available: stock.available,
        conflicts: contended.conflicts(),
        wall,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // EMF lines would drown the report: metrics go to the (unset) log instead.
    shared::telemetry::metrics_to_log();
    println!("contention: {CUSTOMERS} orders of 1 unit, {UNITS} in stock, transactions hold their items {HOLD:?}");
    let baseline = run(false).await;
    baseline.print("one by one");
    let contended = run(true).await;
    contended.print("all at once");
    println!(
        "  all at once / one by one: p50 {:.1}x, p99 {:.1}x; wall {:.2}x",
        contended.p(0.50).as_secs_f64() / baseline.p(0.50).as_secs_f64(),
        contended.p(0.99).as_secs_f64() / baseline.p(0.99).as_secs_f64(),
        contended.wall.as_secs_f64() / baseline.wall.as_secs_f64(),
    );
}
