//! The demo: a scripted morning at the shop, printed as a timeline, then a summary read back
//! from the emulator. Every fault here is configuration or data (a card token, a customer with
//! no address), never a code path added for the demo. Every request carries an access token
//! of the local issuer, as a signed-in customer (or staff member) would send it, except the
//! one that shows what happens without.

use crate::poller::Observation;
use crate::probe::{customer, eventually, Answer, As, Probe, ProbeError, STAFF_MEMBER};
use crate::system::{LocalSystem, Mode, Options};
use shared::events::{Envelope, OrderPlacedV2};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

pub const CONSUMERS: [&str; 5] =
    ["AnalyticsFunction", "EmailFunction", "InventoryFunction", "LoyaltyFunction", "RecommendationsFunction"];

/// The sweeper's grace period in the demo, instead of 300 s.
pub const SWEEPER_GRACE_SECONDS: u64 = 3;

/// Options the demo runs with: retries after 2 s instead of 60 s, to see a DLQ fill in seconds,
/// and interrupted orders settled by the sweeper after a few seconds instead of five minutes.
pub fn options(mode: Mode) -> Options {
    Options {
        mode,
        parameters: Vec::new(),
        // Both below what a deploy accepts (a visibility timeout under the consumer's 10 s
        // timeout, a grace period under 30 s): local only, to watch in seconds what takes
        // minutes in AWS.
        local_only: vec![
            ("ConsumerVisibilityTimeout".into(), "2".into()),
            ("SweeperGraceSeconds".into(), SWEEPER_GRACE_SECONDS.to_string()),
        ],
        api_port: None,
    }
}

pub async fn main(mode: Mode) -> Result<(), Box<dyn std::error::Error>> {
    // Function logs go to a file so the timeline stays readable.
    std::fs::create_dir_all(".local")?;
    let log = std::fs::File::create(".local/demo.log")?;
    let _ = tracing_subscriber::fmt()
        .json()
        .with_writer(std::sync::Mutex::new(log))
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .try_init();
    shared::telemetry::metrics_to_log();
    println!("Starting the shop locally: emulator, stack from template.yaml, functions...");
    let system = LocalSystem::start(options(mode)).await.map_err(|e| e.to_string())?;
    let result = run(&system).await;
    system.stop().await;
    println!("\nStopped everything. Function logs: .local/demo.log");
    result.map_err(|e| e.to_string().into())
}

pub(crate) struct Timeline {
    started: Instant,
}

impl Timeline {
    pub(crate) fn say(&self, text: impl AsRef<str>) {
        println!("[{:6.2}s] {}", self.started.elapsed().as_secs_f64(), text.as_ref());
    }
}

fn order_line(answer: &Answer) -> String {
    let detail = answer.body["type"].as_str().map(|t| t.rsplit('/').next().unwrap_or(t).to_owned());
    match (answer.status, detail) {
        (201, _) => format!(
            "{} {} in {:.0} ms, order {}",
            answer.status,
            answer.body["status"].as_str().unwrap_or("?"),
            answer.millis,
            answer.body["orderId"].as_str().unwrap_or("?")
        ),
        (status, Some(kind)) => format!("{status} {kind} in {:.0} ms", answer.millis),
        (status, None) => format!("{status} in {:.0} ms", answer.millis),
    }
}

/// Waits until every consumer has handled the order's event, printing outcomes as they come.
async fn follow(
    timeline: &Timeline,
    rx: &mut broadcast::Receiver<Observation>,
    order_id: &str,
    until: Duration,
) -> Vec<Observation> {
    let deadline = Instant::now() + until;
    let mut seen: Vec<Observation> = Vec::new();
    let done = |seen: &[Observation]| CONSUMERS.iter().all(|c| seen.iter().any(|o| o.function == *c && o.succeeded));
    while !done(&seen) {
        let Ok(Ok(obs)) = tokio::time::timeout(deadline.saturating_duration_since(Instant::now()), rx.recv()).await
        else {
            break;
        };
        if obs.order_id.as_deref() != Some(order_id) || !CONSUMERS.contains(&obs.function.as_str()) {
            continue;
        }
        let outcome = if obs.succeeded { "ok" } else { "FAILED, will be retried" };
        timeline.say(format!("    {:<24} {outcome} (receive {})", obs.function, obs.receive_count));
        seen.push(obs);
    }
    seen
}

async fn run(system: &LocalSystem) -> Result<(), ProbeError> {
    let probe = Probe::new(system);
    let mut rx = system.observations.subscribe();
    let timeline = Timeline { started: Instant::now() };
    println!(
        "\nAPI {}   emulator {}   token issuer {}",
        system.api_url,
        system.emulator.endpoint,
        probe.tokens.issuer()
    );
    println!("Dashboard {} (live while the demo runs: open it to watch)", system.dashboard_url);
    println!(
        "Customers sign in as themselves (the token's sub is the customer ID); {STAFF_MEMBER}'s token carries {}.\n",
        probe.staff_scope
    );

    println!("1. A good order: the customer waits only for price, stock, payment and persistence");
    let good = probe.place_order("demo-good", "cust-ada", &[("MUG", 2), ("TEE", 1)], "tok_visa").await?;
    timeline.say(format!("POST /orders cust-ada MUG x2, TEE x1 -> {}", order_line(&good)));
    let order_id = good.body["orderId"].as_str().unwrap_or_default().to_owned();
    let seen = follow(&timeline, &mut rx, &order_id, Duration::from_secs(30)).await;
    let event_detail = seen.iter().find_map(|o| o.detail.clone());

    who_may_see_it(&probe, &timeline, &order_id).await?;

    println!("\n3. The same request again, same Idempotency-Key (a client retry)");
    let stock_before = probe.stock("MUG").await?;
    let again = probe.place_order("demo-good", "cust-ada", &[("MUG", 2), ("TEE", 1)], "tok_visa").await?;
    timeline.say(format!(
        "POST /orders (retry) -> {}, Idempotent-Replayed: {}, same order: {}",
        order_line(&again),
        again.header("idempotent-replayed").unwrap_or("no"),
        again.body["orderId"] == good.body["orderId"]
    ));
    timeline.say(format!(
        "    MUG stock (available, reserved) {:?} -> {:?}: charged and reserved once",
        stock_before,
        probe.stock("MUG").await?
    ));

    println!("\n4. A declined card");
    let before = probe.stock("HOODIE").await?;
    let declined = probe.place_order("demo-declined", "cust-grace", &[("HOODIE", 1)], "tok_chargeDeclined").await?;
    timeline.say(format!("POST /orders tok_chargeDeclined -> {}", order_line(&declined)));
    timeline.say(format!(
        "    HOODIE stock {:?} -> {:?}: the reservation was released",
        before,
        probe.stock("HOODIE").await?
    ));

    println!("\n5. More than the stock");
    let short = probe.place_order("demo-short", "cust-grace", &[("CAP", 6), ("STICKER", 1)], "tok_visa").await?;
    timeline.say(format!("POST /orders CAP x6 (5 in stock) -> {}, SKUs {}", order_line(&short), short.body["skus"]));

    println!(
        "\n6. A permanent failure for one order (cust-ghost has no customer record, so no address): \
         the e-mail consumer sends it straight to its DLQ, no retries; the other consumers are unaffected"
    );
    let ghost = probe.place_order("demo-ghost", "cust-ghost", &[("POSTER", 1)], "tok_mastercard").await?;
    timeline.say(format!("POST /orders cust-ghost POSTER x1 -> {}", order_line(&ghost)));
    let ghost_id = ghost.body["orderId"].as_str().unwrap_or_default().to_owned();
    let watch = async {
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 5 {
            let Ok(obs) = rx.recv().await else { break };
            if obs.order_id.as_deref() == Some(ghost_id.as_str()) && CONSUMERS.contains(&obs.function.as_str()) {
                // A dead-lettered message is handled (deleted from its queue), not failed.
                let outcome = if obs.succeeded { "handled" } else { "FAILED" };
                timeline.say(format!("    {:<24} {outcome} (receive {})", obs.function, obs.receive_count));
                seen.insert(obs.function.clone());
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(30), watch).await;
    let dead =
        eventually(Duration::from_secs(30), || async {
            probe.peek("EmailDeadLetterQueueUrl").await.ok().and_then(|bodies| {
                bodies.into_iter().find(|b| b["detail"]["orderId"].as_str() == Some(ghost_id.as_str()))
            })
        })
        .await;
    match dead {
        Some(event) => timeline.say(format!(
            "    EmailDeadLetterQueue holds it, original event intact: eventId {} orderId {}",
            event["detail"]["eventId"].as_str().unwrap_or("?"),
            event["detail"]["orderId"].as_str().unwrap_or("?")
        )),
        None => timeline.say("    (the message has not reached the dead-letter queue yet)"),
    }

    println!("\n7. A duplicate order.placed put on the bus directly (at-least-once delivery, a replay)");
    if let Some(detail) = event_detail {
        let points = probe.loyalty_points("cust-ada").await?;
        let emails = probe.emails_sent().await?;
        probe.put_on_bus("shop.checkout", "order.placed", &detail).await?;
        timeline.say(format!("PutEvents order.placed eventId {}", detail["eventId"].as_str().unwrap_or("?")));
        follow(&timeline, &mut rx, &order_id, Duration::from_secs(30)).await;
        timeline.say(format!(
            "    loyalty points of cust-ada {} -> {}, e-mails sent {} -> {}: skipped as duplicates",
            points,
            probe.loyalty_points("cust-ada").await?,
            emails,
            probe.emails_sent().await?
        ));

        // The same event as the checkout published it before order.placed v2: what an outbox
        // entry, a DLQ redrive or an archive replay from before an upgrade still delivers.
        println!("   ... and again as order.placed v1, the shape published before v2 (amounts without their currency)");
        let v2 = Envelope::<OrderPlacedV2>::from_detail(&detail)?;
        let v1 = serde_json::to_value(shared::testing::as_v1(&v2))?;
        probe.put_on_bus("shop.checkout", "order.placed", &v1).await?;
        timeline.say(format!(
            "PutEvents order.placed v1 eventId {}, total {}",
            v1["eventId"].as_str().unwrap_or("?"),
            v1["data"]["total"]
        ));
        follow(&timeline, &mut rx, &order_id, Duration::from_secs(30)).await;
        timeline.say(format!(
            "    read as v2 through the one upcast, and skipped as the same event: loyalty points of cust-ada {}",
            probe.loyalty_points("cust-ada").await?
        ));
    }

    settled_by_the_sweeper(system, &probe, &timeline, &mut rx).await?;

    crate::lifecycle_demo::run(system, &probe, &timeline, &mut rx, &order_id).await?;

    summary(&probe).await?;
    metrics_summary(system);
    Ok(())
}

/// The counts the dashboard shows, from the same aggregator of the functions' EMF lines.
fn metrics_summary(system: &LocalSystem) {
    println!("\nMetrics, from the functions' EMF lines (the dashboard's numbers)");
    for line in system.dashboard.summary().lines() {
        println!("  {line}");
    }
}

/// Step 2: identity comes from the token. Without one, API Gateway's authorizer refuses the
/// request before any function runs; with another customer's, the order does not exist.
async fn who_may_see_it(probe: &Probe, timeline: &Timeline, order_id: &str) -> Result<(), ProbeError> {
    println!("\n2. Who may see it: the caller is the token's subject, checked by API Gateway before any function runs");
    let path = format!("/orders/{order_id}");
    let nobody = probe.get(&As::Nobody, &path).await?;
    timeline.say(format!(
        "GET {path} without a token -> {} {} (the authorizer refused it; no function ran)",
        nobody.status, nobody.body
    ));
    let grace = probe.get(&customer("cust-grace"), &path).await?;
    timeline.say(format!(
        "GET {path} as cust-grace (it is cust-ada's) -> {} {}: hidden, as if it did not exist",
        grace.status,
        grace.body["type"].as_str().map(|t| t.rsplit('/').next().unwrap_or(t)).unwrap_or("?")
    ));
    let ada = probe.get(&customer("cust-ada"), &path).await?;
    timeline.say(format!("GET {path} as cust-ada -> {} {}", ada.status, ada.body["status"].as_str().unwrap_or("?")));
    Ok(())
}

/// Step 8: a checkout interrupted after the charge, which nobody retries, settled by the sweeper.
async fn settled_by_the_sweeper(
    system: &LocalSystem,
    probe: &Probe,
    timeline: &Timeline,
    rx: &mut broadcast::Receiver<Observation>,
) -> Result<(), ProbeError> {
    println!("\n8. The gateway charges but its answer is lost (tok_timeout), and the client does not retry");
    let key = "demo-timeout";
    let stuck = probe.place_order(key, "cust-linus", &[("STICKER", 2)], "tok_timeout").await?;
    let interrupted_at = Instant::now();
    timeline.say(format!("POST /orders cust-linus STICKER x2 tok_timeout -> {}", order_line(&stuck)));
    // The 502 names no order; the Idempotency-Key's record holds the one bound to it.
    let record_id = checkout::idempotency::record_id("checkout:POST /orders", "cust-linus", key);
    let record = probe
        .scan("IdempotencyTableName")
        .await?
        .into_iter()
        .find(|item| crate::probe::text(item, "id") == record_id)
        .ok_or("no idempotency record for the interrupted request")?;
    let order_id = record.get("orderId").and_then(|v| v.as_s().ok()).cloned().ok_or("no order bound to the key")?;
    let status = |answer: &Answer| answer.body["status"].as_str().unwrap_or("?").to_owned();
    let linus = customer("cust-linus");
    let before = probe.get(&linus, &format!("/orders/{order_id}")).await?;
    timeline.say(format!(
        "    GET /orders/{order_id} (ID from the key's record) -> {}, STICKER stock {:?}: charged, stock held, no order.placed",
        status(&before),
        probe.stock("STICKER").await?
    ));

    tokio::time::sleep(Duration::from_secs(SWEEPER_GRACE_SECONDS + 1)).await;
    let function = system.stack.function("SweeperFunction");
    let scheduled: serde_json::Value = serde_json::from_str(include_str!("../../events/sweeper-scheduled.json"))?;
    let report = system.invoker.invoke(&function.binary, scheduled, Duration::from_secs(function.timeout)).await?;
    timeline.say(format!(
        "sweeper (its scheduled event, after the {SWEEPER_GRACE_SECONDS} s grace) -> placed {}, expired {}, other {}, failed {}",
        report["placed"], report["expired"], report["other"], report["failed"]
    ));
    let after = probe.get(&linus, &format!("/orders/{order_id}")).await?;
    timeline.say(format!(
        "    GET /orders/{order_id} -> {}, STICKER stock {:?}",
        status(&after),
        probe.stock("STICKER").await?
    ));
    if report["placed"] == 0 && status(&after) == "PLACED" {
        timeline.say("    (the sweeper's own schedule had settled it a moment earlier)");
    }
    follow(timeline, rx, &order_id, Duration::from_secs(30)).await;

    // The late retry comes once the first attempt's lease (the checkout's timeout) has lapsed.
    let lease = Duration::from_secs(system.stack.function("CheckoutFunction").timeout);
    tokio::time::sleep((interrupted_at + lease + Duration::from_secs(1)).saturating_duration_since(Instant::now()))
        .await;
    let late = probe.place_order(key, "cust-linus", &[("STICKER", 2)], "tok_timeout").await?;
    timeline.say(format!(
        "POST /orders (the client retries after all, same key) -> {}, same order: {}",
        order_line(&late),
        late.body["orderId"].as_str() == Some(order_id.as_str())
    ));
    // The gateway's record of the order's payment key: one decision per key, ever.
    let entry = probe.ledger_entry(&format!("order-{order_id}")).await?;
    let text = |name: &str| crate::probe::text(&entry, name);
    timeline.say(format!(
        "    gateway ledger for the order's payment key: {} {} {} cents: one charge, whoever asked",
        text("outcome"),
        text("chargeId"),
        crate::probe::number(&entry, "amount")
    ));
    Ok(())
}

async fn summary(probe: &Probe) -> Result<(), ProbeError> {
    println!("\nSummary, read back from the emulator");
    let mut statuses: BTreeMap<String, usize> = BTreeMap::new();
    let mut orders: BTreeMap<String, (i64, String)> = BTreeMap::new();
    for item in probe.scan("OrdersTableName").await? {
        let id = item.get("orderId").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let kind = item.get("type").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let version = crate::probe::number(&item, "version");
        let status = match kind.as_str() {
            "PaymentCaptured" => "PLACED",
            "Shipped" => "SHIPPED",
            "Delivered" => "DELIVERED",
            "Cancelled" | "Refunded" => "CANCELLED",
            _ => "PENDING_PAYMENT",
        };
        // The latest event of each order decides (version 0 is the open-order marker).
        let entry = orders.entry(id).or_insert_with(|| (0, "PENDING_PAYMENT".to_owned()));
        if version > entry.0 {
            *entry = (version, status.to_owned());
        }
    }
    orders.values().for_each(|(_, s)| *statuses.entry(s.clone()).or_default() += 1);
    println!("  orders          {statuses:?}");
    let mut stock = Vec::new();
    for sku in ["MUG", "TEE", "HOODIE", "CAP", "STICKER", "POSTER"] {
        let (available, reserved) = probe.stock(sku).await?;
        stock.push(format!("{sku} {available}+{reserved}"));
    }
    println!("  stock           {} (available+reserved)", stock.join(", "));
    let mut points = Vec::new();
    for customer in ["cust-ada", "cust-grace", "cust-ghost", "cust-linus"] {
        points.push(format!("{customer} {}", probe.loyalty_points(customer).await?));
    }
    println!("  loyalty points  {}", points.join(", "));
    // The day's counters are sharded by event ID (functions/analytics): sum the shards.
    let mut days: std::collections::BTreeMap<(String, String), [i64; 3]> = Default::default();
    for item in probe.scan("AnalyticsTableName").await? {
        let key = |k: &str| item.get(k).and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        if key("pk").starts_with("DAY#") {
            let currency = key("sk").split("#SHARD#").next().unwrap_or_default().to_owned();
            let total = days.entry((key("pk"), currency)).or_default();
            for (slot, name) in total.iter_mut().zip(["revenue", "orders", "units"]) {
                *slot += crate::probe::number(&item, name);
            }
        }
    }
    for ((day, currency), [revenue, orders, units]) in days {
        println!("  analytics       {day} {currency}: revenue {revenue} cents, {orders} orders, {units} units");
    }
    println!("  e-mails sent    {}", probe.emails_sent().await?);
    let mut depths = Vec::new();
    for consumer in ["Email", "Inventory", "Analytics", "Loyalty", "Recommendations"] {
        depths.push(format!("{consumer} {}", probe.depth(&format!("{consumer}DeadLetterQueueUrl")).await?));
    }
    depths.push(format!("OrderProjector failures {}", probe.depth("OrderProjectorFailureQueueUrl").await?));
    println!("  DLQ depths      {}", depths.join(", "));
    println!("  order views     {}", probe.scan("OrderViewsTableName").await?.len());
    Ok(())
}
