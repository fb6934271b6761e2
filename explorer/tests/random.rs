//! Random schedules on top of the enumeration (proptest): a failure is shrunk to a minimal
//! schedule, printed with the scenario, and its seed is kept in `random.proptest-regressions`, so the
//! next run replays it first. `PROPTEST_CASES` raises the count (`make explore` does).

use explorer::random::{run, At, Step};
use explorer::{schedule::Report, Scenario};
use proptest::prelude::*;

fn at() -> impl Strategy<Value = Option<At>> {
    proptest::option::of((0usize..12, 0usize..6).prop_map(|(call, fault)| At { call, fault }))
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<u8>().prop_map(Step::Wait),
        at().prop_map(Step::Attempt),
        (0usize..12, 0usize..14).prop_map(|(a, b)| Step::Interleaved { a, b }),
        at().prop_map(Step::Sweep),
        at().prop_map(Step::Relay),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_schedules_keep_every_invariant(scenario in 0usize..5, steps in proptest::collection::vec(step(), 1..8)) {
        let scenario = &Scenario::all()[scenario];
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        let mut report = Report::default();
        runtime.block_on(run(scenario, &steps, &mut report));
        prop_assert!(report.violations.is_empty(), "{}\n{}", report.line(), report.violations.join("\n"));
    }
}
