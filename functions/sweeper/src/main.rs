use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::config::{self, Env};
use sweeper::Sweeper;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    // Clients are built once per sandbox, outside the handler.
    let sweeper = Sweeper::from_env(&Env::from_process(), &config::aws().await)?;
    let sweeper = &sweeper;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        let deadline = shared::deadline::Deadline::of(&event.context);
        Ok::<_, Error>(sweeper.run_once(chrono::Utc::now(), &deadline).await?)
    }))
    .await
}
