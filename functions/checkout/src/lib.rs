//! The order API behind API Gateway (HTTP API, payload v2), in two Lambdas:
//! - `checkout`, the customer's: `POST /orders`, `GET /orders/{id}` (`?asOf=`),
//!   `GET /orders/{id}/events`, `POST /orders/{id}/cancel` ([`Checkout`]);
//! - `fulfilment`, the staff's: `POST /orders/{id}/shipments`, `POST /orders/{id}/delivery`
//!   ([`Fulfilment`]), with narrower ports (no payments, no catalogue).
//!
//! `request` and `shipment` are the contracts, `saga` the checkout's steps and compensations,
//! `commands` the order commands after it, `refund` the refund saga, `journal` how every one
//! of them appends and announces an event, `idempotency` the one Idempotency-Key handling,
//! `view` what is shown of an order, `service`/`fulfilment` the operations, `http` the glue.

pub mod commands;
pub mod fulfilment;
pub mod http;
pub mod idempotency;
pub mod journal;
pub mod problem;
pub mod refund;
pub mod reply;
pub mod request;
pub mod saga;
pub mod service;
pub mod shipment;
pub mod view;

pub use fulfilment::Fulfilment;
pub use saga::Ports;
pub use service::Checkout;

use shared::adapters::dynamodb::{DynamoIdempotency, DynamoLedger, DynamoOutbox, DynamoShop};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::config::{self, Env, MissingEnv};
use std::sync::Arc;

/// The checkout wired to AWS from its environment: the same for Lambda and the local runner.
pub fn from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Checkout, MissingEnv> {
    let idempotency = DynamoIdempotency::new(config::dynamodb(aws), env.get("IDEMPOTENCY_TABLE")?);
    let checkout = Checkout::new(ports_from_env(env, aws)?, Arc::new(idempotency));
    Ok(Checkout { access: shared::auth::Access::from_env(env), ..checkout })
}

/// The saga's ports on AWS: the checkout's, and the recovery sweeper's (the same code settles
/// an order whoever finishes it).
pub fn ports_from_env(env: &Env, aws: &aws_config::SdkConfig) -> Result<Ports, MissingEnv> {
    let dynamodb = config::dynamodb(aws);
    let tables = config::shop_tables(env)?;
    let shop = Arc::new(DynamoShop::new(dynamodb.clone(), tables.clone()));
    Ok(Ports {
        catalogue: shop.clone(),
        orders: shop,
        outbox: Arc::new(DynamoOutbox::new(dynamodb.clone(), tables.outbox)),
        publisher: Arc::new(EventBridgePublisher::new(config::eventbridge(aws), env.get("EVENT_BUS_NAME")?)),
        // The sandbox is the only gateway shipped; a real one implements `PaymentGateway`.
        // It keeps its ledger in a table every function reads, as a real gateway's API would.
        payments: Arc::new(SandboxGateway::new(DynamoLedger::new(dynamodb, env.get("SANDBOX_PAYMENTS_TABLE")?))),
    })
}
