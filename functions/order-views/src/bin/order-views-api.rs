use order_views::api::{handle, Views};
use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let views = Views::from_env(&Env::from_process(), &config::aws().await)?;
    let views = &views;
    lambda_http::run(lambda_http::service_fn(move |req| handle(views, req))).await
}
