//! Invoking a function: in this process, or through the Lambda Invoke API that
//! `cargo lambda watch` serves on 127.0.0.1.

use crate::functions::Handler;
use lambda_runtime::Context;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

/// Under `cargo lambda watch` a function's first invocation compiles it (one at a time: cargo
/// locks the target directory), which can take far longer than the function's timeout. The
/// runner waits this long instead; a function's own timeout still bounds it in process.
pub const CARGO_LAMBDA_ALLOWANCE: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, thiserror::Error)]
pub enum InvokeError {
    /// The function ran and failed (Lambda's `X-Amz-Function-Error`).
    #[error("function error: {0}")]
    Function(String),
    #[error("function timed out after {0:?}")]
    Timeout(Duration),
    #[error("could not invoke: {0}")]
    Transport(String),
}

pub enum Invoker {
    InProcess(HashMap<String, Handler>),
    /// `cargo lambda watch` on `base` (e.g. http://127.0.0.1:9000), functions by binary name.
    CargoLambda {
        base: String,
        client: reqwest::Client,
    },
}

impl Invoker {
    /// Invokes `binary` with `payload`, allowing it `timeout` as the template does.
    pub async fn invoke(&self, binary: &str, payload: Value, timeout: Duration) -> Result<Value, InvokeError> {
        match self {
            Invoker::InProcess(handlers) => {
                let handler =
                    handlers.get(binary).ok_or_else(|| InvokeError::Transport(format!("no function {binary}")))?;
                let mut context = Context::default();
                context.request_id = ulid::Ulid::new().to_string();
                context.deadline = (chrono::Utc::now().timestamp_millis() as u64) + timeout.as_millis() as u64;
                context.invoked_function_arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{binary}");
                match tokio::time::timeout(timeout, handler(payload, context)).await {
                    Ok(result) => result.map_err(InvokeError::Function),
                    Err(_) => Err(InvokeError::Timeout(timeout)),
                }
            }
            Invoker::CargoLambda { base, client } => {
                let timeout = timeout.max(CARGO_LAMBDA_ALLOWANCE);
                let url = format!("{base}/2015-03-31/functions/{binary}/invocations");
                let response = client.post(url).timeout(timeout).json(&payload).send().await.map_err(|e| {
                    if e.is_timeout() {
                        InvokeError::Timeout(timeout)
                    } else {
                        InvokeError::Transport(e.to_string())
                    }
                })?;
                let failed = response.headers().contains_key("x-amz-function-error") || !response.status().is_success();
                let body: Value = response.json().await.map_err(|e| InvokeError::Transport(e.to_string()))?;
                if failed {
                    return Err(InvokeError::Function(body.to_string()));
                }
                Ok(body)
            }
        }
    }
}
