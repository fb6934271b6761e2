use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let consumer = analytics::Analytics::from_env(&Env::from_process(), &config::aws().await)?;
    shared::consumer::serve(consumer).await
}
