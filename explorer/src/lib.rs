//! The fault-space explorer, in the spirit of deterministic simulation testing: instead of a
//! few hand-picked fault paths, it records every port call of a clean checkout and re-runs
//! the checkout once per (call, fault) — fail before, fail after the effect (a lost answer),
//! crash after the effect, a transaction conflict — and once per pair of points at which two
//! attempts with the same key, or an attempt and the recovery sweeper, are interleaved. After
//! each run it recovers as production does (the client retries with the same key, the outbox
//! relay runs, the sweeper runs) and checks the invariants of the whole world ([`World::check`]).
//!
//! Everything runs against the in-memory fakes, which keep the AWS adapters' semantics, on a
//! paused tokio clock, so a schedule is cheap and replays exactly.

pub mod arrival;
pub mod checkout_world;
pub mod consumers;
pub mod random;
pub mod schedule;

pub use checkout_world::{Scenario, World};
pub use schedule::{explore_checkout, Report};
