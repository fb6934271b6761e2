//! Event sourcing you can see, specified with in-memory ports: the audit trail of an order and
//! the order as it was at any past time, both read from the same stored events.

mod common;

use chrono::{SecondsFormat, Utc};
use common::*;
use serde_json::json;
use shared::domain::OrderId;

/// A moment strictly between two events.
async fn a_moment() -> String {
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    let at = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    at
}

#[tokio::test]
async fn given_a_delivered_order_its_events_are_listed_in_version_order_with_time_and_cause() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    w.deliver(id, "d1").await;
    let reply = w.history_by(&customer(), &id.to_string()).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let trail = body(&reply);
    assert_eq!(trail["orderId"], id.to_string());
    let events = trail["events"].as_array().unwrap();
    let summary: Vec<(u64, &str, &str)> = events
        .iter()
        .map(|e| (e["version"].as_u64().unwrap(), e["type"].as_str().unwrap(), e["correlationId"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [
            (1, "Opened", "corr-checkout"),
            (2, "PaymentCaptured", "corr-checkout"),
            (3, "Shipped", "corr-warehouse"),
            (4, "Delivered", "corr-carrier"),
        ]
    );
    let times: Vec<&str> = events.iter().map(|e| e["at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|t| t[0] <= t[1]), "in time order too: {times:?}");
}

#[tokio::test]
async fn each_listed_event_carries_its_own_fields_as_data() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel(id, "c1").await;
    let trail = body(&w.history_by(&customer(), &id.to_string()).await);
    let data = |v: usize| trail["events"][v - 1]["data"].clone();
    assert_eq!(data(1)["total"], json!({"amount": 2500, "currency": "EUR"}));
    assert_eq!(data(1)["lines"][0]["sku"], "MUG");
    assert_eq!(data(2), json!({"chargeId": format!("ch_{id}")}));
    assert_eq!(data(3), json!({"reason": {"kind": "customerRequested"}}));
    assert_eq!(data(4)["refund"]["refundId"], format!("re_{id}"));
    assert!(data(3).get("type").is_none() && data(3).get("at").is_none(), "shown once, beside data");
}

#[tokio::test]
async fn the_history_of_an_unknown_or_malformed_order_is_404() {
    let w = given_a_shop();
    for id in [OrderId::new().to_string(), "nope".into()] {
        let reply = w.history_by(&customer(), &id).await;
        assert_eq!((reply.status, problem(&reply).as_str()), (404, "order-not-found"));
    }
}

#[tokio::test]
async fn given_an_order_that_moved_on_when_asked_as_of_a_past_time_then_it_is_as_it_was_then() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let placed_at = a_moment().await;
    w.ship(id, "s1", "UPS", "1Z999").await;
    let shipped_at = a_moment().await;
    w.deliver(id, "d1").await;
    let then = w.get_by(&customer(), &id.to_string(), Some(&placed_at)).await;
    assert_eq!(then.status, 200, "{}", then.body);
    assert_eq!((body(&then)["status"].as_str(), body(&then)["version"].as_u64()), (Some("PLACED"), Some(2)));
    assert_eq!(body(&then)["shipment"], json!(null));
    let shipped = body(&w.get_by(&customer(), &id.to_string(), Some(&shipped_at)).await);
    assert_eq!(
        (shipped["status"].as_str(), shipped["shipment"]["trackingId"].as_str()),
        (Some("SHIPPED"), Some("1Z999"))
    );
    let now = body(&w.get_by(&customer(), &id.to_string(), None).await);
    assert_eq!(now["status"], "DELIVERED");
}

#[tokio::test]
async fn as_of_accepts_any_utc_offset() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let later =
        (Utc::now() + chrono::Duration::hours(1)).with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap());
    let reply = w.get_by(&customer(), &id.to_string(), Some(&later.to_rfc3339())).await;
    assert_eq!((reply.status, body(&reply)["status"].as_str()), (200, Some("PLACED")));
}

#[tokio::test]
async fn as_of_a_time_before_the_order_existed_is_404() {
    let w = given_a_shop();
    let before = a_moment().await;
    let id = w.given_a_placed_order().await;
    let reply = w.get_by(&customer(), &id.to_string(), Some(&before)).await;
    assert_eq!((reply.status, problem(&reply).as_str()), (404, "order-not-found"));
}

#[tokio::test]
async fn as_of_that_is_not_an_rfc_3339_time_is_400_naming_the_parameter() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await.to_string();
    for bad in ["", "yesterday", "2027-01-15", "2027-01-15 08:00:00", "1800000000", "2027-13-01T00:00:00Z"] {
        let reply = w.get_by(&customer(), &id, Some(bad)).await;
        assert_eq!(reply.status, 400, "{bad:?}");
        assert_eq!(body(&reply)["errors"][0]["pointer"], "query:asOf", "{bad:?}");
    }
}

#[tokio::test]
async fn the_order_view_shows_when_it_last_changed_why_it_was_cancelled_and_its_refund() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let cancelled = body(&w.cancel(id, "c1").await);
    let view = body(&w.get_by(&customer(), &id.to_string(), None).await);
    assert_eq!(view, cancelled, "the command answers with the same view as GET");
    assert_eq!(view["cancelReason"], json!({"kind": "customerRequested"}));
    assert_eq!(view["refund"]["refundId"], format!("re_{id}"));
    let (opened, updated) = (view["openedAt"].as_str().unwrap(), view["updatedAt"].as_str().unwrap());
    assert!(updated > opened, "updatedAt is the refund's time: {opened} < {updated}");
}

#[tokio::test]
async fn a_placed_order_shows_no_shipment_refund_or_cancel_reason_yet() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let view = body(&w.get_by(&customer(), &id.to_string(), None).await);
    for field in ["shipment", "refund", "cancelReason"] {
        assert_eq!(view[field], json!(null), "{field}");
    }
}
