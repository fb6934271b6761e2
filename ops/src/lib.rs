//! `shop-ops`, one operations CLI for a deployed stack and for the local one: the same
//! commands, every name resolved from the stack's outputs (see `target`).
//!
//! - `dlq list | show | redrive | redrive-status | purge`: the consumers' dead-letter queues;
//! - `replay`: events from the bus's archive back onto the bus, to all consumers or one;
//! - `seed`: catalogue, stock and customers from a data file;
//! - `orders show`: an order's state and history, folded from the event store;
//! - `projections rebuild`: the read model re-folded from the event store and compared.

pub mod dlq;
pub mod error;
pub mod orders;
pub mod pattern;
pub mod replay;
pub mod report;
pub mod seed;
pub mod target;
