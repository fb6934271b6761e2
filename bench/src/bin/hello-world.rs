//! The baseline of the cold-start and size benchmarks: a Lambda built like the functions (the
//! same runtime crate, async runtime and release profile) that does nothing else, so the
//! difference to a function is what the function adds: the AWS SDK, its set-up and our code.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move { Ok::<_, Error>(event.payload) })).await
}
