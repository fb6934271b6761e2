//! Every fault point of the checkout, the relay and the sweeper, in `make test`: the README's
//! guarantees (never duplicated, never charged twice, never lost, stock conserved) hold on
//! every schedule, not only on the paths an example happens to walk.

use explorer::schedule::Depth;

#[tokio::test(start_paused = true)]
async fn every_fault_point_and_interleaving_of_the_checkout_keeps_every_invariant() {
    let report = explorer::explore_checkout(Depth { fault_pairs: false }).await;
    println!("{}", report.line());
    assert!(report.schedules > 0);
    assert!(report.violations.is_empty(), "{}\n{}", report.line(), report.violations.join("\n"));
}

/// The longer exploration (`make explore`): also every fault of the client's first retry after
/// every fault of the first attempt.
#[tokio::test(start_paused = true)]
#[ignore = "long: run by make explore"]
async fn every_pair_of_faults_keeps_every_invariant() {
    let report = explorer::explore_checkout(Depth { fault_pairs: true }).await;
    println!("{}", report.line());
    assert!(report.violations.is_empty(), "{}\n{}", report.line(), report.violations.join("\n"));
}
