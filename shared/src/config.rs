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
    aws_config::defaults(aws_config::BehaviorVersion::latest()).http_client(https_client()).load().await
}

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
