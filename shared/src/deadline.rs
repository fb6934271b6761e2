//! When an invocation must be finished by, read against a clock (the system's; tests pass their
//! own to make time pass without sleeping). Scheduled functions that work through a backlog (the
//! outbox relay, the recovery sweeper) stop starting new work when too little of it is left.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[derive(Clone)]
pub struct Deadline {
    at: SystemTime,
    clock: Arc<dyn Fn() -> SystemTime + Send + Sync>,
}

impl Deadline {
    pub fn at(at: SystemTime) -> Deadline {
        Deadline { at, clock: Arc::new(SystemTime::now) }
    }

    /// The deadline Lambda gives this invocation.
    pub fn of(context: &lambda_runtime::Context) -> Deadline {
        Deadline::at(context.deadline())
    }

    pub fn with_clock(at: SystemTime, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Deadline {
        Deadline { at, clock: Arc::new(clock) }
    }

    /// Zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.duration_since((self.clock)()).unwrap_or(Duration::ZERO)
    }
}
