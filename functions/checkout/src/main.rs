use checkout::{Checkout, Ports};
use shared::adapters::dynamodb::{DynamoIdempotency, DynamoOutbox, DynamoShop};
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::adapters::sandbox_payments::SandboxGateway;
use shared::config;
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    // Clients are built once per sandbox, outside the handler: that is most of a cold start.
    let aws = config::aws().await;
    let dynamodb = config::dynamodb(&aws);
    let tables = config::shop_tables()?;
    let outbox = Arc::new(DynamoOutbox::new(dynamodb.clone(), tables.outbox.clone()));
    let shop = Arc::new(DynamoShop::new(dynamodb.clone(), tables));
    let checkout = Arc::new(Checkout::new(Ports {
        catalogue: shop.clone(),
        orders: shop,
        outbox,
        publisher: Arc::new(EventBridgePublisher::new(config::eventbridge(&aws), config::env("EVENT_BUS_NAME")?)),
        payments: Arc::new(SandboxGateway::default()),
        idempotency: Arc::new(DynamoIdempotency::new(dynamodb, config::env("IDEMPOTENCY_TABLE")?)),
    }));
    lambda_http::run(lambda_http::service_fn(move |req| {
        let checkout = checkout.clone();
        async move { checkout::http::handle(&checkout, req).await }
    }))
    .await
}
