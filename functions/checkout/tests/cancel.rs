//! The customer's cancel, specified with in-memory ports: given an order in some state, when
//! the customer cancels it, then it is cancelled and refunded exactly once, or refused with
//! the order's status, and every event appended is announced.
//!
//! Crashes at every step of the cancel, recovered by a retry or by the sweeper, are explored in
//! functions/sweeper/tests/lifecycle_faults.rs (it needs the sweeper, which depends on this crate).

mod common;

use common::*;
use serde_json::json;
use shared::adapters::memory::StockLevel;
use shared::adapters::sandbox_payments::LedgerEntry;
use shared::domain::{CancelReason, Currency, LineItem, Money, OrderEvent, OrderId, OrderStatus};
use shared::ports::{OrderChange, OrderStore, StockEffect};
use std::sync::atomic::Ordering;
use std::sync::Arc;

#[tokio::test]
async fn given_a_placed_order_when_the_customer_cancels_then_it_is_cancelled_and_refunded_in_full() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let reply = w.cancel(id, "c1").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let view = body(&reply);
    assert_eq!((view["status"].as_str(), view["version"].as_u64()), (Some("CANCELLED"), Some(4)));
    assert_eq!(view["cancelReason"], json!({"kind": "customerRequested"}));
    assert_eq!(view["refund"], json!({"refundId": format!("re_{id}"), "amount": 2500, "currency": "EUR"}));
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured", "Cancelled", "Refunded"]);
    let refunded = LedgerEntry::Refunded { refund_id: format!("re_{id}"), amount: Money::new(2500, Currency::EUR) };
    assert_eq!(w.refund_at_gateway(id), Some(refunded));
}

#[tokio::test]
async fn given_a_placed_order_when_cancelled_then_order_cancelled_and_payment_refunded_are_published_in_version_order()
{
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel(id, "c1").await;
    let published = w.published_of(id);
    let expected = [("order.placed", 2), ("order.cancelled", 3), ("payment.refunded", 4)];
    assert_eq!(published, expected.map(|(t, v)| (t.to_owned(), v)));
    let cancelled = w.detail_of(id, "order.cancelled");
    assert_eq!(cancelled["correlationId"], "corr-cancel", "under the cancel request's correlation ID");
    assert_eq!(cancelled["data"]["lines"][0], json!({"sku": "MUG", "quantity": 2, "unitPrice": 1250}));
    assert_eq!(
        (cancelled["data"]["total"].as_i64(), cancelled["data"]["currency"].as_str()),
        (Some(2500), Some("EUR"))
    );
    let refunded = w.detail_of(id, "payment.refunded");
    assert_eq!(
        refunded["data"],
        json!({"customerId": "cust-1", "refundId": format!("re_{id}"), "amount": 2500, "currency": "EUR"})
    );
    assert_eq!(w.shop.outbox_len(), 0, "published, then cleared");
}

#[tokio::test]
async fn given_a_placed_order_when_cancelled_then_each_event_is_recorded_with_the_cancel_requests_correlation_id() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel(id, "c1").await;
    let correlations: Vec<(u32, String)> =
        w.history(id).await.into_iter().map(|r| (r.version, r.correlation_id)).collect();
    let expected = [(1, "corr-checkout"), (2, "corr-checkout"), (3, "corr-cancel"), (4, "corr-cancel")];
    assert_eq!(correlations, expected.map(|(v, c)| (v, c.to_owned())));
}

#[tokio::test]
async fn given_a_placed_order_when_cancelled_then_its_stock_is_left_for_the_inventory_consumer_to_restock() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel(id, "c1").await;
    assert_eq!(w.shop.stock("MUG"), StockLevel { available: 8, reserved: 2 }, "order.cancelled tells inventory");
}

#[tokio::test]
async fn given_a_cancelled_order_when_the_same_request_comes_again_then_the_answer_is_replayed() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let first = w.cancel(id, "c1").await;
    let again = w.cancel(id, "c1").await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(header(&again, "idempotent-replayed"), Some("true"));
}

#[tokio::test]
async fn given_a_cancelled_order_when_cancelled_again_with_another_key_then_the_same_answer_and_one_refund() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let first = w.cancel(id, "c1").await;
    let published = w.bus.published().len();
    let second = w.cancel(id, "c2").await;
    assert_eq!((second.status, &second.body), (first.status, &first.body));
    assert_eq!(header(&second, "idempotent-replayed"), None, "not a replay: the order says it is done");
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured", "Cancelled", "Refunded"]);
    assert_eq!(w.bus.published().len(), published, "nothing announced twice");
}

#[tokio::test]
async fn given_two_cancels_at_once_then_one_cancellation_one_refund_and_the_same_answer() {
    let w = given_a_shop_where(|orders| Arc::new(Yielding { inner: orders, conflicts: Default::default() }));
    let id = w.given_a_placed_order().await;
    let (a, b) = tokio::join!(w.cancel(id, "c1"), w.cancel(id, "c2"));
    assert_eq!((a.status, b.status), (200, 200), "{} / {}", a.body, b.body);
    assert_eq!(a.body, b.body);
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured", "Cancelled", "Refunded"]);
    let announced: Vec<String> = w.published_of(id).into_iter().map(|(t, _)| t).collect();
    assert_eq!(announced, ["order.placed", "order.cancelled", "payment.refunded"]);
}

#[tokio::test]
async fn given_a_shipped_order_when_the_customer_cancels_then_409_with_the_status_and_nothing_is_refunded() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    let reply = w.cancel(id, "c1").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (409, "order-state-conflict"));
    assert_eq!(header(&reply, "content-type"), Some("application/problem+json"));
    assert_eq!(body(&reply)["orderStatus"], "SHIPPED");
    assert_eq!(w.refund_at_gateway(id), None);
    assert_eq!(w.order(id).await.status, OrderStatus::Shipped);
}

#[tokio::test]
async fn given_a_delivered_order_when_the_customer_cancels_then_409_delivered() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    w.deliver(id, "d1").await;
    let reply = w.cancel(id, "c1").await;
    assert_eq!((reply.status, body(&reply)["orderStatus"].as_str()), (409, Some("DELIVERED")));
    assert_eq!(w.refund_at_gateway(id), None);
}

#[tokio::test]
async fn a_refusal_that_can_never_change_is_final_and_replayed() {
    let w = given_a_shop();
    let id = w.given_a_shipped_order().await;
    let first = w.cancel(id, "c1").await;
    let again = w.cancel(id, "c1").await;
    assert_eq!((again.status, header(&again, "idempotent-replayed")), (first.status, Some("true")));
}

#[tokio::test]
async fn given_an_order_whose_checkout_is_still_running_when_cancelled_then_409_retry_later_and_later_it_works() {
    let w = given_a_shop();
    // The checkout charged, then could not record the capture: the order is still pending.
    w.shop.fail_next_commit_of("PaymentCaptured");
    assert_eq!(w.place("tok_visa", "p1").await.status, 503);
    let [id] = w.shop.order_ids()[..] else { panic!("one order") };
    let reply = w.cancel(id, "c1").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (409, "order-not-ready"));
    assert_eq!(
        (body(&reply)["orderStatus"].as_str(), header(&reply, "retry-after")),
        (Some("PENDING_PAYMENT"), Some("10"))
    );
    assert_eq!(w.refund_at_gateway(id), None);
    // When the checkout's retry has placed it, the same cancel request goes through.
    assert_eq!(w.place_at("tok_visa", "p1", LATER).await.status, 201);
    let later = w.cancel_at(id, "c1", LATER).await;
    assert_eq!((later.status, body(&later)["status"].as_str()), (200, Some("CANCELLED")), "{}", later.body);
}

#[tokio::test]
async fn given_an_order_the_checkout_cancelled_when_the_customer_cancels_then_409_and_nothing_is_refunded() {
    let w = given_a_shop();
    assert_eq!(w.place("tok_chargeDeclined", "p1").await.status, 402);
    let [id] = w.shop.order_ids()[..] else { panic!("one order") };
    let reply = w.cancel(id, "c1").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (409, "order-state-conflict"));
    assert_eq!(body(&reply)["orderStatus"], "CANCELLED");
    assert_eq!(w.event_names(id), ["Opened", "Cancelled"], "nothing appended");
    assert_eq!(w.refund_at_gateway(id), None);
}

#[tokio::test]
async fn an_unknown_or_malformed_order_id_is_404_and_the_key_is_not_kept() {
    let w = given_a_shop();
    let unknown = OrderId::new();
    let reply = w.cancel(unknown, "c1").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (404, "order-not-found"));
    assert!(w.keys.is_empty(), "a 404 is not remembered");
    for id in ["not-an-id", "../../etc/passwd", "", &"9".repeat(10_000)] {
        let reply = w.checkout.cancel(command(&customer(), id, Some("c2"), b"", "corr", NOW)).await;
        assert_eq!(reply.status, 404, "{id:.20}");
    }
    assert!(w.keys.is_empty());
}

#[tokio::test]
async fn a_cancel_without_a_valid_idempotency_key_is_400_and_changes_nothing() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    let text = id.to_string();
    let too_long = "k".repeat(256);
    for key in [None, Some(""), Some("has space"), Some("caf\u{e9}"), Some(too_long.as_str())] {
        let reply = w.checkout.cancel(command(&customer(), &text, key, b"", "corr", NOW)).await;
        assert_eq!(reply.status, 400, "{key:?}");
        assert_eq!(body(&reply)["errors"][0]["pointer"], "header:Idempotency-Key");
    }
    assert_eq!(w.order(id).await.status, OrderStatus::Placed);
}

#[tokio::test]
async fn the_same_key_for_another_orders_cancel_is_another_key() {
    let w = given_a_shop();
    let (a, b) = (w.given_a_placed_order().await, w.given_a_placed_order().await);
    assert_eq!(w.cancel(a, "same").await.status, 200);
    let reply = w.cancel(b, "same").await;
    assert_eq!((reply.status, header(&reply, "idempotent-replayed")), (200, None));
    assert_eq!(body(&reply)["orderId"], b.to_string());
    assert_eq!(w.order(b).await.status, OrderStatus::Cancelled);
}

#[tokio::test]
async fn given_a_gateway_that_does_not_answer_the_refund_then_503_and_a_retry_finishes_the_refund_once() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.network.fail_refunds.store(1, Ordering::SeqCst);
    let failed = w.cancel(id, "c1").await;
    assert_eq!((failed.status, header(&failed, "retry-after")), (503, Some("1")));
    let order = w.order(id).await;
    assert!(order.refund_pending(), "cancelled, refund still to come: {order:?}");
    assert_eq!(w.published_of(id).last().map(|(t, _)| t.as_str()), Some("order.cancelled"));
    let retry = w.cancel(id, "c1").await;
    assert_eq!((retry.status, body(&retry)["status"].as_str()), (200, Some("CANCELLED")));
    assert_eq!(body(&retry)["refund"]["amount"], 2500);
    assert_eq!(w.event_names(id), ["Opened", "PaymentCaptured", "Cancelled", "Refunded"]);
}

#[tokio::test]
async fn given_a_store_fault_on_the_cancellation_then_503_nothing_changed_and_a_retry_cancels() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.shop.fail_next_commit_of("Cancelled");
    let failed = w.cancel(id, "c1").await;
    assert_eq!((failed.status, problem(&failed).as_str()), (503, "unavailable"));
    assert_eq!((w.order(id).await.status, w.refund_at_gateway(id)), (OrderStatus::Placed, None));
    assert_eq!(w.cancel(id, "c1").await.status, 200);
    assert!(w.refund_at_gateway(id).is_some());
}

#[tokio::test]
async fn when_the_bus_is_down_the_order_is_still_cancelled_and_refunded_and_both_events_wait_in_the_outbox() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.bus.fail_next_calls(u32::MAX);
    let reply = w.cancel(id, "c1").await;
    assert_eq!(reply.status, 200);
    assert_eq!(w.shop.outbox_len(), 2, "order.cancelled and payment.refunded, for the relay");
}

#[tokio::test]
async fn given_a_cancelled_order_with_no_charge_at_the_gateway_then_the_refused_refund_is_502_and_the_order_stays_refund_pending(
) {
    let w = given_a_shop();
    // An order recorded as placed whose charge the gateway does not know (a corrupted ledger).
    let id = OrderId::new();
    let lines = vec![LineItem { sku: "MUG".into(), quantity: 1, unit_price: Money::new(1250, Currency::EUR) }];
    let events = [
        OrderEvent::Opened {
            customer_id: "cust-1".into(),
            lines: lines.clone(),
            total: Money::new(1250, Currency::EUR),
            at: chrono::Utc::now(),
            correlation_id: "corr".into(),
        },
        OrderEvent::PaymentCaptured { charge_id: "ch_ghost".into(), at: chrono::Utc::now() },
    ];
    for (version, event) in (1..).zip(&events) {
        let stock = if version == 1 { StockEffect::Reserve(&lines) } else { StockEffect::None };
        let change = OrderChange { order_id: id, version, event, stock, outbox: None, correlation_id: "corr" };
        w.shop.commit(change).await.unwrap();
    }
    let reply = w.cancel(id, "c1").await;
    assert_eq!((reply.status, problem(&reply).as_str()), (502, "refund-refused"));
    let order = w.order(id).await;
    assert_eq!(order.cancel_reason, Some(CancelReason::CustomerRequested));
    assert!(order.refund_pending(), "left for an operator, and listed open for the sweeper's alarm");
}
