//! The checkout: `POST /orders` and `GET /orders/{id}` behind API Gateway (HTTP API, payload v2).
//!
//! `request` is the contract, `saga` the steps and compensations, `service` idempotency and
//! answers, `http` the Lambda glue.

pub mod http;
pub mod problem;
pub mod request;
pub mod saga;
pub mod service;

pub use saga::Ports;
pub use service::Checkout;
