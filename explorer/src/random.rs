//! Random schedules on top of the enumeration: a few attempts, sweeps and relay passes, each
//! with a fault or not, some attempts interleaved, at jumps of time that cross leases and the
//! sweeper's grace period. Generated (and shrunk) by proptest in `tests/random.rs`; a failing
//! schedule is printed whole and its seed kept, so it replays.

use crate::checkout_world::{is_final, Ran, Scenario, World, ATTEMPT_MS, T0_MS};
use crate::schedule::{interleave, Report};
use shared::faults::{Fault, Faults};
use shared::ports::ErrorKind;
use std::sync::Arc;

/// A fault at one call, by index into [`FAULTS`].
#[derive(Debug, Clone, Copy)]
pub struct At {
    pub call: usize,
    pub fault: usize,
}

pub const FAULTS: [Fault; 6] = [
    Fault::FailBefore(ErrorKind::Transient),
    Fault::FailBefore(ErrorKind::Conflict),
    Fault::FailAfter,
    Fault::CrashAfter,
    Fault::Refused,
    Fault::FailAfter,
];

#[derive(Debug, Clone)]
pub enum Step {
    /// Time passes: 1 ms, past a lease, or past the sweeper's grace period.
    Wait(u8),
    Attempt(Option<At>),
    /// Two attempts with the same key, held before calls `a` and `b` and interleaved.
    Interleaved {
        a: usize,
        b: usize,
    },
    Sweep(Option<At>),
    Relay(Option<At>),
}

fn faults(at: Option<At>) -> Arc<Faults> {
    match at {
        Some(At { call, fault }) => Faults::new().plan(call, FAULTS[fault % FAULTS.len()]),
        None => Faults::new(),
    }
}

/// Runs `steps` for `scenario`, then lets the world recover (the client retries once more,
/// the relay and the sweeper run long after) and checks every invariant.
pub async fn run(scenario: &Scenario, steps: &[Step], report: &mut Report) {
    let world = World::default();
    let mut now = T0_MS;
    let mut answers: Vec<Ran> = Vec::new();
    for step in steps {
        match step {
            Step::Wait(n) => {
                now += match n % 3 {
                    0 => 1,
                    1 => 2 * ATTEMPT_MS,
                    _ => 600_000,
                }
            }
            Step::Attempt(at) => answers.push(world.attempt(&faults(*at), &scenario.body, now).await),
            Step::Interleaved { a, b } => {
                let (fa, fb) = (Faults::new().pause_before(*a), Faults::new().pause_before(*b));
                let first = world.attempt(&fa, &scenario.body, now);
                let second = world.attempt(&fb, &scenario.body, now + 2 * ATTEMPT_MS);
                let (ra, rb) = interleave(first, &fa, second, &fb).await;
                answers.extend([ra, rb]);
            }
            Step::Sweep(at) => drop(world.sweep(&faults(*at), now).await),
            Step::Relay(at) => drop(world.relay_with(&faults(*at)).await),
        }
    }
    // Recovery: a last retry if the client has no final answer yet, then the background.
    if !answers.iter().any(|r| r.reply().is_some_and(is_final)) {
        answers.push(world.attempt(&Faults::new(), &scenario.body, now + 2 * ATTEMPT_MS).await);
    }
    let later = now + 3_600_000;
    world.relay().await;
    world.sweep(&Faults::new(), later).await;
    world.relay().await;
    let checked = world.check(&answers).await;
    report.record(&format!("{} / {steps:?}", scenario.name), checked);
}
