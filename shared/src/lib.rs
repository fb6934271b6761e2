//! Everything the functions share: the domain, the event catalogue, the ports (narrow traits
//! the domain needs) and the adapters that implement them, on AWS and in memory.
//!
//! Dependency direction: `domain` and `events` know nothing of I/O; `ports` names what the
//! domain needs from the outside; `adapters` implement `ports`. Handlers live in the function
//! crates and only glue these together.

pub mod adapters;
pub mod auth;
pub mod config;
pub mod consumer;
pub mod deadline;
pub mod domain;
pub mod events;
pub mod faults;
pub mod http;
pub mod out_of_order;
pub mod ports;
pub mod publishing;
pub mod retry;
pub mod telemetry;
pub mod testing;
