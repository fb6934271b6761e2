use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let (env, aws) = (Env::from_process(), config::aws().await);
    let consumer = analytics::Analytics::from_env(&env, &aws)?;
    shared::consumer::serve(consumer, &env, &aws).await
}
