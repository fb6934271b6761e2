use aws_lambda_events::event::dynamodb::Event;
use lambda_runtime::{service_fn, LambdaEvent};
use order_views::projector::{handle, Projector};
use shared::config::{self, Env};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init();
    let projector = Projector::from_env(&Env::from_process(), &config::aws().await)?;
    let projector = &projector;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Event>| async move {
        Ok::<_, lambda_runtime::Error>(handle(projector, &event.payload).await)
    }))
    .await
}
