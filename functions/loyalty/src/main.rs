use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use loyalty::{dynamo::DynamoLedger, Loyalty};
use shared::{config, consumer::handle_batch};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let aws = config::aws().await;
    let consumer = Loyalty {
        ledger: DynamoLedger {
            client: config::dynamodb(&aws),
            loyalty_table: config::env("LOYALTY_TABLE")?,
            processed_table: config::env("PROCESSED_EVENTS_TABLE")?,
        },
    };
    let consumer = &consumer;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        let now = chrono::Utc::now().timestamp_millis();
        Ok::<_, Error>(handle_batch(consumer, &event.payload, now, event.context.deadline as i64).await)
    }))
    .await
}
