//! Implementations of the ports: one module per AWS service, the in-memory fakes used by unit
//! tests and benchmarks, and the sandbox payment gateway.

pub mod dynamodb;
pub mod eventbridge;
pub mod memory;
pub mod memory_dlq;
pub mod memory_records;
pub mod sandbox_payments;
pub mod sqs;
