//! The whole system on this machine: emulator, stack from template.yaml, seed data, functions,
//! HTTP API, event sources (SQS queues, DynamoDB streams) and schedules; and a clean stop of
//! everything it started.

use crate::api::{self, Api, Authorization, Route, TokenBucket};
use crate::authorizer::{JwtAuthorizer, JwtConfig};
use crate::dashboard::{self, Dashboard};
use crate::flow::Flow;
use crate::functions;
use crate::invoke::Invoker;
use crate::oidc::{self, BoundIssuer, Issuer, Tokens};
use crate::poller::{EventSource, Observation, Poller};
use crate::schedule;
use crate::stream::{StreamPoller, StreamSource};
use shared::config::Env;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use testkit::{Emulator, Stack};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

#[derive(Debug, Clone)]
pub enum Mode {
    /// Every function in this process: starts in a second.
    InProcess,
    /// Functions under `cargo lambda watch` (live reload), reached on 127.0.0.1:`port`.
    CargoLambda { port: u16 },
}

#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    /// Template parameters, checked against the template's constraints as a deploy checks them.
    pub parameters: Vec<(String, String)>,
    /// Values a deploy would refuse, taken on purpose by the local twin only: the demo's
    /// two-second visibility timeout, the benchmark's lifted throttle.
    pub local_only: Vec<(String, String)>,
    /// Port of the local HTTP API; a free one when `None`.
    pub api_port: Option<u16>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Build(#[from] functions::BuildError),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("cargo lambda watch did not come up: {0}")]
    CargoLambda(String),
    #[error("the local API cannot apply the template's authorization: {0}")]
    Authorization(String),
}

pub struct LocalSystem {
    pub emulator: Emulator,
    pub stack: Stack,
    pub api_url: String,
    /// The live dashboard page (`dashboard`), on its own port beside the API.
    pub dashboard_url: String,
    /// What the page shows: the metrics of the functions' EMF lines and the event flow.
    pub dashboard: Arc<Dashboard>,
    /// Mints access tokens of the local issuer (the stack's `JwtIssuer`), as its `POST /token` does.
    pub tokens: Tokens,
    issuer: Option<Issuer>,
    pub aws: aws_config::SdkConfig,
    pub invoker: Arc<Invoker>,
    pub observations: broadcast::Sender<Observation>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    cargo_lambda: Option<tokio::process::Child>,
}

fn function_env(stack: &Stack, logical: &str) -> Env {
    Env(stack.function(logical).environment.clone())
}

/// The stack as the local twin provisions it: trusting the local issuer (`JwtIssuer`, and
/// `JwtAudience` = the audience it mints), unless the caller names an issuer itself.
fn borrowed(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn with_local_issuer(parameters: &[(String, String)], issuer: &str) -> Vec<(String, String)> {
    let mut parameters = parameters.to_vec();
    if !parameters.iter().any(|(name, _)| name == "JwtIssuer") {
        parameters.push(("JwtIssuer".into(), issuer.into()));
        parameters.push(("JwtAudience".into(), oidc::AUDIENCE.into()));
    }
    parameters
}

/// Each route's authorization, from the stack's description of the API: its JWT authorizer
/// (one per template authorizer, shared by the routes) and scopes, or none.
fn authorizations(stack: &Stack) -> Result<HashMap<String, Authorization>, StartError> {
    let mut authorizers: HashMap<&str, Result<Arc<JwtAuthorizer>, String>> = HashMap::new();
    for (name, def) in &stack.api.authorizers {
        let authorizer = match (def.kind.as_str(), &def.issuer) {
            ("jwt", Some(issuer)) => {
                let config = JwtConfig { issuer: issuer.clone(), audience: def.audience.clone() };
                JwtAuthorizer::new(name, config, &def.identity_source).map(Arc::new)
            }
            ("jwt", None) => Err(format!(
                "authorizer {name} trusts the stack's Cognito user pool, which is not part of the local twin: \
                 provision with JwtIssuer and JwtAudience"
            )),
            (other, _) => Err(format!("authorizer {name} is of type {other}; the local API applies JWT authorizers")),
        };
        authorizers.insert(name, authorizer);
    }
    let mut routes = HashMap::new();
    for (key, route) in &stack.api.routes {
        let authorization = match &route.authorizer {
            None => Authorization::None,
            Some(name) => {
                let authorizer = authorizers
                    .get(name.as_str())
                    .ok_or_else(|| format!("route {key} names authorizer {name}, which the API does not have"))
                    .and_then(|a| a.clone())
                    .map_err(StartError::Authorization)?;
                Authorization::Jwt { authorizer, scopes: route.authorization_scopes.clone() }
            }
        };
        routes.insert(key.clone(), authorization);
    }
    Ok(routes)
}

impl LocalSystem {
    pub async fn start(options: Options) -> Result<LocalSystem, StartError> {
        let (emulator, bound) = tokio::join!(tokio::task::spawn_blocking(Emulator::start), BoundIssuer::bind());
        let (emulator, bound) = (emulator.expect("emulator start"), bound?);
        // The issuer's key is made (seconds, in a debug build) while the stack is provisioned.
        let key = tokio::spawn(oidc::generate_key());
        let api_port = options.api_port.unwrap_or_else(testkit::free_port);
        let api_url = format!("http://127.0.0.1:{api_port}");
        let stack = {
            let (endpoint, url) = (emulator.endpoint.clone(), api_url.clone());
            let params = with_local_issuer(&options.parameters, bound.url());
            let local_only = options.local_only.clone();
            // Provisioning runs the Python tool; keep the runtime free meanwhile.
            tokio::task::spawn_blocking(move || {
                Stack::provision_with(&endpoint, &borrowed(&params), &borrowed(&local_only), Some(&url))
            })
            .await
            .expect("provision")
        };
        let issuer = bound.serve(key.await.map_err(std::io::Error::other)??);
        let tokens = issuer.tokens();
        let authorizations = authorizations(&stack)?;
        let mut routes: Vec<Route> = Vec::new();
        for def in stack.functions.values() {
            for r in &def.http {
                let key = format!("{} {}", r.method, r.path);
                // A route the description of the API does not know is refused, not left open.
                let authorization = authorizations.get(&key).cloned().ok_or_else(|| {
                    StartError::Authorization(format!("the API describes no authorization for {key}"))
                })?;
                let timeout = Duration::from_secs(def.timeout);
                routes.push(Route {
                    method: r.method.clone(),
                    path: r.path.clone(),
                    binary: def.binary.clone(),
                    timeout,
                    authorization,
                });
            }
        }
        let aws = emulator.sdk_config().await;
        // The functions' clients get the same timeouts as in Lambda (`shared::config::aws`); the
        // runner's own (the event source's 20 s long polls) keep the SDK's defaults.
        let functions_aws = aws.to_builder().timeout_config(shared::config::timeouts()).build();
        let (invoker, cargo_lambda) = match options.mode {
            Mode::InProcess => {
                let mut handlers = HashMap::new();
                for (logical, def) in &stack.functions {
                    handlers.insert(
                        def.binary.clone(),
                        functions::build(&def.binary, &function_env(&stack, logical), &functions_aws)?,
                    );
                }
                (Invoker::InProcess(handlers), None)
            }
            Mode::CargoLambda { port } => {
                let child = start_cargo_lambda(&stack, &emulator, port).await?;
                (
                    Invoker::CargoLambda { base: format!("http://127.0.0.1:{port}"), client: reqwest::Client::new() },
                    Some(child),
                )
            }
        };
        let invoker = Arc::new(invoker);
        let (stop, stopped) = watch::channel(false);
        let (observations, _) = broadcast::channel(1024);
        let mut tasks = Vec::new();

        // The dashboard: the functions' metrics (collected from the process's EMF lines, or
        // from cargo lambda's output), the flow of requests and deliveries, the emulator's queues.
        let flow = Arc::new(Flow::default());
        let services: HashMap<String, String> =
            stack.functions.iter().map(|(logical, def)| (logical.clone(), def.binary.clone())).collect();
        tasks.push(tokio::spawn(dashboard::record_deliveries(
            flow.clone(),
            services,
            observations.subscribe(),
            stopped.clone(),
        )));
        let dashboard = Arc::new(Dashboard::new(
            crate::metrics::collected(),
            flow.clone(),
            dashboard::watched(&stack),
            api_url.clone(),
            &aws,
        ));
        let dashboard_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let dashboard_url = format!("http://127.0.0.1:{}/dashboard", dashboard_listener.local_addr()?.port());
        tasks.push(tokio::spawn(dashboard::serve(dashboard.clone(), dashboard_listener, stopped.clone())));

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", api_port)).await?;
        let throttle = match (stack.api.throttling_rate_limit, stack.api.throttling_burst_limit) {
            (Some(rate), Some(burst)) => Some(TokenBucket::new(rate, burst, std::time::Instant::now())),
            _ => None,
        };
        let api = Arc::new(Api { routes, invoker: invoker.clone(), domain: format!("127.0.0.1:{api_port}"), throttle });
        let router = axum::Router::new()
            .fallback(api::handle)
            .with_state(api)
            .layer(axum::middleware::from_fn_with_state(flow, dashboard::record_requests));
        let mut api_stop = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let shutdown = async move {
                let _ = api_stop.changed().await;
            };
            if let Err(error) = axum::serve(listener, router).with_graceful_shutdown(shutdown).await {
                tracing::error!(%error, "local API stopped");
            }
        }));

        let sqs = aws_sdk_sqs::Client::new(&aws);
        let streams = aws_sdk_dynamodbstreams::Client::new(&aws);
        for (logical, def) in &stack.functions {
            for config in &def.streams {
                let poller = StreamPoller {
                    source: StreamSource {
                        function: logical.clone(),
                        binary: def.binary.clone(),
                        config: config.clone(),
                        timeout: Duration::from_secs(def.timeout),
                    },
                    streams: streams.clone(),
                    sqs: sqs.clone(),
                    invoker: invoker.clone(),
                    region: testkit::REGION.to_owned(),
                    observations: observations.clone(),
                };
                tasks.push(tokio::spawn(poller.run(stopped.clone())));
            }
            for source in &def.sqs {
                let poller = Poller {
                    source: EventSource {
                        function: logical.clone(),
                        binary: def.binary.clone(),
                        queue_url: source.queue_url.clone(),
                        queue_arn: source.queue_arn.clone(),
                        batch_size: source.batch_size.unwrap_or(10) as usize,
                        window: Duration::from_secs(source.maximum_batching_window_in_seconds.unwrap_or(0).into()),
                        timeout: Duration::from_secs(def.timeout),
                    },
                    sqs: sqs.clone(),
                    invoker: invoker.clone(),
                    region: testkit::REGION.to_owned(),
                    observations: observations.clone(),
                };
                tasks.push(tokio::spawn(poller.run(stopped.clone())));
            }
            for expression in &def.schedules {
                match schedule::period(expression) {
                    Some(every) => tasks.push(tokio::spawn(schedule::run(
                        def.binary.clone(),
                        every,
                        Duration::from_secs(def.timeout),
                        invoker.clone(),
                        stopped.clone(),
                    ))),
                    None => tracing::warn!(function = logical, expression, "schedule not supported locally"),
                }
            }
        }
        Ok(LocalSystem {
            emulator,
            stack,
            api_url,
            dashboard_url,
            dashboard,
            tokens,
            issuer: Some(issuer),
            aws,
            invoker,
            observations,
            stop,
            tasks,
            cargo_lambda,
        })
    }

    /// The stack's outputs as `sam list stack-outputs` gives them (`JwtIssuerUrl` among them:
    /// the local issuer), plus the local endpoints.
    pub fn outputs(&self) -> BTreeMap<String, String> {
        let mut outputs = self.stack.outputs.clone();
        outputs.insert("ApiUrl".into(), self.api_url.clone());
        outputs.insert("EmulatorEndpoint".into(), self.emulator.endpoint.clone());
        outputs.insert("LocalDashboardUrl".into(), self.dashboard_url.clone());
        outputs.entry("JwtIssuerUrl".into()).or_insert_with(|| self.tokens.issuer().to_owned());
        outputs
    }

    /// The scope the staff routes require (the stack's `StaffScope`).
    pub fn staff_scope(&self) -> &str {
        self.stack.outputs.get("StaffScope").map_or(shared::auth::DEFAULT_STAFF_SCOPE, String::as_str)
    }

    /// Stops the API, the pollers, the schedules, the issuer and cargo lambda; the emulator
    /// stops on drop.
    pub async fn stop(mut self) {
        let _ = self.stop.send(true);
        for task in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
        if let Some(issuer) = self.issuer.take() {
            issuer.stop().await;
        }
        if let Some(child) = self.cargo_lambda.take() {
            stop_process_group(child).await;
        }
    }
}

/// The environment for running the stack's functions outside this process (`cargo lambda
/// watch`): the union of the functions' variables (they agree: each names one physical
/// resource) and the emulator as the AWS endpoint.
pub fn lambda_env(stack: &Stack, endpoint: &str) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = stack.functions.values().flat_map(|f| f.environment.clone()).collect();
    env.insert("AWS_ENDPOINT_URL".into(), endpoint.to_owned());
    env.insert("AWS_REGION".into(), testkit::REGION.into());
    env.insert("AWS_ACCESS_KEY_ID".into(), "test".into());
    env.insert("AWS_SECRET_ACCESS_KEY".into(), "test".into());
    env
}

/// Runs `cargo lambda watch` for the workspace with `lambda_env`.
async fn start_cargo_lambda(
    stack: &Stack,
    emulator: &Emulator,
    port: u16,
) -> Result<tokio::process::Child, StartError> {
    let vars: Vec<String> = lambda_env(stack, &emulator.endpoint).iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut command = tokio::process::Command::new(testkit::venv().join("bin/cargo-lambda"));
    command
        .args(["lambda", "watch", "-A", "127.0.0.1", "-P", &port.to_string(), "--env-vars", &vars.join(",")])
        .current_dir(testkit::workspace_root())
        .stdin(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    // The functions print their EMF lines to stdout, as in Lambda: read them from there for the
    // dashboard (in process they reach it through `shared::telemetry`'s sink), and pass every
    // line on to ours.
    command.stdout(std::process::Stdio::piped());
    let mut child = command.spawn()?;
    if let Some(stdout) = child.stdout.take() {
        tokio::spawn(pass_on_and_collect(stdout, crate::metrics::collected()));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        if std::time::Instant::now() > deadline {
            stop_process_group(child).await;
            return Err(StartError::CargoLambda(format!("nothing listens on port {port}")));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(child)
}

/// Copies cargo lambda's output to ours line by line, counting the EMF lines among it.
async fn pass_on_and_collect(stdout: tokio::process::ChildStdout, metrics: crate::metrics::Metrics) {
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("\"_aws\"") {
            let _ = metrics.record(&line);
        }
        println!("{line}");
    }
}

/// cargo lambda starts cargo and the functions as children: stop the whole group, by its PID.
async fn stop_process_group(mut child: tokio::process::Child) {
    if let Some(pid) = child.id() {
        let _ = tokio::process::Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).status().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), child.wait()).await;
    let _ = child.kill().await;
}
