use shared::config::{self, Env};
use std::sync::Arc;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    // Clients are built once per sandbox, outside the handler: that is most of a cold start.
    let checkout = Arc::new(checkout::from_env(&Env::from_process(), &config::aws().await)?);
    lambda_http::run(lambda_http::service_fn(move |req| {
        let checkout = checkout.clone();
        async move { checkout::http::handle(&checkout, req).await }
    }))
    .await
}
