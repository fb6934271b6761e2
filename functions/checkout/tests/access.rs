//! Who may see and command an order, specified: its customer sees and cancels it; staff see
//! every order but cancel none in a customer's name; to anyone else it does not exist, and
//! the answer is the same 404 as for an order that was never placed, so that order IDs cannot
//! be probed. Nothing a refused caller sends changes anything.

mod common;

use common::*;
use serde_json::Value;
use shared::domain::{OrderId, OrderStatus};

/// A 404 body with the order ID taken out: what a caller can compare between two answers.
fn not_found_shape(reply: &checkout::service::Reply, id: &str) -> (u16, Value) {
    (reply.status, serde_json::from_str(&reply.body.replace(id, "<id>")).unwrap())
}

#[tokio::test]
async fn given_another_customers_order_when_read_then_404_exactly_as_for_an_order_never_placed() {
    let w = given_a_shop();
    let theirs = w.given_a_placed_order().await.to_string();
    let never = OrderId::new().to_string();

    let hidden = w.get_by(&another_customer(), &theirs, None).await;
    let missing = w.get_by(&another_customer(), &never, None).await;

    assert_eq!(not_found_shape(&hidden, &theirs), not_found_shape(&missing, &never));
    assert_eq!(hidden.status, 404);
}

#[tokio::test]
async fn given_another_customers_order_when_its_history_or_a_past_state_is_asked_then_404() {
    let w = given_a_shop();
    let theirs = w.given_a_placed_order().await.to_string();

    assert_eq!(w.history_by(&another_customer(), &theirs).await.status, 404);
    assert_eq!(w.get_by(&another_customer(), &theirs, Some("2100-01-01T00:00:00Z")).await.status, 404);
}

#[tokio::test]
async fn given_another_customers_order_when_cancelled_then_404_and_it_stays_placed_and_unrefunded() {
    let w = given_a_shop();
    let theirs = w.given_a_placed_order().await;

    let reply = w.cancel_by(&another_customer(), theirs, "cancel-1", NOW).await;

    assert_eq!((reply.status, problem(&reply)), (404, "order-not-found".to_owned()));
    assert_eq!(w.order(theirs).await.status, OrderStatus::Placed);
    assert_eq!(w.event_names(theirs), ["Opened", "PaymentCaptured"]);
    assert!(w.refund_at_gateway(theirs).is_none());
}

#[tokio::test]
async fn given_a_refused_cancel_under_a_key_when_the_owner_cancels_with_the_same_key_then_it_is_cancelled() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    w.cancel_by(&another_customer(), id, "same-key", NOW).await;

    let reply = w.cancel_by(&customer(), id, "same-key", NOW).await;

    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(header(&reply, "idempotent-replayed"), None);
    assert_eq!(w.order(id).await.status, OrderStatus::Cancelled);
}

#[tokio::test]
async fn given_the_owners_cancel_answered_when_another_customer_sends_the_same_key_then_no_replay_of_it() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;
    assert_eq!(w.cancel_by(&customer(), id, "same-key", NOW).await.status, 200);

    let reply = w.cancel_by(&another_customer(), id, "same-key", NOW).await;

    assert_eq!(reply.status, 404, "the owner's stored answer is not someone else's: {}", reply.body);
}

#[tokio::test]
async fn given_staff_when_reading_any_order_and_its_history_then_they_see_it() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await.to_string();

    assert_eq!(w.get_by(&staff(), &id, None).await.status, 200);
    assert_eq!(w.history_by(&staff(), &id).await.status, 200);
}

#[tokio::test]
async fn given_staff_when_cancelling_a_customers_order_then_404_because_only_its_customer_cancels() {
    let w = given_a_shop();
    let id = w.given_a_placed_order().await;

    assert_eq!(w.cancel_by(&staff(), id, "staff-cancel", NOW).await.status, 404);
    assert_eq!(w.order(id).await.status, OrderStatus::Placed);
}
