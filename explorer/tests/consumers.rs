//! Every fault point of every consumer's delivery, recovered as SQS recovers, keeps each
//! consumer's effect exactly once per event ID (e-mail: at least once, at most the one
//! documented duplicate).

use explorer::consumers::explore_consumers;

#[tokio::test(start_paused = true)]
async fn every_fault_point_of_every_consumer_keeps_its_effect_exactly_once() {
    let report = explore_consumers().await;
    println!("{}", report.line());
    assert_eq!(report.consumers, 5);
    assert!(report.report.schedules > 5, "every consumer's fault points were explored");
    assert_eq!(report.dead_lettered, 0, "one fault never sends a healthy event to the DLQ");
    assert!(report.report.violations.is_empty(), "{}\n{}", report.line(), report.report.violations.join("\n"));
}
