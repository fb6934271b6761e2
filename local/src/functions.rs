//! Functions hosted in this process, each built from its own environment by the same
//! `from_env` its Lambda `main` uses, and invoked with Lambda's JSON payloads.

use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use futures::future::BoxFuture;
use lambda_http::Service;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use shared::config::{Env, MissingEnv};
use shared::consumer::{handle_batch, Consumer};
use std::future::Future;
use std::sync::Arc;

/// A function as the Invoke API sees it: a JSON payload in, a JSON result or an error out.
pub type Handler = Arc<dyn Fn(Value, Context) -> BoxFuture<'static, Result<Value, String>> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    MissingEnv(#[from] MissingEnv),
    #[error("no function binary named {0} in this workspace")]
    Unknown(String),
}

/// Builds the handler of `binary` with `env`, as Lambda would start it.
pub fn build(binary: &str, env: &Env, aws: &aws_config::SdkConfig) -> Result<Handler, BuildError> {
    Ok(match binary {
        "checkout" => {
            let checkout = Arc::new(checkout::from_env(env, aws)?);
            http(move |req| {
                let checkout = checkout.clone();
                async move { checkout::http::handle(&checkout, req).await }
            })
        }
        "fulfilment" => {
            let fulfilment = Arc::new(checkout::fulfilment::Fulfilment::from_env(env, aws)?);
            http(move |req| {
                let fulfilment = fulfilment.clone();
                async move { checkout::http::handle_staff(&fulfilment, req).await }
            })
        }
        "order-projector" => {
            let projector = Arc::new(order_views::projector::Projector::from_env(env, aws)?);
            Arc::new(move |payload, _context| {
                let projector = projector.clone();
                Box::pin(async move {
                    let event: DynamoDbEvent =
                        serde_json::from_value(payload).map_err(|e| format!("not a DynamoDB stream event: {e}"))?;
                    let response = order_views::projector::handle(&projector, &event).await;
                    serde_json::to_value(response).map_err(|e| e.to_string())
                })
            })
        }
        "order-views-api" => {
            let views = Arc::new(order_views::api::Views::from_env(env, aws)?);
            let access = Arc::new(shared::auth::Access::from_env(env));
            http(move |req| {
                let (views, access) = (views.clone(), access.clone());
                async move { order_views::api::handle(&views, &access, req).await }
            })
        }
        "outbox-relay" => {
            let relay = Arc::new(outbox_relay::Relay::from_env(env, aws)?);
            Arc::new(move |_payload, ctx| {
                let relay = relay.clone();
                Box::pin(async move {
                    let deadline = outbox_relay::Deadline::of(&ctx);
                    let report = relay.run_once(&deadline).await.map_err(|e| e.to_string())?;
                    serde_json::to_value(report).map_err(|e| e.to_string())
                })
            })
        }
        "sweeper" => {
            let sweeper = Arc::new(sweeper::Sweeper::from_env(env, aws)?);
            Arc::new(move |_payload, ctx| {
                let sweeper = sweeper.clone();
                Box::pin(async move {
                    let deadline = shared::deadline::Deadline::of(&ctx);
                    let report = sweeper.run_once(chrono::Utc::now(), &deadline).await.map_err(|e| e.to_string())?;
                    serde_json::to_value(report).map_err(|e| e.to_string())
                })
            })
        }
        "email" => sqs(email::Email::from_env(env, aws)?, env, aws)?,
        "inventory" => sqs(inventory::Inventory::from_env(env, aws)?, env, aws)?,
        "analytics" => sqs(analytics::Analytics::from_env(env, aws)?, env, aws)?,
        "loyalty" => sqs(loyalty::Loyalty::from_env(env, aws)?, env, aws)?,
        "recommendations" => sqs(recommendations::Recommendations::from_env(env, aws)?, env, aws)?,
        "recommendations-api" => {
            let store = Arc::new(recommendations::dynamo::DynamoBoughtWith::from_env(env, aws)?);
            http(move |req| {
                let store = store.clone();
                async move { recommendations::api::handle(store.as_ref(), req).await }
            })
        }
        other => return Err(BuildError::Unknown(other.to_owned())),
    })
}

/// An HTTP function behind `lambda_http`'s own adapter: the payload v2 → `Request` and
/// `Response` → payload conversions are exactly those `lambda_http::run` performs.
fn http<F, Fut>(handler: F) -> Handler
where
    F: Fn(lambda_http::Request) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<lambda_http::Response<lambda_http::Body>, lambda_http::Error>> + Send + 'static,
{
    Arc::new(move |payload, context| {
        let handler = handler.clone();
        Box::pin(async move {
            let request: lambda_http::request::LambdaRequest =
                serde_json::from_value(payload).map_err(|e| format!("not an API Gateway event: {e}"))?;
            let mut adapter = lambda_http::Adapter::from(lambda_http::service_fn(handler));
            let response = adapter.call(LambdaEvent::new(request, context)).await.map_err(|e| e.to_string())?;
            serde_json::to_value(response).map_err(|e| e.to_string())
        })
    })
}

/// A consumer behind the SQS event source: the same `handle_batch` its Lambda `main` serves,
/// with its own dead-letter queue (`DEAD_LETTER_QUEUE_URL`, as `serve` reads it).
fn sqs<C: Consumer + 'static>(consumer: C, env: &Env, aws: &aws_config::SdkConfig) -> Result<Handler, BuildError> {
    let consumer = Arc::new(consumer);
    let dead_letters = Arc::new(shared::adapters::sqs::SqsDeadLetters::from_env(env, aws)?);
    Ok(Arc::new(move |payload, context| {
        let (consumer, dead_letters) = (consumer.clone(), dead_letters.clone());
        Box::pin(async move {
            let batch: SqsEvent = serde_json::from_value(payload).map_err(|e| format!("not an SQS event: {e}"))?;
            let now = chrono::Utc::now().timestamp_millis();
            let deadline = context.deadline as i64;
            let response = handle_batch(consumer.as_ref(), dead_letters.as_ref(), &batch, now, deadline).await;
            serde_json::to_value(response).map_err(|e| e.to_string())
        })
    }))
}
