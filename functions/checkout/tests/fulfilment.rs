//! The warehouse's commands, specified with in-memory ports: given an order, when staff ship
//! or deliver it, then the order moves on and announces it once, or the command is refused
//! with the order's status; and a concurrent cancel and shipment never both win.

mod common;

use common::*;
use serde_json::json;
use shared::domain::{OrderStatus, Shipment};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[tokio::test]
async fn given_a_placed_order_when_the_warehouse_ships_it_then_it_is_shipped_with_its_shipment() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let reply = w.ship(id, "s1", "UPS", "1Z999AA10123456784").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let view = body(&reply);
    assert_eq!((view["status"].as_str(), view["version"].as_u64()), (Some("SHIPPED"), Some(3)));
    assert_eq!(view["shipment"], json!({"carrier": "UPS", "trackingId": "1Z999AA10123456784"}));
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured", "Shipped"]);
}

#[tokio::test]
async fn given_a_placed_order_when_shipped_then_order_shipped_is_published_by_fulfilment_with_the_tracking() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.ship(id, "s1", "UPS", "1Z999").await;
    let shipped = w.bus.published().into_iter().find(|e| e.detail_type == "order.shipped").expect("order.shipped");
    assert_eq!(shipped.source, "shop.fulfilment");
    let detail = w.detail_of(id, "order.shipped");
    assert_eq!((detail["orderVersion"].as_u64(), detail["correlationId"].as_str()), (Some(3), Some("corr-warehouse")));
    assert_eq!(detail["data"], json!({"customerId": "cust-1", "carrier": "UPS", "trackingId": "1Z999"}));
    assert_eq!(w.shop.outbox_len(), 0);
}

#[tokio::test]
async fn given_a_shipped_order_when_the_same_request_comes_again_then_the_answer_is_replayed() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let first = w.ship(id, "s1", "UPS", "1Z999").await;
    let again = w.ship(id, "s1", "UPS", "1Z999").await;
    assert_eq!((again.status, &again.body, header(&again, "idempotent-replayed")), (200, &first.body, Some("true")));
}

#[tokio::test]
async fn given_a_shipment_key_when_reused_for_another_shipment_then_422() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.ship(id, "s1", "UPS", "1Z999").await;
    let reply = w.ship(id, "s1", "DHL", "JD0146").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (422, "idempotency-key-reused"));
}

#[tokio::test]
async fn given_a_shipped_order_when_the_same_shipment_comes_under_another_key_then_the_same_answer_and_one_event() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let first = w.ship(id, "s1", "UPS", "1Z999").await;
    let second = w.ship(id, "s2", "UPS", "1Z999").await;
    assert_eq!((second.status, &second.body), (200, &first.body));
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured", "Shipped"]);
    assert_eq!(w.published_of(id).len(), 2, "order.placed and one order.shipped");
}

#[tokio::test]
async fn given_a_shipped_order_when_another_shipment_comes_then_409_shipped() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    let reply = w.ship(id, "s2", "DHL", "JD0146").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (409, "order-state-conflict"));
    assert_eq!(body(&reply)["orderStatus"], "SHIPPED");
    assert_eq!(w.order(id).await.shipment, Some(Shipment { carrier: "UPS".into(), tracking_id: "1Z999".into() }));
}

#[tokio::test]
async fn given_a_cancelled_order_when_the_warehouse_ships_it_then_409_cancelled() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel(id, "c1").await;
    let reply = w.ship(id, "s1", "UPS", "1Z999").await;
    assert_eq!((reply.status, body(&reply)["orderStatus"].as_str()), (409, Some("CANCELLED")));
    assert!(!w.event_names(id).contains(&"Shipped"));
}

#[tokio::test]
async fn given_an_order_still_awaiting_payment_when_shipped_then_409_not_ready() {
    let w = given_a_shop();
    w.shop.fail_next_commit_of("PaymentCaptured");
    w.place("tok_visa", "p1").await;
    let [id] = w.shop.order_ids()[..] else { panic!("one order") };
    let reply = w.ship(id, "s1", "UPS", "1Z999").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (409, "order-not-ready"));
    assert_eq!(body(&reply)["orderStatus"], "PENDING_PAYMENT");
}

#[tokio::test]
async fn an_invalid_shipment_body_is_400_with_every_field_error_and_nothing_is_remembered() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let keys_before = w.keys.len();
    let text = id.to_string();
    let bad = json!({"carrier": "", "trackingId": "1Z\u{202E}999"}).to_string();
    let reply = w.fulfilment.ship(command(&staff(), &text, Some("s1"), bad.as_bytes(), "corr", NOW)).await;
    assert_eq!(reply.status, 400);
    let pointers: Vec<String> =
        body(&reply)["errors"].as_array().unwrap().iter().map(|e| e["pointer"].as_str().unwrap().to_owned()).collect();
    assert_eq!(pointers, ["/carrier", "/trackingId"]);
    assert_eq!(w.keys.len(), keys_before, "validation failures are not remembered");
    assert_eq!(w.order(id).await.status, OrderStatus::Placed);
}

#[tokio::test]
async fn a_shipment_that_is_not_json_is_415_and_one_over_4_kib_is_413() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await.to_string();
    let body = shipment("UPS", "1Z");
    let sam = staff();
    let mut plain = command(&sam, &id, Some("s1"), &body, "corr", NOW);
    plain.content_type = Some("text/plain");
    assert_eq!(w.fulfilment.ship(plain).await.status, 415);
    let huge = vec![b' '; 4 * 1024 + 1];
    assert_eq!(w.fulfilment.ship(command(&staff(), &id, Some("s1"), &huge, "corr", NOW)).await.status, 413);
}

#[tokio::test]
async fn a_shipment_for_an_unknown_order_is_404() {
    let w = given_a_shop();
    let reply = w.ship(shared::domain::OrderId::new(), "s1", "UPS", "1Z").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (404, "order-not-found"));
}

#[tokio::test]
async fn given_a_shipped_order_when_delivered_then_it_is_delivered_and_order_delivered_is_published() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    let reply = w.deliver(id, "d1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!((body(&reply)["status"].as_str(), body(&reply)["version"].as_u64()), (Some("DELIVERED"), Some(4)));
    let detail = w.detail_of(id, "order.delivered");
    assert_eq!((detail["orderVersion"].as_u64(), detail["correlationId"].as_str()), (Some(4), Some("corr-carrier")));
    assert_eq!(detail["data"], json!({"customerId": "cust-1"}));
    assert_eq!(body(&reply)["shipment"]["carrier"], "UPS", "the shipment stays on the delivered order");
}

#[tokio::test]
async fn given_a_placed_order_when_delivered_before_shipping_then_409_placed() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let reply = w.deliver(id, "d1").await;
    assert_eq!((reply.status, body(&reply)["orderStatus"].as_str()), (409, Some("PLACED")));
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured"]);
}

#[tokio::test]
async fn given_a_cancelled_order_when_delivered_then_409_cancelled() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel(id, "c1").await;
    let reply = w.deliver(id, "d1").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (409, "order-state-conflict"));
    assert_eq!(body(&reply)["orderStatus"], "CANCELLED");
}

#[tokio::test]
async fn given_a_delivered_order_when_delivered_again_with_another_key_then_the_same_answer_and_one_event() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    let first = w.deliver(id, "d1").await;
    let second = w.deliver(id, "d2").await;
    assert_eq!((second.status, &second.body), (200, &first.body));
    assert_eq!(w.event_names(id).iter().filter(|n| **n == "Delivered").count(), 1);
}

#[tokio::test]
async fn a_delivery_without_an_idempotency_key_is_400() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await.to_string();
    let reply = w.fulfilment.deliver(command(&staff(), &id, None, b"", "corr", NOW)).await;
    assert_eq!((reply.status, body(&reply)["errors"][0]["pointer"].as_str()), (400, Some("header:Idempotency-Key")));
}

/// Cancel and ship race for the same placed order, started at every offset against each other
/// (each store call yields, so they interleave call by call): exactly one wins; the other is
/// refused with the winner's status; a refund exists exactly when the cancel won.
#[tokio::test]
async fn given_a_cancel_and_a_shipment_at_once_then_exactly_one_wins_and_the_other_gets_409() {
    let (mut races_with_a_conflict, mut cancel_won, mut ship_won) = (0, 0, 0);
    for cancel_offset in 0..6 {
        for ship_offset in 0..6 {
            let mut store = None;
            let w = given_a_shop_where(|orders| {
                let yielding = Arc::new(Yielding { inner: orders, conflicts: Default::default() });
                store = Some(yielding.clone());
                yielding
            });
            let id = w.given_a_placed_order().await;
            let (cancel, ship) = tokio::join!(
                async {
                    after_yields(cancel_offset).await;
                    w.cancel(id, "c1").await
                },
                async {
                    after_yields(ship_offset).await;
                    w.ship(id, "s1", "UPS", "1Z999").await
                }
            );
            let at = format!("offsets ({cancel_offset}, {ship_offset})");
            let order = w.order(id).await;
            match (cancel.status, ship.status) {
                (200, 409) => {
                    cancel_won += 1;
                    assert_eq!(body(&ship)["orderStatus"], "CANCELLED", "{at}");
                    assert_eq!((order.status, order.refund.is_some()), (OrderStatus::Cancelled, true), "{at}");
                    assert!(w.refund_at_gateway(id).is_some(), "{at}");
                }
                (409, 200) => {
                    ship_won += 1;
                    assert_eq!(body(&cancel)["orderStatus"], "SHIPPED", "{at}");
                    assert_eq!(order.status, OrderStatus::Shipped, "{at}");
                    assert_eq!(w.refund_at_gateway(id), None, "{at}: nothing refunded for a shipped order");
                }
                other => panic!("{at}: expected one 200 and one 409, got {other:?}: {} / {}", cancel.body, ship.body),
            }
            assert_eq!(w.history(id).await.len(), if order.status == OrderStatus::Shipped { 3 } else { 4 }, "{at}");
            races_with_a_conflict += store.as_ref().unwrap().conflicts.load(Ordering::SeqCst).min(1);
        }
    }
    assert!(races_with_a_conflict > 0, "some schedules made the loser lose on the version, then decide again");
    assert!(cancel_won > 0 && ship_won > 0, "either can win: cancel {cancel_won}, ship {ship_won}");
}
