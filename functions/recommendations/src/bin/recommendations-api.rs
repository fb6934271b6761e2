use recommendations::dynamo::DynamoBoughtWith;
use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let store = DynamoBoughtWith::from_env(&Env::from_process(), &config::aws().await)?;
    let store = &store;
    lambda_http::run(lambda_http::service_fn(move |req| recommendations::api::handle(store, req))).await
}
