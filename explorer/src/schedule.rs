//! The schedules: which fault or interleaving each run gets, and how the world recovers.

use crate::checkout_world::{is_final, normalised, Ran, Scenario, World, ATTEMPT_MS, T0_MS};
pub use shared::faults::interleave;
use shared::faults::{Fault, Faults};
use std::sync::Arc;

/// When the sweeper comes by: long after every lease and the grace period.
const SWEEP_MS: i64 = T0_MS + 3_600_000;
/// A client gives up after this many retries.
const RETRIES: i64 = 6;

/// How far to explore.
#[derive(Debug, Clone, Copy)]
pub struct Depth {
    /// Also inject a second fault into the client's first retry (every pair of faults).
    pub fault_pairs: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub schedules: usize,
    pub checks: usize,
    pub violations: Vec<String>,
}

impl Report {
    pub fn record(&mut self, schedule: &str, checked: crate::checkout_world::Checked) {
        self.schedules += 1;
        self.checks += checked.checks;
        self.violations.extend(checked.violations.into_iter().map(|v| format!("{schedule}: {v}")));
    }

    pub fn line(&self) -> String {
        format!(
            "fault-space explorer: {} schedules explored, {} invariants checked, {} violations",
            self.schedules,
            self.checks,
            self.violations.len()
        )
    }
}

/// How production recovers after the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// The client retries with the same key until it has a final answer.
    ClientRetries,
    /// The client never comes back: only the relay and the sweeper act.
    ClientGivesUp,
}

/// Retries with the same key, at once and then after each lease lapsed, until an answer is
/// final; `first_retry` holds the faults of the first retry.
async fn retry_until_final(
    world: &World,
    scenario: &Scenario,
    from_ms: i64,
    first_retry: Arc<Faults>,
    answers: &mut Vec<Ran>,
) {
    let mut faults = first_retry;
    for n in 0..RETRIES {
        let now = from_ms + 1 + n * 2 * ATTEMPT_MS;
        let ran = world.attempt(&faults, &scenario.body, now).await;
        faults = Faults::new();
        let done = ran.reply().is_some_and(is_final);
        answers.push(ran);
        if done {
            return;
        }
    }
}

/// The relay, the sweeper at `sweep_ms`, and the relay again (the sweeper may place orders).
async fn background(world: &World, sweep_ms: i64) {
    world.relay().await;
    world.sweep(&Faults::new(), sweep_ms).await;
    world.relay().await;
}

/// What the client gets without any fault: the first answer, and the final one after retries.
struct Baseline {
    first_status: u16,
    last: (u16, serde_json::Value),
}

async fn baseline(scenario: &Scenario) -> Baseline {
    let world = World::default();
    let mut answers = vec![world.attempt(&Faults::new(), &scenario.body, T0_MS).await];
    if !answers[0].reply().is_some_and(is_final) {
        retry_until_final(&world, scenario, T0_MS, Faults::new(), &mut answers).await;
    }
    let first_status = answers[0].reply().map_or(0, |r| r.status);
    let last = answers.iter().rev().find_map(Ran::reply).expect("the clean run answers");
    Baseline { first_status, last: normalised(last) }
}

/// The calls a fault-free attempt (with `prepare` applied to the world first) makes.
async fn calls_of_clean_attempt(scenario: &Scenario) -> Vec<&'static str> {
    let world = World::default();
    let faults = Faults::new();
    world.attempt(&faults, &scenario.body, T0_MS).await;
    faults.calls()
}

/// Every single fault at every call of the first attempt, with both recoveries; with
/// `depth.fault_pairs`, also every fault at every call of the client's first retry.
async fn single_faults(scenario: &Scenario, depth: Depth, report: &mut Report) {
    let expected = baseline(scenario).await;
    let calls = calls_of_clean_attempt(scenario).await;
    for (i, call) in calls.iter().enumerate() {
        for fault in Fault::at(call) {
            for recovery in [Recovery::ClientRetries, Recovery::ClientGivesUp] {
                let name = format!("{} / {fault:?} at call {i} ({call}) / {recovery:?}", scenario.name);
                run_single(scenario, &name, Faults::new().plan(i, fault), Faults::new(), recovery, &expected, report)
                    .await;
                if depth.fault_pairs && recovery == Recovery::ClientRetries {
                    second_faults(scenario, &name, i, fault, &expected, report).await;
                }
            }
        }
    }
}

/// Every fault in the client's first retry, after `fault` at call `i` of the first attempt.
async fn second_faults(
    scenario: &Scenario,
    name: &str,
    i: usize,
    fault: Fault,
    expected: &Baseline,
    report: &mut Report,
) {
    // The retry's calls, as it makes them after this first fault.
    let world = World::default();
    world.attempt(&Faults::new().plan(i, fault), &scenario.body, T0_MS).await;
    let retry = Faults::new();
    world.attempt(&retry, &scenario.body, T0_MS + 1).await;
    for (j, call) in retry.calls().iter().enumerate() {
        for second in Fault::at(call) {
            let name = format!("{name} + {second:?} at retry call {j} ({call})");
            let (first, retry) = (Faults::new().plan(i, fault), Faults::new().plan(j, second));
            run_single(scenario, &name, first, retry, Recovery::ClientRetries, expected, report).await;
        }
    }
}

async fn run_single(
    scenario: &Scenario,
    name: &str,
    first: Arc<Faults>,
    first_retry: Arc<Faults>,
    recovery: Recovery,
    expected: &Baseline,
    report: &mut Report,
) {
    let world = World::default();
    let mut answers = vec![world.attempt(&first, &scenario.body, T0_MS).await];
    let mut checked = crate::checkout_world::Checked::default();
    // A fault the function can cure itself (a conflict) never reaches the client as a 5xx.
    let planned: Vec<Fault> = (0..first.calls().len()).filter_map(|n| first.planned(n)).collect();
    if !planned.is_empty() && planned.iter().all(Fault::is_conflict) {
        let clean = expected.first_status >= 500;
        checked
            .expect(clean || answers[0].reply().is_some_and(|r| r.status < 500), || "a conflict answered 5xx".into());
    }
    match recovery {
        Recovery::ClientRetries => {
            if !answers[0].reply().is_some_and(is_final) {
                retry_until_final(&world, scenario, T0_MS, first_retry, &mut answers).await;
            }
            let last = answers.iter().rev().find_map(Ran::reply).map(normalised);
            checked.expect(last.as_ref() == Some(&expected.last), || {
                format!("the client's final answer {last:?} differs from the clean run's {:?}", expected.last)
            });
            background(&world, SWEEP_MS).await;
        }
        Recovery::ClientGivesUp => {
            background(&world, SWEEP_MS).await;
            // A client that comes back much later is told what became of its order (or, if
            // the first attempt never opened one, starts it; the sweeper comes by again).
            answers.push(world.attempt(&Faults::new(), &scenario.body, SWEEP_MS + 1).await);
            background(&world, 2 * SWEEP_MS).await;
        }
    }
    let world_checked = world.check(&answers).await;
    checked.checks += world_checked.checks;
    checked.violations.extend(world_checked.violations);
    report.record(name, checked);
}

/// Two attempts with the same key, the second after the first's lease lapsed, interleaved
/// at every pair of points: the first held before its call `i`, the second before its `j`.
async fn paired_attempts(scenario: &Scenario, report: &mut Report) {
    let expected = baseline(scenario).await;
    let calls = calls_of_clean_attempt(scenario).await;
    for i in 0..=calls.len() {
        for j in 0..=calls.len() + 4 {
            let world = World::default();
            let (fa, fb) = (Faults::new().pause_before(i), Faults::new().pause_before(j));
            let a = world.attempt(&fa, &scenario.body, T0_MS);
            let b = world.attempt(&fb, &scenario.body, T0_MS + 2 * ATTEMPT_MS);
            let (ra, rb) = interleave(a, &fa, b, &fb).await;
            let mut answers = vec![ra, rb];
            if !answers.iter().any(|r| r.reply().is_some_and(is_final)) {
                retry_until_final(&world, scenario, T0_MS + 2 * ATTEMPT_MS, Faults::new(), &mut answers).await;
            }
            background(&world, SWEEP_MS).await;
            let mut checked = world.check(&answers).await;
            let finals: Vec<_> =
                answers.iter().filter_map(Ran::reply).filter(|r| is_final(r)).map(normalised).collect();
            checked.expect(finals.iter().all(|f| *f == expected.last), || {
                format!("final answers {finals:?} differ from the clean run's {:?}", expected.last)
            });
            report.record(&format!("{} / attempts interleaved at ({i}, {j})", scenario.name), checked);
        }
    }
}

/// The first attempt crashes after its call `i`; much later the sweeper and a late client
/// retry run interleaved at every pair of points, in both orders.
async fn sweeper_against_late_retry(scenario: &Scenario, report: &mut Report) {
    let calls = calls_of_clean_attempt(scenario).await;
    for i in 0..calls.len() {
        for j in 0..12 {
            for sweeper_first in [true, false] {
                let world = World::default();
                let mut answers =
                    vec![world.attempt(&Faults::new().plan(i, Fault::CrashAfter), &scenario.body, T0_MS).await];
                let (fs, fc) = (Faults::new(), Faults::new());
                let (sweep, retry) = (world.sweep(&fs, SWEEP_MS), world.attempt(&fc, &scenario.body, SWEEP_MS));
                let retried = if sweeper_first {
                    fs.pause_before(j);
                    interleave(sweep, &fs, retry, &fc).await.1
                } else {
                    fc.pause_before(j);
                    interleave(retry, &fc, sweep, &fs).await.0
                };
                answers.push(retried);
                background(&world, 2 * SWEEP_MS).await;
                let order = if sweeper_first { "sweeper held" } else { "retry held" };
                let checked = world.check(&answers).await;
                report.record(&format!("{} / crash at {i}, {order} at {j}", scenario.name), checked);
            }
        }
    }
}

/// The first attempt crashes after its call `i` and the client never returns; then the relay
/// and the sweeper each meet every fault at every one of their calls, and run again cleanly
/// later, as their schedules do.
async fn background_faults(scenario: &Scenario, report: &mut Report) {
    let calls = calls_of_clean_attempt(scenario).await;
    for i in 0..calls.len() {
        let crashed = || Faults::new().plan(i, Fault::CrashAfter);
        // The calls each background function makes after this crash.
        let world = World::default();
        world.attempt(&crashed(), &scenario.body, T0_MS).await;
        let (relay_calls, sweep_calls) = (Faults::new(), Faults::new());
        world.relay_with(&relay_calls).await;
        world.sweep(&sweep_calls, SWEEP_MS).await;
        let relay_calls = relay_calls.calls();
        let sweep_calls = sweep_calls.calls();
        for (who, calls) in [("relay", relay_calls), ("sweeper", sweep_calls)] {
            for (j, call) in calls.iter().enumerate() {
                for fault in Fault::at(call) {
                    let world = World::default();
                    let answers = vec![world.attempt(&crashed(), &scenario.body, T0_MS).await];
                    let faults = Faults::new().plan(j, fault);
                    match who {
                        "relay" => drop(world.relay_with(&faults).await),
                        _ => drop(world.sweep(&faults, SWEEP_MS).await),
                    }
                    background(&world, 2 * SWEEP_MS).await;
                    let checked = world.check(&answers).await;
                    let name = format!("{} / crash at {i}, {who} {fault:?} at its call {j} ({call})", scenario.name);
                    report.record(&name, checked);
                }
            }
        }
    }
}

/// Every schedule of the checkout, the relay and the sweeper, for every scenario.
pub async fn explore_checkout(depth: Depth) -> Report {
    let mut report = Report::default();
    for scenario in Scenario::all() {
        single_faults(&scenario, depth, &mut report).await;
        paired_attempts(&scenario, &mut report).await;
        sweeper_against_late_retry(&scenario, &mut report).await;
        background_faults(&scenario, &mut report).await;
    }
    report
}
