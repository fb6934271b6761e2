use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;
use shared::config::Env;
use staff_scope::{answer, StaffRule};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let rule = &StaffRule::from_env(&Env::from_process());
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A malformed event fails the trigger, and Cognito then refuses the sign-in: no token
        // is better than a token made without the rule.
        answer(rule, event.payload).map_err(Error::from)
    }))
    .await
}
