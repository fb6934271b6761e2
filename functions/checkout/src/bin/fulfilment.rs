//! The staff's Lambda: `POST /orders/{id}/shipments` and `POST /orders/{id}/delivery`.

use shared::config::{self, Env};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    // Clients are built once per sandbox, outside the handler: that is most of a cold start.
    let fulfilment = Arc::new(checkout::Fulfilment::from_env(&Env::from_process(), &config::aws().await)?);
    lambda_http::run(lambda_http::service_fn(move |req| {
        let fulfilment = fulfilment.clone();
        async move { checkout::http::handle_staff(&fulfilment, req).await }
    }))
    .await
}
