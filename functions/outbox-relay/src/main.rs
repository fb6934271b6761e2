use lambda_runtime::{service_fn, Error, LambdaEvent};
use outbox_relay::{Deadline, Relay};
use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let relay = Relay::from_env(&Env::from_process(), &config::aws().await)?;
    let relay = &relay;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(relay.run_once(&Deadline::of(&event.context)).await?)
    }))
    .await
}
