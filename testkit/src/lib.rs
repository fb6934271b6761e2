//! The local AWS emulator for integration tests and local runs.
//!
//! `Emulator::start` runs moto's server from the project venv on a free loopback port. A small
//! shell watchdog stops that server (by its PID) when the process that started it exits, so no
//! test run leaves a server behind, even on a panic or Ctrl-C. `Stack::provision` creates the
//! stack from `template.yaml` through `tools/localstack.py` (the single source of the wiring)
//! and seeds the catalogue.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "us-east-1";

/// The workspace root (this crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("testkit is inside the workspace").to_path_buf()
}

/// The project's Python venv (`make venv` creates it), or `SHOP_VENV`.
pub fn venv() -> PathBuf {
    let venv = std::env::var_os("SHOP_VENV").map(PathBuf::from).unwrap_or_else(|| workspace_root().join(".venv"));
    assert!(
        venv.join("bin/moto_server").exists(),
        "no moto server in {}: run `make venv` (the test command does) first",
        venv.display()
    );
    venv
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free loopback port")
}

pub struct Emulator {
    pub endpoint: String,
    watchdog: Child,
}

impl Emulator {
    /// Starts moto and waits until it answers.
    pub fn start() -> Emulator {
        let port = free_port();
        let moto = venv().join("bin/moto_server");
        // The watchdog: starts moto, then polls our PID; when we are gone it stops moto by PID.
        let script = r#"
            "$1" -H 127.0.0.1 -p "$2" >/dev/null 2>&1 &
            moto=$!
            trap 'kill $moto 2>/dev/null; exit 0' TERM INT
            while kill -0 "$3" 2>/dev/null && kill -0 $moto 2>/dev/null; do sleep 0.5; done
            kill $moto 2>/dev/null
        "#;
        let watchdog = Command::new("sh")
            .args(["-c", script, "watchdog"])
            .arg(&moto)
            .arg(port.to_string())
            .arg(std::process::id().to_string())
            .stdin(Stdio::null())
            .spawn()
            .expect("start the moto watchdog");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto did not start on {endpoint}");
            std::thread::sleep(Duration::from_millis(100));
        }
        Emulator { endpoint, watchdog }
    }

    /// SDK configuration pointing at the emulator, with dummy credentials.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
        // As shared::config::https_client builds it (testkit cannot depend on shared: shared's tests use testkit).
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(Provider::Rustls(CryptoMode::Ring)).build_https();
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .http_client(http)
            .endpoint_url(&self.endpoint)
            .region(aws_config::Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "testkit"))
            .load()
            .await
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM to the watchdog makes it stop moto before it exits.
        let _ = Command::new("kill").arg(self.watchdog.id().to_string()).status();
        let _ = self.watchdog.wait();
    }
}

/// The emulator and a provisioned stack shared by every test of one test binary.
pub struct Shared {
    pub emulator: Emulator,
    pub stack: Stack,
}

/// Started on first use; the emulator stops when the test binary exits (see `Emulator`).
/// Runs emulator tests of one binary one at a time. moto cancels a `TransactWriteItems` by
/// restoring a copy of every table it touched, taken when the transaction began, which undoes
/// any write another test made to those tables meanwhile (DynamoDB never does that). Tests
/// that cancel transactions on purpose (duplicates, conflicts, short stock) and tests that
/// count must therefore not overlap: each holds this guard for its whole body.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    SERIAL.lock().await
}

pub fn shared() -> &'static Shared {
    static SHARED: std::sync::OnceLock<Shared> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| {
        let emulator = Emulator::start();
        let stack = Stack::provision(&emulator);
        Shared { emulator, stack }
    })
}

/// One function of the stack as the template defines it, with physical names resolved.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionDef {
    pub binary: String,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default)]
    pub sqs: Vec<SqsSource>,
    #[serde(default)]
    pub http: Vec<HttpRoute>,
    #[serde(default)]
    pub schedules: Vec<String>,
    #[serde(default)]
    pub streams: Vec<StreamSource>,
    /// The `EventPattern`s of the EventBridge rules that feed this function's queues.
    #[serde(default)]
    pub rules: Vec<serde_json::Value>,
    /// Seconds, from the template.
    #[serde(default = "default_timeout")]
    pub timeout: u64,
}

fn default_timeout() -> u64 {
    3
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SqsSource {
    pub queue_url: String,
    pub queue_arn: String,
    pub batch_size: Option<u32>,
    pub maximum_batching_window_in_seconds: Option<u32>,
}

/// A DynamoDB stream event source mapping, as the template configures it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSource {
    pub stream_arn: String,
    pub table_name: String,
    pub starting_position: String,
    pub batch_size: u32,
    pub maximum_batching_window_in_seconds: u32,
    /// -1: until the record expires from the stream.
    pub maximum_retry_attempts: i64,
    pub bisect_batch_on_function_error: bool,
    #[serde(default)]
    pub function_response_types: Vec<String>,
    pub on_failure_queue_url: Option<String>,
    pub on_failure_queue_arn: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct HttpRoute {
    pub method: String,
    pub path: String,
}

/// What the HTTP API enforces before invoking anything: the stage's throttling (a token bucket
/// refilled at `throttling_rate_limit` per second, holding `throttling_burst_limit`), its
/// authorizers, and which authorizer (and scopes) each route requires.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiSettings {
    pub throttling_rate_limit: Option<f64>,
    pub throttling_burst_limit: Option<f64>,
    /// By name, as the template names them (e.g. `ShopJwt`).
    #[serde(default)]
    pub authorizers: BTreeMap<String, AuthorizerDef>,
    /// By route key, e.g. `POST /orders`.
    #[serde(default)]
    pub routes: BTreeMap<String, RouteAuthorization>,
}

/// An authorizer of the HTTP API, as the template configures it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerDef {
    /// `jwt` (or `request`, a Lambda authorizer).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the token is, e.g. `$request.header.Authorization`.
    #[serde(default)]
    pub identity_source: Vec<String>,
    /// The `iss` a JWT must carry; `None` when the issuer is not part of the local twin (the
    /// stack's own Cognito user pool).
    #[serde(default)]
    pub issuer: Option<String>,
    /// A JWT's `aud` (or, without one, its `client_id`) must be one of these.
    #[serde(default)]
    pub audience: Vec<String>,
}

/// A route's authorization: its authorizer (`None` for `NONE`, a public route) and the scopes
/// of which a token must carry at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteAuthorization {
    pub authorizer: Option<String>,
    #[serde(default)]
    pub authorization_scopes: Vec<String>,
}

/// A provisioned stack: its outputs, functions and API settings.
#[derive(Debug, Clone, Deserialize)]
pub struct Stack {
    pub outputs: BTreeMap<String, String>,
    pub functions: BTreeMap<String, FunctionDef>,
    #[serde(default)]
    pub api: ApiSettings,
}

impl Stack {
    /// Creates a fresh stack in `emulator` from template.yaml and seeds it from tools/seed.json.
    pub fn provision(emulator: &Emulator) -> Stack {
        Stack::provision_at(&emulator.endpoint, &[], None)
    }

    /// As `provision`, for the emulator at `endpoint`, with template parameters (checked
    /// against the template's constraints, as CloudFormation checks them) and the local API's
    /// URL as the `ApiUrl` output.
    pub fn provision_at(endpoint: &str, parameters: &[(&str, &str)], api_url: Option<&str>) -> Stack {
        Stack::provision_with(endpoint, parameters, &[], api_url)
    }

    /// As `provision_at`, plus `local_only` values a deploy would refuse, taken on purpose by
    /// the local twin only (e.g. a visibility timeout of seconds, to watch retries in a demo).
    pub fn provision_with(
        endpoint: &str,
        parameters: &[(&str, &str)],
        local_only: &[(&str, &str)],
        api_url: Option<&str>,
    ) -> Stack {
        // Short: physical names derive from it and some AWS names are capped at 48 characters.
        let name = format!("t{}", &ulid::Ulid::new().to_string().to_lowercase()[18..]);
        let flag = |flag: &str, (k, v): &(&str, &str)| [flag.to_owned(), format!("{k}={v}")];
        let mut extra: Vec<String> = parameters.iter().flat_map(|p| flag("--param", p)).collect();
        extra.extend(local_only.iter().flat_map(|p| flag("--local-only-param", p)));
        if let Some(url) = api_url {
            extra.extend(["--api-url".to_owned(), url.to_owned()]);
        }
        let out = std::env::temp_dir().join(format!("{name}.json"));
        let python = venv().join("bin/python");
        let tool = workspace_root().join("tools/localstack.py");
        let mut provision = vec!["provision", "--endpoint", endpoint, "--stack", &name, "--out", out.to_str().unwrap()];
        provision.extend(extra.iter().map(String::as_str));
        for args in [provision, vec!["seed", "--endpoint", endpoint, "--stack-file", out.to_str().unwrap()]] {
            let status = Command::new(&python)
                .arg(&tool)
                .args(&args)
                .current_dir(workspace_root())
                .stdout(Stdio::null())
                .status()
                .expect("run tools/localstack.py");
            assert!(status.success(), "tools/localstack.py {} failed", args[0]);
        }
        let text = std::fs::read_to_string(&out).expect("provision wrote its stack file");
        let _ = std::fs::remove_file(&out);
        serde_json::from_str(&text).expect("a stack file")
    }

    pub fn output(&self, key: &str) -> &str {
        self.outputs.get(key).unwrap_or_else(|| panic!("stack output {key} missing; have {:?}", self.outputs.keys()))
    }

    pub fn function(&self, logical_id: &str) -> &FunctionDef {
        self.functions.get(logical_id).unwrap_or_else(|| panic!("function {logical_id} missing"))
    }
}
