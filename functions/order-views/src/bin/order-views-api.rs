use order_views::api::{handle, Views};
use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::telemetry::init();
    let env = Env::from_process();
    let views = Views::from_env(&env, &config::aws().await)?;
    let (views, access) = (&views, &shared::auth::Access::from_env(&env));
    lambda_http::run(lambda_http::service_fn(move |req| handle(views, access, req))).await
}
