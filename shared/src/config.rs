//! Environment → typed configuration, and AWS client set-up (once per process).

/// A required environment variable was missing: the template and the code disagree.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} is not set")]
pub struct MissingEnv(pub &'static str);

/// A function's environment variables. In Lambda they are the process environment; the
/// local runner hosts several functions in one process, each with its own map from the template.
#[derive(Debug, Clone, Default)]
pub struct Env(pub std::collections::BTreeMap<String, String>);

impl Env {
    pub fn from_process() -> Env {
        Env(std::env::vars().collect())
    }

    pub fn get(&self, name: &'static str) -> Result<String, MissingEnv> {
        self.0.get(name).cloned().ok_or(MissingEnv(name))
    }

    pub fn get_or(&self, name: &str, default: &str) -> String {
        self.0.get(name).cloned().unwrap_or_else(|| default.to_owned())
    }
}

/// The shared SDK configuration. `aws-config` reads `AWS_ENDPOINT_URL` (and per-service
/// `AWS_ENDPOINT_URL_<SERVICE>`), so the same binary talks to the local emulator or to AWS
/// with no code change.
pub async fn aws() -> aws_config::SdkConfig {
    loader().load().await
}

/// What `aws` loads: our HTTPS client and timeouts, the rest from the environment. The retry
/// policy is deliberately not set here, so it stays the SDK's standard one (3 attempts,
/// jittered backoff) and `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` can still tune it per function.
pub fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).timeout_config(timeouts())
}

/// Every SDK call's time budget, for every function.
///
/// Without it a hung call (a half-open connection, a stalled TLS handshake) waits until the
/// Lambda timeout kills the invocation. In the checkout that turns one slow call into a
/// gateway timeout instead of an answer (and no chance to release what was reserved); in an
/// SQS consumer it fails the whole batch, so every record in it loses one of its three
/// receives, healthy ones included. So a call must give up well inside the function timeout
/// (10 s today, `Globals.Function.Timeout` in template.yaml; a test checks that the operation
/// budget stays within half of the smallest function timeout there):
/// - connect 1 s: a TCP + TLS set-up to a regional endpoint takes milliseconds;
/// - attempt 2 s: DynamoDB, EventBridge, SQS and SES answer in tens of milliseconds, so an
///   attempt this slow is stuck, and retrying it on a fresh connection is the cure;
/// - operation 5 s: all attempts and the backoff between them, leaving at least half of the
///   function timeout to handle the failure (answer 503, report the record as failed).
pub fn timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(ATTEMPT_TIMEOUT)
        .operation_timeout(OPERATION_TIMEOUT)
        .build()
}

pub const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);
pub const OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// HTTPS with rustls and the ring crypto provider (see the workspace manifest for why).
pub fn https_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https()
}

pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

pub fn eventbridge(config: &aws_config::SdkConfig) -> aws_sdk_eventbridge::Client {
    aws_sdk_eventbridge::Client::new(config)
}

pub fn shop_tables(env: &Env) -> Result<crate::adapters::dynamodb::ShopTables, MissingEnv> {
    Ok(crate::adapters::dynamodb::ShopTables {
        products: env.get("PRODUCTS_TABLE")?,
        orders: env.get("ORDERS_TABLE")?,
        outbox: env.get("OUTBOX_TABLE")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A region and credentials are given so that loading reads nothing from the machine.
    async fn loaded() -> aws_config::SdkConfig {
        loader()
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "test"))
            .load()
            .await
    }

    #[tokio::test]
    async fn every_client_gets_connect_attempt_and_operation_timeouts() {
        let config = loaded().await;
        let timeouts = config.timeout_config().expect("a timeout config");
        assert_eq!(timeouts.connect_timeout(), Some(CONNECT_TIMEOUT));
        assert_eq!(timeouts.operation_attempt_timeout(), Some(ATTEMPT_TIMEOUT));
        assert_eq!(timeouts.operation_timeout(), Some(OPERATION_TIMEOUT));
    }

    #[tokio::test]
    async fn the_clients_built_from_it_carry_the_same_timeouts() {
        let config = loaded().await;
        let client = dynamodb(&config);
        assert_eq!(client.config().timeout_config().and_then(|t| t.operation_timeout()), Some(OPERATION_TIMEOUT));
    }

    #[test]
    fn a_hung_call_gives_up_well_inside_the_smallest_function_timeout() {
        let smallest = smallest_function_timeout(include_str!("../../template.yaml"));
        assert!(ATTEMPT_TIMEOUT < OPERATION_TIMEOUT && CONNECT_TIMEOUT < ATTEMPT_TIMEOUT);
        assert!(
            OPERATION_TIMEOUT * 2 <= smallest,
            "operation timeout {OPERATION_TIMEOUT:?} must leave half of the smallest function timeout {smallest:?}"
        );
    }

    /// The smallest `Timeout:` (seconds) in the template: the Globals one and any per-function one.
    fn smallest_function_timeout(template: &str) -> std::time::Duration {
        let seconds = template
            .lines()
            .filter_map(|line| line.trim().strip_prefix("Timeout:"))
            .map(|v| v.trim().parse::<u64>().expect("a function Timeout is a literal number of seconds"))
            .min()
            .expect("template.yaml sets a function timeout");
        std::time::Duration::from_secs(seconds)
    }
}
