use lambda_runtime::{service_fn, Error, LambdaEvent};
use shared::adapters::dynamodb::DynamoOutbox;
use shared::adapters::eventbridge::EventBridgePublisher;
use shared::config;
use shared::publishing::Backoff;
use shared::telemetry::{metric, Unit};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let aws = config::aws().await;
    let outbox = DynamoOutbox::new(config::dynamodb(&aws), config::env("OUTBOX_TABLE")?);
    let publisher = EventBridgePublisher::new(config::eventbridge(&aws), config::env("EVENT_BUS_NAME")?);
    let grace: i64 = config::env_or("OUTBOX_GRACE_SECONDS", "30").parse()?;
    let (outbox, publisher) = (&outbox, &publisher);
    lambda_runtime::run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        let before = chrono::Utc::now() - chrono::Duration::seconds(grace);
        let report = outbox_relay::relay(outbox, publisher, before, Backoff::BACKGROUND).await?;
        tracing::info!(published = report.published, failed = report.failed, "outbox relay pass");
        metric("outbox-relay", "OutboxRelayed", Unit::Count, report.published as f64);
        metric("outbox-relay", "OutboxStuck", Unit::Count, report.failed as f64);
        Ok::<_, Error>(report)
    }))
    .await
}
