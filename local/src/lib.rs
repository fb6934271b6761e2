//! The local twin of `template.yaml`.
//!
//! moto (the AWS emulator) hosts what it can: tables, the bus and its rules, queues with their
//! redrive policies. moto cannot run Lambda functions, so this crate plays the parts of AWS
//! that invoke them, with AWS's semantics:
//! - `api`: API Gateway HTTP API, payload format 2.0, for the template's routes, behind
//!   `authorizer`, its JWT authorizer;
//! - `oidc`: the OpenID Connect issuer the stack trusts locally (as it trusts Cognito when
//!   deployed), whose tokens the demo, the tests and `make dev` send;
//! - `poller`: Lambda's SQS event source (long poll, batch size and window, partial batch
//!   responses, failures left to reappear after the visibility timeout);
//! - `schedule`: EventBridge schedules (`rate(...)`);
//! - `stream`: Lambda's DynamoDB Streams event source (per-shard order, batches, partial batch
//!   responses, retries, bisect on error, the on-failure destination).
//!
//! The runner also serves a live dashboard page on 127.0.0.1 (`dashboard`): the functions'
//! metrics read from their EMF lines as CloudWatch reads them (`metrics`), the last requests and
//! deliveries (`flow`), and the emulator's queues and dead-letter queues with redrive (read and
//! moved by `ops::dlq`, the same functions `shop-ops dlq` runs on).
//!
//! Functions run from the same code and environment as in AWS: in this process (`functions`)
//! or under `cargo lambda watch`, reached through the Lambda Invoke API (`invoke`).

pub mod api;
pub mod authorizer;
pub mod dashboard;
pub mod demo;
pub mod flow;
pub mod functions;
pub mod invoke;
pub mod lifecycle_demo;
pub mod metrics;
pub mod oidc;
pub mod poller;
pub mod probe;
pub mod schedule;
pub mod stream;
pub mod system;
