//! The projector, specified: an event is applied only as the next version of its order's view;
//! old and duplicate ones are skipped, a gap is filled from the event store, and a batch answers
//! with the first record Lambda must deliver again.

mod common;

use common::*;
use order_views::memory::MemoryViews;
use order_views::projector::{handle, handle_at, Outcome, ProjectError, Projector};
use order_views::record::insert_record;

use shared::adapters::dynamodb::{n, s};
use shared::adapters::memory::MemoryShop;
use shared::domain::{OrderId, OrderStatus, Recorded};
use shared::ports::{ErrorKind, Kind};

fn projector() -> Projector<MemoryViews, MemoryShop> {
    Projector { views: MemoryViews::default(), events: MemoryShop::default() }
}

/// A delivered order's four events, committed to the projector's event store.
async fn given_delivered(p: &Projector<MemoryViews, MemoryShop>) -> (OrderId, Vec<Recorded>) {
    let history = recorded(events(Life::Delivered, "ada", 2500, start()));
    (given_order(&p.events, &history).await, history)
}

#[tokio::test]
async fn given_no_view_when_the_first_event_arrives_then_the_view_is_the_opened_order() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;

    assert_eq!(p.project(id, &history[0]).await, Ok(Outcome::Applied));

    let view = p.views.view(id).unwrap();
    assert_eq!((view.status, view.version, view.total), (OrderStatus::PendingPayment, 1, 2500));
    assert_eq!(view, fold(id, &history[..1]));
}

#[tokio::test]
async fn given_events_in_order_when_projected_then_each_is_applied_and_the_view_is_the_fold() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    let records = history.iter().enumerate().map(|(i, r)| record(id, r, &i.to_string())).collect();

    let response = handle(&p, &batch(records)).await;

    assert!(failed(&response).is_empty());
    assert_eq!(p.views.view(id), Some(fold(id, &history)));
    assert_eq!(p.views.view(id).unwrap().status, OrderStatus::Delivered);
}

#[tokio::test]
async fn given_a_view_at_version_three_when_version_two_arrives_again_then_it_is_skipped_unchanged() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    p.views.insert(fold(id, &history[..3]));
    let puts = p.views.puts();

    assert_eq!(p.project(id, &history[1]).await, Ok(Outcome::SkippedOld));

    assert_eq!(p.views.view(id), Some(fold(id, &history[..3])));
    assert_eq!(p.views.puts(), puts, "an old event writes nothing");
}

#[tokio::test]
async fn given_an_applied_event_when_it_is_delivered_again_then_the_duplicate_is_skipped() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    assert_eq!(p.project(id, &history[0]).await, Ok(Outcome::Applied));

    assert_eq!(p.project(id, &history[0]).await, Ok(Outcome::SkippedOld));

    assert_eq!(p.views.view(id), Some(fold(id, &history[..1])));
}

#[tokio::test]
async fn given_a_view_at_version_one_when_version_four_arrives_then_the_missing_events_are_caught_up() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    p.views.insert(fold(id, &history[..1]));

    assert_eq!(p.project(id, &history[3]).await, Ok(Outcome::CaughtUp { from: 2, to: 4 }));

    assert_eq!(p.views.view(id), Some(fold(id, &history)));
}

#[tokio::test]
async fn given_no_view_when_a_later_event_arrives_first_then_the_order_is_caught_up_to_it_and_no_further() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;

    assert_eq!(p.project(id, &history[2]).await, Ok(Outcome::CaughtUp { from: 1, to: 3 }));

    assert_eq!(p.views.view(id), Some(fold(id, &history[..3])), "up to the event that arrived, not beyond");
}

#[tokio::test]
async fn given_marker_items_and_modify_or_remove_records_when_projected_then_they_are_ignored() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    let mut marker = order_views::record::event_item(id, &history[0]);
    marker.insert("version".into(), n(0));
    marker.insert("openShard".into(), s("OPEN#1"));
    let mut modify = record(id, &history[0], "2");
    modify.event_name = "MODIFY".into();
    let mut remove = record(id, &history[0], "3");
    remove.event_name = "REMOVE".into();

    let response = handle(&p, &batch(vec![insert_record(&marker, "1"), modify, remove])).await;

    assert!(failed(&response).is_empty());
    assert_eq!(p.views.view(id), None);
    assert_eq!(p.views.puts(), 0);
}

#[tokio::test]
async fn given_a_corrupt_record_when_projected_then_it_is_reported_failed_and_nothing_after_it_is_attempted() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    let mut corrupt = order_views::record::event_item(id, &history[1]);
    corrupt.insert("event".into(), s("{\"type\":\"teleported\"}"));
    let records = vec![record(id, &history[0], "10"), insert_record(&corrupt, "11"), record(id, &history[2], "12")];

    let response = handle(&p, &batch(records)).await;

    assert_eq!(failed(&response), vec!["11"]);
    assert_eq!(p.views.view(id), Some(fold(id, &history[..1])), "the record before it is applied");
}

#[tokio::test]
async fn given_the_views_table_fails_when_a_batch_is_projected_then_lambda_redelivers_from_that_record_and_converges() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    let records: Vec<_> = history.iter().enumerate().map(|(i, r)| record(id, r, &format!("{}", 20 + i))).collect();
    assert!(failed(&handle(&p, &batch(records[..1].to_vec())).await).is_empty());
    p.views.fail_next_reads(1);

    let response = handle(&p, &batch(records[1..].to_vec())).await;
    assert_eq!(failed(&response), vec!["21"]);

    // Lambda delivers again from the failed record.
    let response = handle(&p, &batch(records[1..].to_vec())).await;
    assert!(failed(&response).is_empty());
    assert_eq!(p.views.view(id), Some(fold(id, &history)));
}

#[tokio::test]
async fn given_another_writer_moves_the_view_during_a_write_when_projecting_then_it_reads_again_and_decides_again() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    p.views.insert(fold(id, &history[..1]));
    // Another projector applies version 2 between our read and our write.
    p.views.interfere_with_next_put(fold(id, &history[..2]));

    assert_eq!(p.project(id, &history[1]).await, Ok(Outcome::SkippedOld), "version 2 is now old");
    assert_eq!(p.project(id, &history[2]).await, Ok(Outcome::Applied));

    assert_eq!(p.views.view(id), Some(fold(id, &history[..3])));
}

#[tokio::test]
async fn given_a_view_that_keeps_moving_when_projecting_then_it_gives_up_with_a_conflict_for_lambda_to_retry() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    p.views.insert(fold(id, &history[..1]));
    // Contrived: the view flips between versions 1 and 2 under every write.
    for i in 0..order_views::projector::MAX_ATTEMPTS {
        p.views.interfere_with_next_put(fold(id, &history[..(1 + (i as usize + 1) % 2)]));
    }

    let result = p.project(id, &history[3]).await;

    assert_eq!(result, Err(ProjectError::Contended));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Conflict);
}

#[tokio::test]
async fn given_an_event_store_without_the_missing_versions_when_a_gap_arrives_then_it_fails_permanently() {
    let p = projector();
    let history = recorded(events(Life::Delivered, "ada", 2500, start()));
    let id = OrderId::new();

    let result = p.project(id, &history[2]).await;

    assert_eq!(result, Err(ProjectError::HistoryIncomplete { from: 1, to: 3 }));
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Permanent);
    assert_eq!(p.views.view(id), None);
}

#[tokio::test]
async fn given_an_event_that_cannot_follow_the_views_state_when_projected_then_it_fails_permanently() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    p.views.insert(fold(id, &history[..1]));
    let shipped_unpaid = Recorded { version: 2, event: history[2].event.clone(), correlation_id: String::new() };

    let result = p.project(id, &shipped_unpaid).await;

    assert!(matches!(result, Err(ProjectError::Fold { version: 2, .. })), "{result:?}");
    assert_eq!(result.unwrap_err().kind(), ErrorKind::Permanent);
    assert_eq!(p.views.view(id), Some(fold(id, &history[..1])));
}

#[tokio::test]
async fn given_a_declined_checkout_when_projected_then_the_view_is_cancelled() {
    let p = projector();
    let history = recorded(events(Life::Declined, "bob", 900, start()));
    let id = given_order(&p.events, &history).await;

    let response = handle(&p, &batch(vec![record(id, &history[1], "1"), record(id, &history[0], "2")])).await;

    assert!(failed(&response).is_empty());
    let view = p.views.view(id).unwrap();
    assert_eq!((view.status, view.version), (OrderStatus::Cancelled, 2));
    assert!(matches!(view.state.cancel_reason, Some(shared::domain::CancelReason::PaymentDeclined { .. })));
}

#[tokio::test]
async fn the_sample_stream_batch_is_projected() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/order-projector-stream.json");
    let sample = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read sample {path}: {e}"));
    let event: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_str(&sample).expect("the sample is a DynamoDB stream event");
    let p = projector();

    let response = handle(&p, &event).await;

    assert!(failed(&response).is_empty(), "{response:?}");
    let views = p.views.views();
    assert_eq!(views.len(), 1);
    assert!(views.values().all(|v| v.status == OrderStatus::Placed && v.version == 2), "{views:?}");
}

// ---------------------------------------------------------------------------------------------
// Metrics: one line per batch, in the names every consumer's batch has
// ---------------------------------------------------------------------------------------------

fn of_the_projector(lines: &[String], name: &str) -> f64 {
    shared::telemetry::sum(lines, name, &[("service", "order-projector")])
}

fn ages(lines: &[String]) -> Vec<f64> {
    lines
        .iter()
        .flat_map(|l| shared::telemetry::datapoints(l))
        .filter(|p| p.name == "EventAgeMilliseconds")
        .flat_map(|p| p.values)
        .collect()
}

#[tokio::test]
async fn given_a_batch_with_a_duplicate_a_gap_a_marker_and_a_corrupt_record_then_one_line_counts_each() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    let mut marker = order_views::record::event_item(id, &history[0]);
    marker.insert("version".into(), n(0));
    let mut corrupt = order_views::record::event_item(id, &history[1]);
    corrupt.insert("event".into(), s("{\"type\":\"teleported\"}"));
    let records = vec![
        record(id, &history[0], "1"),
        record(id, &history[0], "2"),
        insert_record(&marker, "3"),
        record(id, &history[3], "4"),
        insert_record(&corrupt, "5"),
        record(id, &history[1], "6"),
    ];
    let ten_minutes_in = start() + chrono::Duration::minutes(10);

    let (response, lines) = shared::telemetry::capture(handle_at(&p, &batch(records), ten_minutes_in)).await;

    assert_eq!(failed(&response), vec!["5"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let counts: Vec<f64> = ["EventsProcessed", "EventsDuplicate", "EventsPoison", "EventsFailed", "ViewsCaughtUp"]
        .iter()
        .map(|name| of_the_projector(&lines, name))
        .collect();
    assert_eq!(counts, vec![2.0, 1.0, 1.0, 0.0, 1.0], "applied and caught up are processed; the rest waits");
    assert_eq!(ages(&lines), vec![600_000.0, 600_000.0, 420_000.0], "now minus each order event's time");
}

#[tokio::test]
async fn given_the_views_table_fails_then_the_failure_counts_under_its_error_kind() {
    let p = projector();
    let (id, history) = given_delivered(&p).await;
    p.views.fail_next_reads(1);

    let records = vec![record(id, &history[0], "1"), record(id, &history[1], "2")];
    let (response, lines) = shared::telemetry::capture(handle(&p, &batch(records))).await;

    assert_eq!(failed(&response), vec!["1"]);
    let transient = [("service", "order-projector"), ("errorKind", "transient")];
    assert_eq!(shared::telemetry::sum(&lines, "EventsFailed", &transient), 1.0);
    assert_eq!(of_the_projector(&lines, "EventsFailed"), 1.0);
    assert_eq!(of_the_projector(&lines, "EventsProcessed"), 0.0, "the record after it is not attempted");
    assert_eq!(ages(&lines).len(), 1);
}
