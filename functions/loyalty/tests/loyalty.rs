//! Loyalty, specified: points per whole unit, credited exactly once per order, taken back
//! when the order is cancelled, whatever order the two events arrive in.

use loyalty::memory::MemoryLedger;
use loyalty::{change_for, points_for, Change, Credit, LedgerError, Loyalty, LoyaltyEvents, LoyaltyLedger};
use shared::adapters::memory_dlq::MemoryDeadLetters;
use shared::consumer::{handle_batch, Consumer, ConsumerError};
use shared::domain::{Currency, Money, OrderId};
use shared::events::{Envelope, OrderPlacedV2};
use shared::out_of_order::{OrderRecord, Stage, Stages};
use shared::ports::{ErrorKind, Kind};
use shared::testing::{
    eventbridge_body, failed_ids, order_cancelled, order_placed, received_as, sample_batch, sqs_batch,
};

const NOW: i64 = 1_800_000_000_000;

type Given = shared::testing::Given<Loyalty<MemoryLedger>>;

fn given_loyalty() -> Given {
    Given { consumer: Loyalty { ledger: MemoryLedger::default() }, dlq: MemoryDeadLetters::default() }
}

async fn deliver(given: &Given, bodies: &[String]) -> Vec<String> {
    failed_ids(&handle_batch(&given.consumer, &given.dlq, &sqs_batch(bodies), NOW, NOW + 10_000).await)
}

/// Ada's order of 45.99 EUR: 45 points.
fn ada_order() -> Envelope<OrderPlacedV2> {
    order_placed("ada", &[("MUG", 2, 1250), ("TEE", 1, 2099)])
}

fn applied(given: &Given, order_id: OrderId) -> Stages {
    given.ledger.order_record(Loyalty::<MemoryLedger>::NAME, order_id).applied
}

#[test]
fn one_point_per_whole_currency_unit_rounded_down() {
    assert_eq!(points_for(Money::new(4599, Currency::EUR)), 45);
    assert_eq!(points_for(Money::new(99, Currency::EUR)), 0);
}

#[tokio::test]
async fn an_order_credits_its_points_and_writes_one_ledger_entry() {
    let loyalty = given_loyalty();
    let placed = ada_order();
    assert!(deliver(&loyalty, &[eventbridge_body(&placed)]).await.is_empty());
    assert_eq!(loyalty.ledger.balance("ada"), 45);
    let entries = loyalty.ledger.entries();
    assert_eq!((entries.len(), entries[0].order_id), (1, placed.order_id));
}

#[tokio::test]
async fn a_duplicate_delivery_does_not_double_the_points() {
    let loyalty = given_loyalty();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 2, 1250)]));
    deliver(&loyalty, std::slice::from_ref(&body)).await;
    assert!(deliver(&loyalty, &[body]).await.is_empty());
    assert_eq!(loyalty.ledger.balance("ada"), 25);
}

#[tokio::test]
async fn ten_concurrent_deliveries_credit_once() {
    let loyalty = given_loyalty();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 2, 1250)]));
    let runs = (0..10).map(|_| deliver(&loyalty, std::slice::from_ref(&body)));
    let failures: usize = futures::future::join_all(runs).await.iter().map(Vec::len).sum();
    assert_eq!(failures, 0, "the losers conflict, are retried in place and find a duplicate");
    assert_eq!(loyalty.ledger.balance("ada"), 25);
    assert_eq!(loyalty.ledger.entries().len(), 1);
}

#[tokio::test]
async fn orders_of_different_customers_credit_each_their_own() {
    let loyalty = given_loyalty();
    let a = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1000)]));
    let b = eventbridge_body(&order_placed("grace", &[("MUG", 3, 1000)]));
    deliver(&loyalty, &[a, b]).await;
    assert_eq!((loyalty.ledger.balance("ada"), loyalty.ledger.balance("grace")), (10, 30));
}

#[tokio::test]
async fn a_store_fault_fails_the_record_and_credits_nothing() {
    let loyalty = given_loyalty();
    loyalty.ledger.fail_next();
    let body = eventbridge_body(&order_placed("ada", &[("MUG", 1, 1000)]));
    assert_eq!(deliver(&loyalty, std::slice::from_ref(&body)).await, vec!["m0"]);
    assert_eq!(loyalty.ledger.balance("ada"), 0);
    assert!(deliver(&loyalty, &[body]).await.is_empty(), "the retry succeeds");
    assert_eq!(loyalty.ledger.balance("ada"), 10);
}

// ---- Cancellations, in either order of arrival. ----

#[tokio::test]
async fn a_cancellation_after_the_order_takes_its_points_back_and_removes_its_entry() {
    // Given a credited order
    let loyalty = given_loyalty();
    let placed = ada_order();
    deliver(&loyalty, &[eventbridge_body(&placed)]).await;
    // When its cancellation arrives
    assert!(deliver(&loyalty, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    // Then the credit is gone, balance and entry
    assert_eq!(loyalty.ledger.balance("ada"), 0);
    assert!(loyalty.ledger.entries().is_empty());
}

#[tokio::test]
async fn a_cancellation_before_the_order_credits_nothing_and_leaves_a_tombstone() {
    let loyalty = given_loyalty();
    let placed = ada_order();
    assert!(deliver(&loyalty, &[eventbridge_body(&order_cancelled(&placed))]).await.is_empty());
    assert_eq!(loyalty.ledger.balance("ada"), 0, "no reversal of a credit that never happened");
    assert!(loyalty.ledger.entries().is_empty());
    assert!(applied(&loyalty, placed.order_id).contains(Stage::Cancelled));
}

#[tokio::test]
async fn an_order_arriving_after_its_cancellation_is_skipped_and_credits_nothing() {
    let loyalty = given_loyalty();
    let placed = ada_order();
    deliver(&loyalty, &[eventbridge_body(&order_cancelled(&placed))]).await;
    assert!(deliver(&loyalty, &[eventbridge_body(&placed)]).await.is_empty(), "skipped, not failed");
    assert_eq!(loyalty.ledger.balance("ada"), 0, "no credit outlives the cancellation");
    assert!(loyalty.ledger.entries().is_empty());
    assert!(loyalty.dlq.sent().is_empty());
}

#[tokio::test]
async fn a_duplicate_cancellation_takes_the_points_back_once() {
    let loyalty = given_loyalty();
    let (first, second) = (ada_order(), order_placed("ada", &[("MUG", 1, 1000)]));
    deliver(&loyalty, &[eventbridge_body(&first), eventbridge_body(&second)]).await;
    let cancelled = order_cancelled(&first);
    deliver(&loyalty, &[eventbridge_body(&cancelled)]).await;
    assert!(deliver(&loyalty, &[eventbridge_body(&cancelled)]).await.is_empty());
    assert_eq!(loyalty.ledger.balance("ada"), 10, "the other order's credit stands");
    assert_eq!(loyalty.ledger.entries().iter().map(|e| e.order_id).collect::<Vec<_>>(), vec![second.order_id]);
}

#[tokio::test]
async fn both_orders_of_arrival_end_with_the_same_balance_and_entries() {
    let (in_order, reversed) = (given_loyalty(), given_loyalty());
    let placed = ada_order();
    let (p, c) = (eventbridge_body(&placed), eventbridge_body(&order_cancelled(&placed)));
    deliver(&in_order, &[p.clone(), c.clone()]).await;
    deliver(&reversed, &[c, p]).await;
    assert_eq!(in_order.ledger.balance("ada"), reversed.ledger.balance("ada"));
    assert_eq!(in_order.ledger.entries(), reversed.ledger.entries());
}

#[tokio::test]
async fn an_order_and_its_cancellation_delivered_at_once_converge() {
    let loyalty = given_loyalty();
    let placed = ada_order();
    let (p, c) = (eventbridge_body(&placed), eventbridge_body(&order_cancelled(&placed)));
    let (p, c) = ([p], [c]);
    let (a, b) = futures::join!(deliver(&loyalty, &p), deliver(&loyalty, &c));
    assert!(a.is_empty() && b.is_empty(), "the loser of the race is retried in place");
    assert_eq!(loyalty.ledger.balance("ada"), 0);
    assert!(loyalty.ledger.entries().is_empty());
}

#[tokio::test]
async fn a_reversal_the_balance_cannot_cover_is_refused_and_dead_lettered() {
    // The ledger and the records disagree (the balance lost the points some other way).
    let ledger = MemoryLedger::default();
    let credit = Credit { customer_id: "ada".into(), order_id: OrderId::new(), points: 45 };
    let record = OrderRecord::empty("loyalty", credit.order_id);
    let delivery =
        shared::consumer::Delivery { message_id: "m".into(), receive_count: 1, now_ms: NOW, deadline_ms: NOW };
    let refused = ledger.apply(&record.applying(Stage::Cancelled, &delivery), &Change::Reverse(credit)).await;
    assert_eq!(refused, Err(LedgerError::Overdrawn { customer: "ada".into(), points: 45 }));
    assert_eq!(ledger.balance("ada"), 0);
    assert_eq!(ConsumerError::from(refused.unwrap_err()).kind(), ErrorKind::Permanent);
    assert!(!ledger.order_record("loyalty", record.order_id).applied.contains(Stage::Cancelled), "nothing written");
}

// ---- What each event does, given what came before (pure). ----

#[test]
fn placed_credits_the_orders_points() {
    let placed = ada_order();
    let change = change_for(&received_as(&placed), Stages::NONE);
    assert_eq!(change, Change::Credit(Credit { customer_id: "ada".into(), order_id: placed.order_id, points: 45 }));
}

#[test]
fn a_cancellation_reverses_the_credit_only_when_placed_was_applied_before_it() {
    let placed = ada_order();
    let cancelled: Envelope<LoyaltyEvents> = received_as(&order_cancelled(&placed));
    let credit = Credit { customer_id: "ada".into(), order_id: placed.order_id, points: 45 };
    assert_eq!(change_for(&cancelled, [Stage::Placed].into_iter().collect()), Change::Reverse(credit));
    assert_eq!(change_for(&cancelled, Stages::NONE), Change::Nothing);
}

// ---- The samples. ----

#[tokio::test]
async fn the_sample_events_are_processed_without_failures_in_either_order() {
    for files in [
        ["loyalty-order-placed.json", "loyalty-order-cancelled.json"],
        ["loyalty-order-cancelled.json", "loyalty-order-placed.json"],
    ] {
        let loyalty = given_loyalty();
        for file in files {
            let batch = sample_batch(file);
            assert!(!batch.records.is_empty());
            assert!(
                failed_ids(&handle_batch(&loyalty.consumer, &loyalty.dlq, &batch, NOW, NOW + 10_000).await).is_empty()
            );
        }
        assert!(loyalty.dlq.sent().is_empty(), "{files:?}");
        assert!(loyalty.ledger.entries().iter().all(|e| e.points >= 0));
    }
}

#[test]
fn the_rule_names_exactly_the_events_loyalty_accepts() {
    let types: Vec<&str> = <LoyaltyEvents as shared::events::Accepts>::ACCEPTED.iter().map(|(_, t, _)| *t).collect();
    assert_eq!(types, ["order.placed", "order.cancelled"]);
}
