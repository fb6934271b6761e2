//! What the emulator tests share: every event the local stack delivers to a consumer is checked
//! against its committed contract (`schemas/events/`), so that an event the real code published
//! through the real bus and rules, not only one from a unit test's fake, is an instance of its
//! schema.

use local::demo::CONSUMERS;
use local::poller::Observation;
use local::system::LocalSystem;
use std::time::Duration;
use tokio::sync::broadcast::{error::TryRecvError, Receiver};

/// The consumers that handled `order_id`'s event successfully before `patience` ran out, and
/// the envelope they were delivered.
#[allow(dead_code)] // each test file compiles this module; not all of them wait on consumers
pub async fn consumers_done(
    rx: &mut Receiver<Observation>,
    order_id: &str,
    patience: Duration,
) -> (Vec<String>, Option<serde_json::Value>) {
    let (mut done, mut detail): (Vec<String>, _) = (Vec::new(), None);
    let deadline = tokio::time::Instant::now() + patience;
    while CONSUMERS.iter().any(|c| !done.iter().any(|d| d == c)) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(obs))
                if obs.order_id.as_deref() == Some(order_id)
                    && obs.succeeded
                    && CONSUMERS.contains(&obs.function.as_str()) =>
            {
                done.push(obs.function);
                detail = obs.detail;
            }
            Ok(Ok(_)) => {}
            _ => break,
        }
    }
    (done, detail)
}

/// Every bus event delivered from its start, read when checked (the system's observation
/// channel keeps 1024, far more than a test delivers; missing any fails the check).
pub struct ContractWatch(Receiver<Observation>);

/// Starts watching `system`'s deliveries.
pub fn watch(system: &LocalSystem) -> ContractWatch {
    ContractWatch(system.observations.subscribe())
}

impl ContractWatch {
    /// Panics, listing every violation, unless each event delivered so far validates against
    /// its contract; the number of events checked.
    pub fn check(mut self) -> usize {
        let (mut checked, mut failures) = (0, Vec::new());
        loop {
            match self.0.try_recv() {
                Ok(Observation {
                    source: Some(source), detail_type: Some(detail_type), detail: Some(detail), ..
                }) => {
                    checked += 1;
                    if let Err(e) = contracts::validate_event(&source, &detail_type, &detail) {
                        failures.push(e);
                    }
                }
                Ok(_) => {}
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                Err(TryRecvError::Lagged(n)) => panic!("the contract watch missed {n} deliveries"),
            }
        }
        assert!(failures.is_empty(), "events delivered that break their contract:\n{}", failures.join("\n"));
        checked
    }
}
