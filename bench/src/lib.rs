//! Bench fixtures and the pure parts of the benchmarks (BENCHMARKS.md), kept here so that they
//! are unit-tested: a stub of the Lambda Runtime API for the cold-start proxy, percentiles, and
//! the cost model. The orchestration lives in `benches/shop-bench`, the criterion benches in
//! `benches/handlers.rs`, the hello-world baseline in `src/bin/hello-world.rs`.
//!
//! Nothing here asserts a timing: performance is what the bench command reports, never a
//! pass/fail condition of a test.

pub mod cost;
pub mod runtime_stub;
pub mod stats;
