//! Out-of-order arrival: an order's events delivered to loyalty, inventory and e-mail in every
//! order with a fault at every call (enumerated), and in random orders with duplicates,
//! concurrent deliveries and faults (proptest), end where in-order delivery ends (see
//! `explorer::arrival`). A random failure is shrunk towards in-order delivery and printed with
//! its schedule; `PROPTEST_CASES` raises the count.

use explorer::arrival::{explore, run, Converges, Step, FAULTS, LIVES};
use explorer::consumers::{EmailWorld, InventoryWorld, LoyaltyWorld};
use explorer::schedule::Report;
use proptest::prelude::*;

fn step() -> impl Strategy<Value = Step> {
    let fault = proptest::option::weighted(0.2, (0usize..8, 0..FAULTS.len()));
    (0usize..4, any::<u8>(), proptest::bool::weighted(0.3), fault).prop_map(|(event, key, with_next, fault)| Step {
        event,
        key,
        with_next,
        fault,
    })
}

fn schedule() -> impl Strategy<Value = (usize, Vec<Step>)> {
    (0..LIVES.len(), proptest::collection::vec(step(), 0..10))
}

fn check<S: Converges>(life: usize, steps: &[Step]) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
    let checked = runtime.block_on(run::<S>(life, steps));
    prop_assert!(checked.violations.is_empty(), "life {:?}:\n{}", LIVES[life], checked.violations.join("\n"));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn every_order_of_arrival_with_a_fault_at_every_call_converges() {
    let mut report = Report::default();
    explore::<LoyaltyWorld>("loyalty", &mut report).await;
    explore::<InventoryWorld>("inventory", &mut report).await;
    explore::<EmailWorld>("email", &mut report).await;
    println!("{}", report.line().replacen("fault-space explorer", "arrival explorer", 1));
    assert!(report.schedules > 100, "every order and fault point was explored: {}", report.line());
    assert!(report.violations.is_empty(), "{}\n{}", report.line(), report.violations.join("\n"));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn loyalty_ends_where_in_order_delivery_ends((life, steps) in schedule()) {
        check::<LoyaltyWorld>(life, &steps)?;
    }

    #[test]
    fn inventory_ends_where_in_order_delivery_ends((life, steps) in schedule()) {
        check::<InventoryWorld>(life, &steps)?;
    }

    #[test]
    fn email_sends_what_the_rule_allows_whatever_the_order((life, steps) in schedule()) {
        check::<EmailWorld>(life, &steps)?;
    }
}
