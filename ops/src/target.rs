//! Which stack a command operates on, and every name in it, from the stack's outputs: a
//! deployed stack's through CloudFormation `DescribeStacks`, the local one's from the file
//! `make dev` writes (`.local/stack-outputs.json`, the same keys plus `EmulatorEndpoint`).
//! No physical name is ever typed by hand or derived from a naming convention.

use crate::error::{self, Failure};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where `make dev` writes the local stack's outputs (relative to the repository root).
pub const LOCAL_OUTPUTS: &str = ".local/stack-outputs.json";

/// moto's region when the outputs name none (moto's own default).
const LOCAL_REGION: &str = "us-east-1";

/// The SQS consumers, by the name the template gives their function, queue and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Consumer {
    Email,
    Inventory,
    Analytics,
    Loyalty,
    Recommendations,
}

impl Consumer {
    pub const ALL: [Consumer; 5] =
        [Consumer::Email, Consumer::Inventory, Consumer::Analytics, Consumer::Loyalty, Consumer::Recommendations];

    pub fn name(self) -> &'static str {
        match self {
            Consumer::Email => "email",
            Consumer::Inventory => "inventory",
            Consumer::Analytics => "analytics",
            Consumer::Loyalty => "loyalty",
            Consumer::Recommendations => "recommendations",
        }
    }

    /// The prefix of its outputs: `<Prefix>QueueUrl`, `<Prefix>DeadLetterQueueUrl`.
    pub fn prefix(self) -> &'static str {
        match self {
            Consumer::Email => "Email",
            Consumer::Inventory => "Inventory",
            Consumer::Analytics => "Analytics",
            Consumer::Loyalty => "Loyalty",
            Consumer::Recommendations => "Recommendations",
        }
    }
}

impl std::fmt::Display for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct Choice {
    /// `--stack <name>`: a deployed stack.
    pub stack: Option<String>,
    /// `--local`: the stack `make dev` runs.
    pub local: bool,
    /// `--outputs <file>`: the local outputs file, if not `.local/stack-outputs.json`.
    pub outputs_file: Option<PathBuf>,
    /// `--region`: over the environment's and the profile's.
    pub region: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Deployed { stack: String },
    Local { file: PathBuf, endpoint: String },
}

/// A resolved stack: its outputs and an SDK configuration that reaches it.
#[derive(Debug, Clone)]
pub struct Target {
    pub place: Place,
    pub region: String,
    pub outputs: BTreeMap<String, String>,
    pub aws: aws_config::SdkConfig,
}

impl Target {
    pub fn is_local(&self) -> bool {
        matches!(self.place, Place::Local { .. })
    }

    /// For messages: which stack this is.
    pub fn describe(&self) -> String {
        match &self.place {
            Place::Deployed { stack } => format!("stack {stack} ({})", self.region),
            Place::Local { endpoint, .. } => format!("the local stack on {endpoint}"),
        }
    }

    /// For `--json`: which stack this is.
    pub fn json(&self) -> serde_json::Value {
        match &self.place {
            Place::Deployed { stack } => serde_json::json!({"stack": stack, "region": self.region}),
            Place::Local { file, endpoint } => {
                serde_json::json!({"local": file.display().to_string(), "endpoint": endpoint, "region": self.region})
            }
        }
    }

    pub fn output(&self, key: &str) -> Result<&str, Failure> {
        output(&self.outputs, key).map_err(|missing| Failure::failed(format!("{missing} of {}", self.describe())))
    }

    pub fn queue_url(&self, consumer: Consumer) -> Result<&str, Failure> {
        self.output(&format!("{}QueueUrl", consumer.prefix()))
    }

    pub fn dead_letter_queue_url(&self, consumer: Consumer) -> Result<&str, Failure> {
        self.output(&format!("{}DeadLetterQueueUrl", consumer.prefix()))
    }
}

fn output<'a>(outputs: &'a BTreeMap<String, String>, key: &str) -> Result<&'a str, String> {
    outputs.get(key).map(String::as_str).filter(|v| !v.is_empty()).ok_or_else(|| {
        format!(
            "no output {key} in the outputs: is this a deployment of this repository's template.yaml, \
             and of the same version as this CLI?"
        )
    })
}

/// Resolves the target the command line names. Without `--stack` or `--local`, the local
/// stack if its outputs file exists in the working directory.
pub async fn resolve(choice: &Choice) -> Result<Target, Failure> {
    resolve_in(choice, Path::new("")).await
}

/// As `resolve`, looking for the local outputs file under `dir`.
pub async fn resolve_in(choice: &Choice, dir: &Path) -> Result<Target, Failure> {
    if let Some(stack) = &choice.stack {
        return deployed(stack, choice.region.as_deref()).await;
    }
    let file = choice.outputs_file.clone().unwrap_or_else(|| dir.join(LOCAL_OUTPUTS));
    if choice.local || choice.outputs_file.is_some() || file.exists() {
        return local(&file).await;
    }
    Err(Failure::refused(format!(
        "which stack? Pass --stack <name> for a deployed stack (AWS credentials and region from the \
         environment, as the aws CLI takes them), or run `make dev` (it writes {LOCAL_OUTPUTS}) and run \
         this from the repository root or pass --local --outputs <file>"
    )))
}

/// A deployed stack: the standard credential chain and region, outputs from `DescribeStacks`.
async fn deployed(stack: &str, region: Option<&str>) -> Result<Target, Failure> {
    let mut loader = shared::config::loader();
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region.to_owned()));
    }
    let aws = loader.load().await;
    let region = aws.region().map(|r| r.to_string()).ok_or_else(|| {
        Failure::refused("no AWS region: set AWS_REGION (or a region in your AWS profile), or pass --region")
    })?;
    check_credentials(&aws).await?;
    let cfn = aws_sdk_cloudformation::Client::new(&aws);
    let described = cfn.describe_stacks().stack_name(stack).send().await.map_err(|err| {
        let missing = err
            .as_service_error()
            .and_then(aws_sdk_cloudformation::error::ProvideErrorMetadata::message)
            .is_some_and(|m| m.contains("does not exist"));
        if missing {
            Failure::failed(format!(
                "no stack named {stack} in {region} for these credentials: check --stack and the region \
                 (`aws cloudformation list-stacks --stack-status-filter CREATE_COMPLETE UPDATE_COMPLETE` lists them)"
            ))
        } else {
            error::aws(&format!("describing stack {stack}"), err)
        }
    })?;
    let found = described.stacks().first().ok_or_else(|| Failure::failed(format!("no stack named {stack}")))?;
    let status = found.stack_status().map(|s| s.as_str().to_owned()).unwrap_or_default();
    if !status.ends_with("_COMPLETE") || status.contains("ROLLBACK") || status.starts_with("DELETE") {
        eprintln!("warning: stack {stack} is {status}; its outputs may be missing or stale");
    }
    let outputs: BTreeMap<String, String> = found
        .outputs()
        .iter()
        .filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned())))
        .collect();
    if output(&outputs, "EventBusName").is_err() {
        return Err(Failure::failed(format!(
            "stack {stack} has no EventBusName output: it is not a deployment of this repository's template.yaml \
             (name the stack `sam deploy` created)"
        )));
    }
    Ok(Target { place: Place::Deployed { stack: stack.to_owned() }, region, outputs, aws })
}

/// Fails early, before any call, when the credential chain finds nothing: otherwise the first
/// call fails with the SDK's long "dispatch failure" chain.
async fn check_credentials(aws: &aws_config::SdkConfig) -> Result<(), Failure> {
    use aws_sdk_sqs::config::ProvideCredentials;
    let provider = aws.credentials_provider().ok_or_else(|| Failure::refused(no_credentials("no provider")))?;
    provider.provide_credentials().await.map(|_| ()).map_err(|e| {
        use aws_credential_types::provider::error::CredentialsError;
        let why = match &e {
            CredentialsError::CredentialsNotLoaded(_) | CredentialsError::ProviderError(_) => {
                "none found in the environment, the AWS profile files, nor a web identity, container or instance role"
                    .to_owned()
            }
            // A profile this CLI cannot use (e.g. an SSO profile: the SDK is built without SSO
            // support, see the workspace manifest) says so here.
            CredentialsError::InvalidConfiguration(_) => {
                std::error::Error::source(&e).map_or_else(|| e.to_string(), |s| s.to_string().trim().to_owned())
            }
            other => other.to_string(),
        };
        Failure::refused(no_credentials(&why))
    })
}

fn no_credentials(why: &str) -> String {
    format!(
        "no AWS credentials ({why}): set AWS_PROFILE (a profile with keys or a role), or AWS_ACCESS_KEY_ID and \
         AWS_SECRET_ACCESS_KEY; with IAM Identity Center, `aws sso login` then \
         `eval \"$(aws configure export-credentials --format env)\"`"
    )
}

/// The local stack: its outputs file, the emulator it records, moto's dummy credentials.
async fn local(file: &Path) -> Result<Target, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::refused(format!(
            "cannot read {} ({e}): start the local stack with `make dev` (it writes {LOCAL_OUTPUTS}), \
             or pass --stack <name> for a deployed one",
            file.display()
        ))
    })?;
    let outputs = parse_outputs(&text).map_err(|e| Failure::failed(format!("{}: {e}", file.display())))?;
    let endpoint = output(&outputs, "EmulatorEndpoint")
        .map_err(|_| {
            Failure::failed(format!(
                "{} records no EmulatorEndpoint: it was not written by `make dev`; run `make dev` again",
                file.display()
            ))
        })?
        .to_owned();
    check_reachable(&endpoint).map_err(|why| {
        Failure::failed(format!(
            "the local emulator at {endpoint} does not answer ({why}): {} is left from an earlier run; \
             start `make dev` again",
            file.display()
        ))
    })?;
    // The emulator's region is the one in its ARNs.
    let region = outputs
        .get("EventBusArn")
        .and_then(|arn| arn.split(':').nth(3))
        .filter(|r| !r.is_empty())
        .unwrap_or(LOCAL_REGION)
        .to_owned();
    let credentials = aws_sdk_sqs::config::Credentials::new("test", "test", None, None, "shop-ops-local");
    let aws = shared::config::loader()
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new(region.clone()))
        .credentials_provider(credentials)
        .load()
        .await;
    Ok(Target { place: Place::Local { file: file.to_owned(), endpoint }, region, outputs, aws })
}

/// `{"Key": "value", ...}` as `make dev` writes it, or a stack file (`tools/localstack.py
/// provision --out`) whose `outputs` are that.
pub fn parse_outputs(text: &str) -> Result<BTreeMap<String, String>, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let map = match value.get("outputs") {
        Some(outputs) if outputs.is_object() => outputs,
        _ => &value,
    };
    let map = map.as_object().ok_or("not a JSON object of stack outputs")?;
    Ok(map.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
}

/// A TCP connection to the endpoint's host and port, within a second.
fn check_reachable(endpoint: &str) -> Result<(), String> {
    use std::net::ToSocketAddrs;
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let with_port = if authority.contains(':') { authority.to_owned() } else { format!("{authority}:80") };
    let address = with_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{authority} resolves to nothing"))?;
    std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1)).map(|_| ()).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_consumer_names_the_outputs_the_template_declares() {
        let template = include_str!("../../template.yaml");
        for consumer in Consumer::ALL {
            for key in [format!("{}QueueUrl:", consumer.prefix()), format!("{}DeadLetterQueueUrl:", consumer.prefix())]
            {
                assert!(template.contains(&key), "template.yaml declares no output {key}");
            }
        }
    }

    #[test]
    fn the_outputs_file_of_make_dev_and_a_stack_file_read_alike() {
        let plain = parse_outputs(r#"{"EventBusName": "b", "EmulatorEndpoint": "http://127.0.0.1:1"}"#).unwrap();
        let stack_file = parse_outputs(r#"{"stackName": "s", "outputs": {"EventBusName": "b"}}"#).unwrap();
        assert_eq!(plain["EventBusName"], "b");
        assert_eq!(stack_file["EventBusName"], "b");
        assert!(parse_outputs("[1]").is_err());
        assert!(parse_outputs("{").unwrap_err().contains("not JSON"));
    }

    #[test]
    fn a_missing_output_says_which_and_why() {
        let outputs = BTreeMap::from([("EventBusName".to_owned(), String::new())]);
        let missing = output(&outputs, "EventBusName").unwrap_err();
        assert!(missing.contains("no output EventBusName"), "{missing}");
    }

    #[test]
    fn an_endpoint_nobody_listens_on_is_reported() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // The listener is dropped: nothing listens there any more.
        assert!(check_reachable(&format!("http://127.0.0.1:{port}")).is_err());
    }

    #[tokio::test]
    async fn without_a_stack_or_local_outputs_the_operator_is_told_both_ways() {
        let empty = std::env::temp_dir().join(format!("shop-ops-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&empty).unwrap();
        let failure = resolve_in(&Choice::default(), &empty).await.unwrap_err();
        let _ = std::fs::remove_dir(&empty);
        assert!(failure.message.contains("--stack <name>") && failure.message.contains("make dev"), "{failure}");
        assert_eq!(failure.exit, crate::error::EXIT_REFUSED);
    }
}
