//! Event-driven vs synchronous, on the local twin of the stack (moto + the local runner) with
//! the real SDK and DynamoDB adapters.
//!
//! - Event-driven (as built): `post_order` answers once `order.placed` is on the bus. The
//!   runner's SQS event sources deliver it to the five consumers; their observations tell when
//!   each has finished (end to end).
//! - Synchronous (the article's "before"): the same checkout code, but the event is handed to
//!   the consumers inline — each one's handler runs through `handle_batch` on the event wrapped
//!   as the SQS/EventBridge message — and the answer waits for all of them. That composition
//!   has no bus, so its publisher only captures the event: it pays no PutEvents round trip.
//!
//! Both run in one process against one emulator, alternated within every iteration (the order
//! rotates), so that they share the machine's noise; ratios compare them within this run.

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use checkout::service::PostOrder;
use futures::future::BoxFuture;
use local::poller::Observation;
use local::system::{LocalSystem, Mode, Options};
use shared::config::Env;
use shared::consumer::{handle_batch, Consumer};
use shared::events::{Envelope, OrderPlacedV2, Outbound};
use shared::ports::{EventPublisher, PublishError, Rejected};
use shared::testing::{eventbridge_body, failed_ids, sqs_batch};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// The order's body; its customer is the caller, `cust-ada` (the token's subject in the API).
pub const ORDER: &str =
    r#"{"items":[{"sku":"MUG","quantity":2},{"sku":"TEE","quantity":1}],"paymentToken":"tok_visa","currency":"EUR"}"#;

/// The consumers in the order the synchronous checkout calls them; the first k make the
/// "k consumers" variant (1: loyalty; 3: + stock commit and receipt e-mail; 5: all).
pub const CONSUMERS: [&str; 5] =
    ["LoyaltyFunction", "InventoryFunction", "EmailFunction", "AnalyticsFunction", "RecommendationsFunction"];
pub const VARIANTS: [usize; 3] = [1, 3, 5];

/// The bus of the "before": it keeps what the checkout publishes, for the inline consumers.
#[derive(Default)]
pub struct Captured {
    events: Mutex<Vec<Outbound>>,
    pub calls: Mutex<u32>,
}

#[async_trait]
impl EventPublisher for Captured {
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError> {
        *self.calls.lock().unwrap() += 1;
        self.events.lock().unwrap().extend_from_slice(events);
        Ok(Vec::new())
    }
}

impl Captured {
    pub fn take(&self) -> Vec<Outbound> {
        std::mem::take(&mut self.events.lock().unwrap())
    }
}

/// The bus as built, timed: how much of the event-driven answer is the PutEvents round trip.
pub struct Timed {
    inner: Arc<dyn EventPublisher>,
    took: Mutex<Vec<Duration>>,
}

#[async_trait]
impl EventPublisher for Timed {
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError> {
        let started = Instant::now();
        let result = self.inner.put(events).await;
        self.took.lock().unwrap().push(started.elapsed());
        result
    }
}

/// A consumer's Lambda handler, callable inline.
pub type Inline = Arc<dyn Fn(SqsEvent) -> BoxFuture<'static, SqsBatchResponse> + Send + Sync>;

/// (Dead letters go to an in-memory queue: the benchmark sends no poison and counts failures.)
pub fn inline<C: Consumer + 'static>(consumer: C) -> Inline {
    let consumer = Arc::new(consumer);
    let dead_letters = Arc::new(shared::adapters::memory_dlq::MemoryDeadLetters::default());
    Arc::new(move |batch| {
        let (consumer, dead_letters) = (consumer.clone(), dead_letters.clone());
        Box::pin(async move {
            let now = chrono::Utc::now().timestamp_millis();
            handle_batch(consumer.as_ref(), dead_letters.as_ref(), &batch, now, now + 10_000).await
        })
    })
}

pub fn env_of(stack: &testkit::Stack, logical: &str) -> Env {
    Env(stack.function(logical).environment.clone())
}

/// Every consumer wired by its own `from_env`, as its Lambda `main` wires it.
pub fn consumers(
    stack: &testkit::Stack,
    aws: &aws_config::SdkConfig,
) -> Result<BTreeMap<&'static str, Inline>, String> {
    let e = |logical| env_of(stack, logical);
    let err = |e: shared::config::MissingEnv| e.to_string();
    Ok(BTreeMap::from([
        ("LoyaltyFunction", inline(loyalty::Loyalty::from_env(&e("LoyaltyFunction"), aws).map_err(err)?)),
        ("InventoryFunction", inline(inventory::Inventory::from_env(&e("InventoryFunction"), aws).map_err(err)?)),
        ("EmailFunction", inline(email::Email::from_env(&e("EmailFunction"), aws).map_err(err)?)),
        ("AnalyticsFunction", inline(analytics::Analytics::from_env(&e("AnalyticsFunction"), aws).map_err(err)?)),
        (
            "RecommendationsFunction",
            inline(recommendations::Recommendations::from_env(&e("RecommendationsFunction"), aws).map_err(err)?),
        ),
    ]))
}

/// The SQS message Lambda would hand a consumer for `event`.
pub fn as_sqs_batch(event: &Outbound) -> Result<SqsEvent, String> {
    let envelope: Envelope<OrderPlacedV2> = serde_json::from_str(&event.detail).map_err(|e| e.to_string())?;
    Ok(sqs_batch(&[eventbridge_body(&envelope)]))
}

pub async fn place(checkout: &checkout::Checkout) -> checkout::service::Reply {
    let key = ulid::Ulid::new().to_string();
    let now = chrono::Utc::now().timestamp_millis();
    checkout
        .post_order(PostOrder {
            caller: &shared::auth::Caller { subject: shared::domain::CustomerId("cust-ada".into()), staff: false },
            content_type: Some("application/json"),
            idempotency_key: Some(&key),
            body: ORDER.as_bytes(),
            correlation_id: "bench",
            now_ms: now,
            deadline_ms: now + 10_000,
        })
        .await
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[derive(Debug, Default)]
pub struct Results {
    /// Response time of the checkout as built, ms.
    pub event_response: Vec<f64>,
    /// From the request until the first k consumers had all finished, ms, per k.
    pub event_e2e: BTreeMap<usize, Vec<f64>>,
    /// Response time of the synchronous checkout with k consumers inline, ms, per k.
    pub sync_response: BTreeMap<usize, Vec<f64>>,
    /// The PutEvents call inside each event-driven response, ms.
    pub event_put_events: Vec<f64>,
    /// The checkout part alone of a synchronous request (no PutEvents), ms.
    pub sync_checkout_part: Vec<f64>,
    /// Each consumer's inline handler duration, ms.
    pub consumer_duration: BTreeMap<String, Vec<f64>>,
    pub errors: Vec<String>,
    pub iterations: usize,
    /// How many fresh emulators the iterations ran on.
    pub segments: usize,
    /// Unmeasured iterations at the start of each segment.
    pub warmup: usize,
    pub batching_window_s: Vec<u32>,
}

/// Raises the stock of the bench's SKUs so that hundreds of orders never run out.
async fn top_up_stock(system: &LocalSystem) -> Result<(), String> {
    let dynamodb = aws_sdk_dynamodb::Client::new(&system.aws);
    let table = system.stack.output("ProductsTableName");
    for sku in ["MUG", "TEE"] {
        dynamodb
            .update_item()
            .table_name(table)
            .key("sku", aws_sdk_dynamodb::types::AttributeValue::S(sku.into()))
            .update_expression("SET available = :a")
            .expression_attribute_values(":a", aws_sdk_dynamodb::types::AttributeValue::N("100000000".into()))
            .send()
            .await
            .map_err(|e| aws_sdk_dynamodb::error::DisplayErrorContext(e).to_string())?;
    }
    Ok(())
}

enum Job {
    Event,
    Sync(usize),
}

struct Bench<'a> {
    event_checkout: checkout::Checkout,
    timed: Arc<Timed>,
    sync_checkout: checkout::Checkout,
    captured: Arc<Captured>,
    consumers: BTreeMap<&'static str, Inline>,
    rx: broadcast::Receiver<Observation>,
    results: &'a mut Results,
}

impl Bench<'_> {
    async fn event(&mut self, record: bool) {
        while !matches!(
            self.rx.try_recv(),
            Err(broadcast::error::TryRecvError::Empty | broadcast::error::TryRecvError::Closed)
        ) {}
        self.timed.took.lock().unwrap().clear();
        let started = Instant::now();
        let reply = place(&self.event_checkout).await;
        let response = started.elapsed();
        if reply.status != 201 {
            self.results.errors.push(format!("event-driven checkout answered {}: {}", reply.status, reply.body));
            return;
        }
        let order_id = serde_json::from_str::<serde_json::Value>(&reply.body).unwrap_or_default()["orderId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let mut done: BTreeMap<String, Duration> = BTreeMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while done.len() < CONSUMERS.len() {
            match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Ok(o)) if o.order_id.as_deref() == Some(order_id.as_str()) => {
                    if o.succeeded {
                        done.entry(o.function).or_insert_with(|| started.elapsed());
                    } else {
                        self.results.errors.push(format!("{} failed order {order_id} (it will retry)", o.function));
                    }
                }
                Ok(Ok(_)) | Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => break,
            }
        }
        if !record {
            return;
        }
        self.results.event_response.push(ms(response));
        let put: Duration = std::mem::take(&mut *self.timed.took.lock().unwrap()).into_iter().sum();
        self.results.event_put_events.push(ms(put));
        for k in VARIANTS {
            let finished: Option<Vec<Duration>> = CONSUMERS[..k].iter().map(|c| done.get(*c).copied()).collect();
            match finished {
                Some(times) => {
                    self.results.event_e2e.entry(k).or_default().push(ms(times.into_iter().max().unwrap_or_default()))
                }
                None => self
                    .results
                    .errors
                    .push(format!("order {order_id}: not every consumer of {k} finished within 30 s")),
            }
        }
    }

    async fn sync(&mut self, k: usize, record: bool) {
        let started = Instant::now();
        let reply = place(&self.sync_checkout).await;
        let checkout_part = started.elapsed();
        let events = self.captured.take();
        if reply.status != 201 || events.len() != 1 {
            self.results.errors.push(format!(
                "synchronous checkout answered {} with {} event(s)",
                reply.status,
                events.len()
            ));
            return;
        }
        let batch = match as_sqs_batch(&events[0]) {
            Ok(batch) => batch,
            Err(e) => return self.results.errors.push(e),
        };
        let mut durations = Vec::new();
        for name in &CONSUMERS[..k] {
            let began = Instant::now();
            let response = (self.consumers[name])(batch.clone()).await;
            durations.push((name.to_string(), ms(began.elapsed())));
            if !failed_ids(&response).is_empty() {
                self.results.errors.push(format!("{name} failed inline"));
            }
        }
        let total = started.elapsed();
        if !record {
            return;
        }
        self.results.sync_response.entry(k).or_default().push(ms(total));
        self.results.sync_checkout_part.push(ms(checkout_part));
        for (name, d) in durations {
            self.results.consumer_duration.entry(name).or_default().push(d);
        }
    }
}

/// Iterations per emulator. moto copies every table a transaction touches (to roll back), so
/// its transactions slow down as the tables fill up, which DynamoDB's do not: each segment
/// starts on a fresh emulator and stack to keep that artifact small.
pub const SEGMENT: usize = 30;

/// Runs `iterations` measured iterations in segments of at most `SEGMENT`, each on a fresh
/// local system and after `warmup` unmeasured ones.
pub async fn run(iterations: usize, warmup: usize) -> Result<Results, String> {
    let mut results = Results { warmup, ..Results::default() };
    let mut left = iterations;
    while left > 0 {
        let n = left.min(SEGMENT);
        let system = LocalSystem::start(Options {
            mode: Mode::InProcess,
            parameters: Vec::new(),
            // The benchmark measures the shop, not the stage's throttling: lifted beyond what
            // a deploy accepts, so local only.
            local_only: vec![
                ("ApiThrottlingRateLimit".into(), "100000".into()),
                ("ApiThrottlingBurstLimit".into(), "100000".into()),
            ],
            api_port: None,
        })
        .await
        .map_err(|e| format!("the local system did not start: {e}"))?;
        let outcome = measure(&system, n, warmup, &mut results).await;
        system.stop().await;
        outcome?;
        results.segments += 1;
        left -= n;
        eprintln!("shop-bench: latency {}/{iterations}", iterations - left);
    }
    Ok(results)
}

async fn measure(system: &LocalSystem, iterations: usize, warmup: usize, results: &mut Results) -> Result<(), String> {
    top_up_stock(system).await?;
    results.batching_window_s = CONSUMERS
        .iter()
        .flat_map(|c| system.stack.function(c).sqs.iter().map(|s| s.maximum_batching_window_in_seconds.unwrap_or(0)))
        .collect();
    let mut event_checkout =
        checkout::from_env(&env_of(&system.stack, "CheckoutFunction"), &system.aws).map_err(|e| e.to_string())?;
    let captured = Arc::new(Captured::default());
    let mut ports = event_checkout.ports.clone();
    let idempotency = event_checkout.idempotency.clone();
    ports.publisher = captured.clone();
    let timed = Arc::new(Timed { inner: event_checkout.ports.publisher.clone(), took: Mutex::default() });
    event_checkout.ports.publisher = timed.clone();
    let mut bench = Bench {
        event_checkout,
        timed,
        sync_checkout: checkout::Checkout::new(ports, idempotency),
        captured,
        consumers: consumers(&system.stack, &system.aws)?,
        rx: system.observations.subscribe(),
        results,
    };
    for i in 0..warmup + iterations {
        let record = i >= warmup;
        let mut jobs = vec![Job::Event, Job::Sync(1), Job::Sync(3), Job::Sync(5)];
        jobs.rotate_left(i % 4);
        for job in jobs {
            match job {
                Job::Event => bench.event(record).await,
                Job::Sync(k) => bench.sync(k, record).await,
            }
        }
        if record {
            bench.results.iterations += 1;
        }
    }
    Ok(())
}
