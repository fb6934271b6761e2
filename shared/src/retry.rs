//! Retrying what may succeed when tried again: exponential backoff with full jitter, and the
//! one rule for transaction conflicts (retry now, inside the function, never answer 5xx or
//! burn an SQS receive for one).

use crate::ports::{ErrorKind, Kind};
use std::future::Future;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// For the request path: the customer is waiting and the outbox relay is the safety net.
    pub const REQUEST_PATH: Backoff =
        Backoff { attempts: 3, base: Duration::from_millis(25), max: Duration::from_millis(200) };
    /// For the relay, which has time.
    pub const BACKGROUND: Backoff =
        Backoff { attempts: 6, base: Duration::from_millis(100), max: Duration::from_secs(5) };
    /// For transaction conflicts: the competing transaction is done within milliseconds, so
    /// retry soon; jitter spreads the losers of one race so they do not collide again. The
    /// budget (about 5 s at most) is sized by the contention benchmark: 200 orders at once for
    /// one SKU must all get an answer, never a 5xx (BENCHMARKS.md), and it stays well inside
    /// the function's timeout.
    pub const CONFLICT: Backoff =
        Backoff { attempts: 40, base: Duration::from_millis(10), max: Duration::from_millis(250) };

    /// "Full jitter": a random delay up to the exponential cap, so retries do not synchronise.
    pub fn delay(&self, retry: u32) -> Duration {
        let cap = self.base.saturating_mul(1 << retry.min(16)).min(self.max);
        let random = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), retry);
        cap.mul_f64((random % 1000) as f64 / 1000.0)
    }
}

/// Runs `op` until it succeeds, fails with anything but a conflict, or `backoff` runs out
/// (then the last conflict is returned, and its kind still says "conflict").
pub async fn on_conflict<T, E, F, Fut>(backoff: Backoff, mut op: F) -> Result<T, E>
where
    E: Kind + std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut retry = 0;
    loop {
        match op().await {
            Err(e) if e.kind() == ErrorKind::Conflict && retry + 1 < backoff.attempts => {
                retry += 1;
                tracing::info!(retry, error = %e, "transaction conflict; retrying");
                tokio::time::sleep(backoff.delay(retry)).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::StoreError;
    use std::sync::atomic::{AtomicU32, Ordering};

    const FAST: Backoff = Backoff { attempts: 4, base: Duration::from_millis(1), max: Duration::from_millis(2) };

    async fn failing(calls: &AtomicU32, conflicts: u32, then: Result<u32, StoreError>) -> Result<u32, StoreError> {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        if n < conflicts {
            return Err(StoreError::Conflict("busy".into()));
        }
        then
    }

    #[tokio::test]
    async fn a_conflict_is_retried_until_the_write_goes_through() {
        let calls = AtomicU32::new(0);
        assert_eq!(on_conflict(FAST, || failing(&calls, 2, Ok(7))).await, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn other_failures_are_not_retried_here() {
        let calls = AtomicU32::new(0);
        let unavailable = Err(StoreError::Unavailable("down".into()));
        assert_eq!(on_conflict(FAST, || failing(&calls, 0, unavailable.clone())).await, unavailable);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn endless_conflicts_give_up_after_the_budget_and_still_say_conflict() {
        let calls = AtomicU32::new(0);
        let result = on_conflict(FAST, || failing(&calls, u32::MAX, Ok(0))).await;
        assert_eq!(result.map_err(|e| e.kind()), Err(ErrorKind::Conflict));
        assert_eq!(calls.load(Ordering::SeqCst), FAST.attempts);
    }
}
