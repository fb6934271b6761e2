//! The demo's second half: an order's whole life after checkout (shipped, delivered; another
//! cancelled with its refund and restock), its history and its state as of a past time, the
//! customer's order list from the read model, and the same events delivered in reverse order
//! to loyalty and to the projector, converging to the same state.

use crate::demo::Timeline;
use crate::poller::Observation;
use crate::probe::{customer, eventually, text, Answer, As, Probe, ProbeError};
use crate::system::LocalSystem;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use shared::config::Env;
use std::time::Duration;
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(30);

fn status(answer: &Answer) -> String {
    match answer.body["status"].as_str() {
        Some(status) => format!("{} {status}", answer.status),
        None => {
            format!("{} {}", answer.status, answer.body["type"].as_str().unwrap_or("").rsplit('/').next().unwrap_or(""))
        }
    }
}

/// Waits until each of `functions` has handled an event of `event_type` for the order, and
/// returns those deliveries (with the envelope each carried).
async fn handled(
    timeline: &Timeline,
    rx: &mut broadcast::Receiver<Observation>,
    order_id: &str,
    event_type: &str,
    functions: &[&str],
) -> Vec<Observation> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut seen: Vec<Observation> = Vec::new();
    while !functions.iter().all(|f| seen.iter().any(|o| o.function == *f && o.succeeded)) {
        let Ok(Ok(obs)) = tokio::time::timeout_at(deadline, rx.recv()).await else { break };
        let of_event = obs.detail.as_ref().is_some_and(|d| d["type"] == event_type);
        if obs.order_id.as_deref() != Some(order_id) || !of_event || !functions.contains(&obs.function.as_str()) {
            continue;
        }
        let outcome = if obs.succeeded { "ok" } else { "FAILED, will be retried" };
        timeline.say(format!("    {:<24} {event_type} {outcome}", obs.function));
        seen.push(obs);
    }
    seen
}

pub(crate) async fn run(
    system: &LocalSystem,
    probe: &Probe,
    timeline: &Timeline,
    rx: &mut broadcast::Receiver<Observation>,
    delivered_id: &str,
) -> Result<(), ProbeError> {
    println!(
        "\n9. The warehouse ships and delivers the first order (staff routes: a staff token, a function of their own)"
    );
    let shipment = json!({"carrier": "UPS", "trackingId": "1Z999AA10123456784"});
    let ships = format!("/orders/{delivered_id}/shipments");
    let by_customer = probe.post(&customer("cust-ada"), &ships, "demo-ship-self", &shipment).await?;
    timeline.say(format!(
        "POST {ships} as cust-ada (no {} scope) -> {} {} (the authorizer refused it; no function ran)",
        probe.staff_scope, by_customer.status, by_customer.body
    ));
    let shipped = probe.post(&As::Staff, &ships, "demo-ship", &shipment).await?;
    timeline.say(format!("POST /orders/{delivered_id}/shipments UPS 1Z999AA10123456784 -> {}", status(&shipped)));
    handled(timeline, rx, delivered_id, "order.shipped", &["EmailFunction"]).await;
    let delivered =
        probe.post(&As::Staff, &format!("/orders/{delivered_id}/delivery"), "demo-deliver", &json!({})).await?;
    timeline.say(format!("POST /orders/{delivered_id}/delivery -> {}", status(&delivered)));
    let other = json!({"carrier": "DHL", "trackingId": "JD0146000000001"});
    let again = probe.post(&As::Staff, &ships, "demo-ship-again", &other).await?;
    timeline.say(format!(
        "POST /orders/{delivered_id}/shipments DHL (a second shipment) -> {}, current status {}",
        status(&again),
        again.body["orderStatus"].as_str().unwrap_or("?")
    ));

    println!("\n10. A customer cancels a placed order: refunded, stock back, points taken back");
    let grace = customer("cust-grace");
    let placed = probe.place_order("demo-regret", "cust-grace", &[("TEE", 2)], "tok_visa").await?;
    let regret_id = placed.body["orderId"].as_str().unwrap_or_default().to_owned();
    timeline.say(format!("POST /orders cust-grace TEE x2 -> {} {regret_id}", status(&placed)));
    let placed_seen =
        handled(timeline, rx, &regret_id, "order.placed", &["InventoryFunction", "LoyaltyFunction"]).await;
    let (stock, points) = (probe.stock("TEE").await?, probe.loyalty_points("cust-grace").await?);
    timeline.say(format!("    TEE stock (available, reserved) {stock:?}, cust-grace points {points}"));
    let cancel = probe.post(&grace, &format!("/orders/{regret_id}/cancel"), "demo-cancel", &json!({})).await?;
    timeline.say(format!("POST /orders/{regret_id}/cancel -> {}, refund {}", status(&cancel), cancel.body["refund"]));
    let twice = probe.post(&grace, &format!("/orders/{regret_id}/cancel"), "demo-cancel-again", &json!({})).await?;
    timeline.say(format!(
        "POST /orders/{regret_id}/cancel (again, new key) -> {}, same refund: {}",
        status(&twice),
        twice.body["refund"] == cancel.body["refund"]
    ));
    let cancelled_seen = handled(
        timeline,
        rx,
        &regret_id,
        "order.cancelled",
        &["InventoryFunction", "LoyaltyFunction", "EmailFunction"],
    )
    .await;
    timeline.say(format!(
        "    TEE stock {:?}, cust-grace points {}: restocked, points reversed",
        probe.stock("TEE").await?,
        probe.loyalty_points("cust-grace").await?
    ));
    let refund = probe.ledger_entry(&format!("order-{regret_id}#refund")).await?;
    timeline.say(format!(
        "    gateway ledger: {} {} {} cents, one refund",
        text(&refund, "outcome"),
        text(&refund, "refundId"),
        crate::probe::number(&refund, "amount")
    ));

    println!("\n11. Event sourcing you can see: the first order's history, and the order as it was");
    let ada = customer("cust-ada");
    let history = probe.get(&ada, &format!("/orders/{delivered_id}/events")).await?;
    let events = history.body["events"].as_array().cloned().unwrap_or_default();
    for event in &events {
        timeline.say(format!(
            "    v{} {:<16} at {} caused by {}",
            event["version"],
            event["type"].as_str().unwrap_or("?"),
            event["at"].as_str().unwrap_or("?"),
            event["correlationId"].as_str().unwrap_or("?")
        ));
    }
    // Just after the capture: placed, not yet shipped.
    let captured_at = events.iter().find(|e| e["version"] == 2).and_then(|e| e["at"].as_str()).unwrap_or_default();
    let as_of = probe.get(&ada, &format!("/orders/{delivered_id}?asOf={captured_at}")).await?;
    let now = probe.get(&ada, &format!("/orders/{delivered_id}")).await?;
    timeline.say(format!(
        "GET /orders/{delivered_id}?asOf={captured_at} -> {} (version {}); now -> {} (version {})",
        as_of.body["status"].as_str().unwrap_or("?"),
        as_of.body["version"],
        now.body["status"].as_str().unwrap_or("?"),
        now.body["version"]
    ));

    println!("\n12. CQRS: cust-ada's orders from the read model (projected from the orders table's stream)");
    let list = eventually(WAIT, || async {
        let list = probe.get(&ada, "/customers/cust-ada/orders?limit=10").await.ok()?;
        let orders = list.body["orders"].as_array()?;
        orders.iter().any(|o| o["orderId"] == delivered_id && o["status"] == "DELIVERED").then_some(list)
    })
    .await
    .ok_or("the read model did not catch up")?;
    for order in list.body["orders"].as_array().into_iter().flatten() {
        timeline.say(format!(
            "    {} {:<10} {} {} cents, last change {}",
            order["orderId"].as_str().unwrap_or("?"),
            order["status"].as_str().unwrap_or("?"),
            order["currency"].as_str().unwrap_or("?"),
            order["total"],
            order["updatedAt"].as_str().unwrap_or("?")
        ));
    }

    println!("\n13. Out of order: the same events, newest first, to loyalty and to the projector");
    reversed_to_loyalty(system, probe, timeline, &placed_seen, &cancelled_seen).await?;
    reversed_to_the_projector(system, probe, timeline, &regret_id).await?;

    println!("\n14. Rebuild the read model from the event store into a fresh table and compare");
    let env = Env(system.stack.function("OrderProjectorFunction").environment.clone());
    let fresh = format!("{}-rebuilt", probe.output("OrderViewsTableName"));
    let report = order_views::rebuild::run(&env, &system.aws, &fresh).await.map_err(|e| e.to_string())?;
    timeline.say(format!(
        "rebuild-order-views --into {fresh} -> {} orders, {} identical, differing {:?}, missing {:?}, extra {:?}",
        report.orders, report.identical, report.differing, report.missing_from_live, report.extra_in_live
    ));
    Ok(())
}

/// Loyalty gets a copy of the cancelled order's two events for an order it never saw (new IDs,
/// same customer and total), `order.cancelled` first: as SQS would hand them over after a
/// retry or a redrive days later.
async fn reversed_to_loyalty(
    system: &LocalSystem,
    probe: &Probe,
    timeline: &Timeline,
    placed: &[Observation],
    cancelled: &[Observation],
) -> Result<(), ProbeError> {
    let detail =
        |seen: &[Observation]| seen.iter().find(|o| o.function == "LoyaltyFunction").and_then(|o| o.detail.clone());
    let (Some(mut placed), Some(mut cancelled)) = (detail(placed), detail(cancelled)) else {
        timeline.say("    (loyalty's deliveries were not observed; skipped)");
        return Ok(());
    };
    let copy = shared::domain::OrderId::new().to_string();
    for detail in [&mut placed, &mut cancelled] {
        detail["orderId"] = json!(copy);
        detail["eventId"] = json!(shared::domain::EventId::new().to_string());
    }
    let before = probe.loyalty_points("cust-grace").await?;
    let function = system.stack.function("LoyaltyFunction");
    for (detail_type, detail) in [("order.cancelled", &cancelled), ("order.placed", &placed)] {
        let answer = system
            .invoker
            .invoke(&function.binary, sqs_event(detail_type, detail)?, Duration::from_secs(function.timeout))
            .await?;
        let failed = answer["batchItemFailures"].as_array().map_or(0, Vec::len);
        timeline.say(format!(
            "    loyalty <- {detail_type} v{} of order {copy}: {}, cust-grace points {}",
            detail["orderVersion"],
            if failed == 0 { "handled" } else { "FAILED" },
            probe.loyalty_points("cust-grace").await?
        ));
    }
    timeline.say(format!(
        "    points {before} -> {}: in order the credit was taken back; reversed, the cancellation left a tombstone and the late credit was skipped",
        probe.loyalty_points("cust-grace").await?
    ));
    Ok(())
}

/// The projector gets the cancelled order's stream records newest first, its view deleted
/// beforehand (as if this were the first it heard of the order): the first record is ahead of
/// the view, so the projector catches up from the event store and skips the older ones.
async fn reversed_to_the_projector(
    system: &LocalSystem,
    probe: &Probe,
    timeline: &Timeline,
    order_id: &str,
) -> Result<(), ProbeError> {
    let views = probe.output("OrderViewsTableName");
    let view = |item: Option<std::collections::HashMap<String, AttributeValue>>| {
        item.map(|i| (text(&i, "status"), crate::probe::number(&i, "version"), text(&i, "updatedAt")))
    };
    let key = AttributeValue::S(order_id.to_owned());
    let read = || async {
        probe.dynamodb.get_item().table_name(views).key("orderId", key.clone()).consistent_read(true).send().await
    };
    let live =
        eventually(WAIT, || async { read().await.ok()?.item.filter(|i| crate::probe::number(i, "version") >= 4) })
            .await;
    let before = view(live);
    probe.dynamodb.delete_item().table_name(views).key("orderId", key.clone()).send().await?;
    let items = probe
        .dynamodb
        .query()
        .table_name(probe.output("OrdersTableName"))
        .key_condition_expression("orderId = :id AND version > :marker")
        .expression_attribute_values(":id", key.clone())
        .expression_attribute_values(":marker", AttributeValue::N("0".into()))
        .consistent_read(true)
        .send()
        .await?
        .items
        .unwrap_or_default();
    let mut event = aws_lambda_events::event::dynamodb::Event::default();
    event.records = items
        .iter()
        .rev()
        .map(|item| {
            order_views::record::insert_record(item, &format!("9{:023}", crate::probe::number(item, "version")))
        })
        .collect();
    let function = system.stack.function("OrderProjectorFunction");
    let answer = system
        .invoker
        .invoke(&function.binary, serde_json::to_value(&event)?, Duration::from_secs(function.timeout))
        .await?;
    let after = view(read().await?.item);
    timeline.say(format!(
        "    projector <- versions {:?} of order {order_id}, view deleted first: failures {}, view before {before:?}, after {after:?}: the same",
        items.iter().rev().map(|i| crate::probe::number(i, "version")).collect::<Vec<_>>(),
        answer["batchItemFailures"].as_array().map_or(0, Vec::len)
    ));
    Ok(())
}

/// The SQS event Lambda would deliver for one EventBridge event with `detail`.
fn sqs_event(detail_type: &str, detail: &Value) -> Result<Value, serde_json::Error> {
    let body = shared::testing::eventbridge_body_of("shop.checkout", detail_type, detail);
    serde_json::to_value(shared::testing::sqs_batch(&[body]))
}
