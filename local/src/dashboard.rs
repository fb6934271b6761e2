//! The local dashboard: one static page (`dashboard.html`, inline CSS and JS, no build step)
//! and the JSON it polls, served by the runner on 127.0.0.1 beside the API. It shows what the
//! AWS dashboard shows, from the same EMF lines (`metrics`) and from the emulator (through
//! `ops::dlq`, the primitives `shop-ops dlq` runs on):
//! orders per minute, each consumer's counts and lag, queue and DLQ depths, the last events
//! (`flow`), each DLQ's messages, and a redrive button per DLQ.
//!
//! - `GET /dashboard`: the page; `GET /dashboard/state`: the JSON;
//! - `POST /dashboard/dlq/{consumer}/redrive`: moves that consumer's DLQ back to its queue.
//!
//! Loopback only, like the rest of the runner: it listens on 127.0.0.1, answers only requests
//! addressed to 127.0.0.1 or localhost (a page of another site that rebinds its name to
//! 127.0.0.1 is refused), and a redrive must carry the header [`REDRIVE_HEADER`], which a page
//! of another origin cannot send without a CORS preflight this server never grants.

use crate::flow::{self, Flow};
use crate::metrics::{Metrics, Summary};
use crate::poller::Observation;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::{get, post};
use ops::dlq::{self, DeadLetter, Depth};
use serde::Serialize;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::Stack;
use tokio::sync::{broadcast, watch};

/// The page, compiled into the binary.
pub const PAGE: &str = include_str!("dashboard.html");
/// The header a redrive request must carry (the page sends it).
pub const REDRIVE_HEADER: &str = "x-shop-dashboard";
/// Events the state lists.
pub const EVENTS_SHOWN: usize = 40;
/// Minutes of orders per minute the state lists.
pub const MINUTES_SHOWN: i64 = 15;
/// Minutes over which the lag is summarised.
pub const LAG_MINUTES: i64 = 5;
/// The emulator is read at most this often, however many pages poll.
pub const EMULATOR_READ_EVERY: Duration = Duration::from_millis(800);
/// Messages of a dead-letter queue the state lists (the page says "Showing n of depth").
pub const PEEK_MAX: usize = 10;

/// Where a function's failed input ends up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// An SQS consumer: its queue and its own dead-letter queue, which can be redriven.
    Queue { queue_url: String, dlq_url: Option<String> },
    /// A stream consumer (the projector): its on-failure destination holds records' metadata,
    /// not events, so there is nothing to redrive.
    Stream { failure_url: Option<String> },
}

/// A consumer the dashboard watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// The service name its metrics carry (its binary): `email`, `order-projector`.
    pub service: String,
    /// Its logical ID in the template.
    pub function: String,
    pub source: Source,
}

/// The consumers of a stack, in the template's order: every function with an SQS event source
/// (its dead-letter queue is the `DEAD_LETTER_QUEUE_URL` it dead-letters to itself, the queue
/// the redrive policy names) and every function with a stream event source.
pub fn watched(stack: &Stack) -> Vec<Watched> {
    let mut watched = Vec::new();
    for (logical, def) in &stack.functions {
        for source in &def.sqs {
            watched.push(Watched {
                service: def.binary.clone(),
                function: logical.clone(),
                source: Source::Queue {
                    queue_url: source.queue_url.clone(),
                    dlq_url: def.environment.get("DEAD_LETTER_QUEUE_URL").cloned(),
                },
            });
        }
        for stream in &def.streams {
            watched.push(Watched {
                service: def.binary.clone(),
                function: logical.clone(),
                source: Source::Stream { failure_url: stream.on_failure_queue_url.clone() },
            });
        }
    }
    watched
}

/// A queue's depth as the page reads it (`visible`, `inFlight`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueDepth {
    visible: u64,
    in_flight: u64,
}

impl From<&Depth> for QueueDepth {
    fn from(depth: &Depth) -> QueueDepth {
        QueueDepth { visible: depth.messages, in_flight: depth.in_flight }
    }
}

/// A dead letter as the page lists it: the fields of [`DeadLetter`] it shows, `sentAt` in Unix
/// milliseconds. Not the receive count, which every peek raises (the page redraws the list
/// only when it changes, so that a Redrive button keeps its focus), nor the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedLetter {
    message_id: String,
    event_type: Option<String>,
    event_id: Option<String>,
    order_id: Option<String>,
    correlation_id: Option<String>,
    /// `ErrorKind` (the harness dead-lettered it: `permanent`, ...) or EventBridge's
    /// `ERROR_CODE`; absent when SQS moved it after `maxReceiveCount` receives.
    error_kind: Option<String>,
    error_reason: Option<String>,
    sent_at: Option<i64>,
}

impl From<DeadLetter> for ListedLetter {
    fn from(letter: DeadLetter) -> ListedLetter {
        ListedLetter {
            message_id: letter.message_id,
            event_type: letter.event_type,
            event_id: letter.event_id,
            order_id: letter.order_id,
            correlation_id: letter.correlation_id,
            error_kind: letter.error_kind,
            error_reason: letter.error_reason,
            sent_at: letter.sent_at.map(|t| t.timestamp_millis()),
        }
    }
}

/// What the emulator holds for one consumer, as last read.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct QueueView {
    queue: Option<QueueDepth>,
    dead_letters: Option<QueueDepth>,
    messages: Vec<ListedLetter>,
}

#[derive(Debug, Clone, Default)]
struct EmulatorView {
    queues: HashMap<String, QueueView>,
    error: Option<String>,
}

pub struct Dashboard {
    pub metrics: Metrics,
    pub flow: Arc<Flow>,
    pub consumers: Vec<Watched>,
    pub api_url: String,
    sqs: aws_sdk_sqs::Client,
    last_read: tokio::sync::Mutex<Option<(Instant, EmulatorView)>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Lag {
    recent_avg_ms: Option<f64>,
    recent_max_ms: Option<f64>,
    last_ms: Option<f64>,
    samples: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConsumerState {
    service: String,
    function: String,
    source: &'static str,
    processed: f64,
    duplicate: f64,
    failed: f64,
    poison: f64,
    failed_by_kind: std::collections::BTreeMap<String, f64>,
    lag: Lag,
    queue: Option<QueueDepth>,
    /// `dlq` or `failure-destination`.
    dead_letter_kind: &'static str,
    dead_letters: Option<QueueDepth>,
    messages: Vec<ListedLetter>,
    /// Where to POST to redrive its DLQ; none for a failure destination.
    redrive: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Minute {
    minute: i64,
    placed: f64,
    rejected: f64,
}

impl Dashboard {
    pub fn new(
        metrics: Metrics,
        flow: Arc<Flow>,
        consumers: Vec<Watched>,
        api_url: String,
        aws: &aws_config::SdkConfig,
    ) -> Dashboard {
        Dashboard {
            metrics,
            flow,
            consumers,
            api_url,
            sqs: aws_sdk_sqs::Client::new(aws),
            last_read: tokio::sync::Mutex::new(None),
        }
    }

    /// The services of the consumers, for the summary.
    pub fn services(&self) -> Vec<String> {
        let mut services: Vec<String> = Vec::new();
        for c in &self.consumers {
            if !services.contains(&c.service) {
                services.push(c.service.clone());
            }
        }
        services
    }

    /// The numbers `make demo` prints: the same the page heads with.
    pub fn summary(&self) -> Summary {
        let services = self.services();
        self.metrics.read(|m| m.summary(&services))
    }

    async fn read_emulator(&self) -> EmulatorView {
        let mut view = EmulatorView::default();
        for consumer in &self.consumers {
            let (queue_url, dead_url) = match &consumer.source {
                Source::Queue { queue_url, dlq_url } => (Some(queue_url), dlq_url.as_ref()),
                Source::Stream { failure_url } => (None, failure_url.as_ref()),
            };
            let mut q = QueueView::default();
            let result: Result<(), ops::error::Failure> = async {
                if let Some(url) = queue_url {
                    q.queue = Some((&dlq::depth(&self.sqs, url).await?).into());
                }
                if let Some(url) = dead_url {
                    let depth = dlq::depth(&self.sqs, url).await?;
                    // Peek only when there is something to see: every peek is a receive. No more
                    // than the depth: the peek stops there instead of long-polling for more.
                    if depth.total() > 0 {
                        let max = usize::try_from(depth.total()).unwrap_or(PEEK_MAX).min(PEEK_MAX);
                        let letters = dlq::peek(&self.sqs, url, max).await?;
                        q.messages = letters.into_iter().map(ListedLetter::from).collect();
                    }
                    q.dead_letters = Some((&depth).into());
                }
                Ok(())
            }
            .await;
            if let Err(error) = result {
                view.error = Some(format!("could not read {}'s queues from the emulator: {error}", consumer.service));
            }
            view.queues.insert(key(consumer), q);
        }
        view
    }

    async fn emulator(&self) -> EmulatorView {
        let mut last = self.last_read.lock().await;
        if let Some((at, view)) = last.as_ref() {
            if at.elapsed() < EMULATOR_READ_EVERY {
                return view.clone();
            }
        }
        let view = self.read_emulator().await;
        *last = Some((Instant::now(), view.clone()));
        view
    }

    /// The page's JSON.
    pub async fn state(&self) -> serde_json::Value {
        let emulator = self.emulator().await;
        let now = chrono::Utc::now().timestamp_millis();
        let (summary, consumers, minutes, services, lines) = self.metrics.read(|m| {
            let summary = m.summary(&self.services());
            let consumers: Vec<ConsumerState> = self
                .consumers
                .iter()
                .map(|c| {
                    let counts = summary.consumers.iter().find(|s| s.service == c.service);
                    let count = |f: fn(&crate::metrics::ConsumerCounts) -> f64| counts.map(f).unwrap_or_default();
                    let recent = m.recent(&c.service, "EventAgeMilliseconds", now, LAG_MINUTES);
                    let view = emulator.queues.get(&key(c)).cloned().unwrap_or_default();
                    let (kind, redrive) = match &c.source {
                        Source::Queue { dlq_url: Some(_), .. } => {
                            ("dlq", Some(format!("/dashboard/dlq/{}/redrive", c.service)))
                        }
                        Source::Queue { .. } => ("dlq", None),
                        Source::Stream { .. } => ("failure-destination", None),
                    };
                    ConsumerState {
                        service: c.service.clone(),
                        function: c.function.clone(),
                        source: if matches!(c.source, Source::Queue { .. }) { "sqs" } else { "stream" },
                        processed: count(|s| s.processed),
                        duplicate: count(|s| s.duplicate),
                        failed: count(|s| s.failed),
                        poison: count(|s| s.poison),
                        failed_by_kind: counts.map(|s| s.failed_by_kind.clone()).unwrap_or_default(),
                        lag: Lag {
                            recent_avg_ms: recent.average(),
                            recent_max_ms: recent.max,
                            last_ms: m.total(&c.service, "EventAgeMilliseconds").last,
                            samples: recent.samples,
                        },
                        queue: view.queue,
                        dead_letter_kind: kind,
                        dead_letters: view.dead_letters,
                        messages: view.messages,
                        redrive,
                    }
                })
                .collect();
            let placed = m.per_minute("checkout", "OrdersPlaced", now, MINUTES_SHOWN);
            let rejected = m.per_minute("checkout", "OrdersRejected", now, MINUTES_SHOWN);
            let minutes: Vec<Minute> = placed
                .iter()
                .zip(&rejected)
                .map(|((minute, p), (_, r))| Minute { minute: *minute, placed: p.sum, rejected: r.sum })
                .collect();
            (summary, consumers, minutes, m.services(), m.lines())
        });
        // A delivery whose event the consumer's DLQ holds now was dead-lettered (the event
        // source saw it deleted from the queue like any handled message).
        let dead: std::collections::HashSet<(&str, &str)> = consumers
            .iter()
            .flat_map(|c| c.messages.iter().filter_map(|m| Some((c.service.as_str(), m.event_id.as_deref()?))))
            .collect();
        let events: Vec<serde_json::Value> = self
            .flow
            .newest(EVENTS_SHOWN)
            .into_iter()
            .map(|entry| {
                let in_dlq = entry.kind == "delivery"
                    && entry.event_id.as_deref().is_some_and(|id| dead.contains(&(entry.target.as_str(), id)));
                let mut value = serde_json::to_value(entry).unwrap_or_default();
                value["inDeadLetterQueue"] = in_dlq.into();
                value
            })
            .collect();
        json!({
            "now": now,
            "apiUrl": self.api_url,
            "summary": summary,
            "ordersPerMinute": minutes,
            "consumers": consumers,
            "services": services,
            "events": events,
            "emulatorError": emulator.error,
            "metricLines": {"counted": lines.0, "refused": lines.1},
        })
    }

    /// Moves `service`'s dead-letter messages back to its queue ([`dlq::move_by_hand`]: those
    /// it holds when the redrive starts, body and attributes unchanged); how many.
    pub async fn redrive(&self, service: &str) -> Result<u64, RedriveError> {
        let consumer = self
            .consumers
            .iter()
            .find(|c| c.service == service && matches!(c.source, Source::Queue { dlq_url: Some(_), .. }))
            .ok_or_else(|| RedriveError::Unknown(service.to_owned()))?;
        let Source::Queue { queue_url, dlq_url: Some(dlq_url) } = &consumer.source else {
            return Err(RedriveError::Unknown(service.to_owned()));
        };
        // Not while this dashboard reads the emulator: a peek hides what it reads for a moment.
        let mut last_read = self.last_read.lock().await;
        let moved = dlq::move_by_hand(&self.sqs, dlq_url, queue_url, |_, _| {}).await;
        // The next poll shows the queues as they are now, not as last read.
        *last_read = None;
        moved.map_err(|e| RedriveError::Emulator(e.to_string()))
    }
}

fn key(consumer: &Watched) -> String {
    format!("{}|{}", consumer.function, consumer.service)
}

#[derive(Debug, thiserror::Error)]
pub enum RedriveError {
    #[error("no consumer named {0} has a dead-letter queue to redrive")]
    Unknown(String),
    #[error(
        "the emulator refused the move ({0}); messages not yet moved are still in the dead-letter queue: try again"
    )]
    Emulator(String),
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    headers.insert("referrer-policy", HeaderValue::from_static("no-referrer"));
    response
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response {
    respond(status, "application/json", value.to_string())
}

fn error(status: StatusCode, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

async fn page() -> Response {
    let mut response = respond(StatusCode::OK, "text/html; charset=utf-8", PAGE);
    // Everything the page shows is put in as text, never as markup; this only backs that up.
    let policy = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; \
                  img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    response.headers_mut().insert("content-security-policy", HeaderValue::from_static(policy));
    response
}

async fn state(State(dashboard): State<Arc<Dashboard>>) -> Response {
    json_response(StatusCode::OK, &dashboard.state().await)
}

async fn redrive(State(dashboard): State<Arc<Dashboard>>, Path(service): Path<String>) -> Response {
    match dashboard.redrive(&service).await {
        Ok(moved) => json_response(StatusCode::OK, &json!({ "consumer": service, "moved": moved })),
        Err(e @ RedriveError::Unknown(_)) => error(StatusCode::NOT_FOUND, &e.to_string()),
        Err(e @ RedriveError::Emulator(_)) => error(StatusCode::BAD_GATEWAY, &e.to_string()),
    }
}

/// Whether `host` (a Host header) names this server on the loopback interface.
pub fn loopback_host(host: &str, port: u16) -> bool {
    host == format!("127.0.0.1:{port}") || host == format!("localhost:{port}")
}

/// The guard in front of every route (module docs).
async fn loopback_only(State(port): State<u16>, request: Request, next: Next) -> Response {
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !loopback_host(host, port) {
        return error(StatusCode::FORBIDDEN, "the dashboard answers only at 127.0.0.1 or localhost");
    }
    if request.method() == Method::POST {
        let origin = request.headers().get(header::ORIGIN).and_then(|o| o.to_str().ok());
        if origin.is_some_and(|o| o != format!("http://{host}")) {
            return error(StatusCode::FORBIDDEN, "a redrive comes from the dashboard page itself");
        }
        if !request.headers().contains_key(REDRIVE_HEADER) {
            let message =
                format!("send the header {REDRIVE_HEADER} (the page does): it keeps other sites from posting here");
            return error(StatusCode::FORBIDDEN, &message);
        }
    }
    next.run(request).await
}

/// The dashboard's routes, for a server on 127.0.0.1:`port`.
pub fn router(dashboard: Arc<Dashboard>, port: u16) -> axum::Router {
    axum::Router::new()
        .route("/", get(|| async { axum::response::Redirect::to("/dashboard") }))
        .route("/dashboard", get(page))
        .route("/dashboard/state", get(state))
        .route("/dashboard/dlq/{consumer}/redrive", post(redrive))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "no such page: the dashboard is at /dashboard") })
        .with_state(dashboard)
        .layer(axum::middleware::from_fn_with_state(port, loopback_only))
}

/// Serves the dashboard on `listener` until `stop`.
pub async fn serve(dashboard: Arc<Dashboard>, listener: tokio::net::TcpListener, mut stop: watch::Receiver<bool>) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or_default();
    let shutdown = async move {
        let _ = stop.changed().await;
    };
    if let Err(error) = axum::serve(listener, router(dashboard, port)).with_graceful_shutdown(shutdown).await {
        tracing::error!(%error, "dashboard stopped");
    }
}

/// Records every API request the local API answers in `flow` (a layer of the API's router):
/// route, status, order and correlation ID, never headers or the query.
pub async fn record_requests(State(flow): State<Arc<Flow>>, request: Request, next: Next) -> Response {
    let (method, path) = (request.method().to_string(), request.uri().path().to_owned());
    let response = next.run(request).await;
    let text = |name| response.headers().get(name).and_then(|v: &HeaderValue| v.to_str().ok());
    let at = chrono::Utc::now().timestamp_millis();
    let entry =
        flow::request(&method, &path, response.status().as_u16(), text("location"), text("x-correlation-id"), at);
    flow.push(entry);
    response
}

/// Records every delivery the event sources observe in `flow`, until `stop`.
pub async fn record_deliveries(
    flow: Arc<Flow>,
    services: HashMap<String, String>,
    mut observations: broadcast::Receiver<Observation>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let observation = tokio::select! {
            observation = observations.recv() => observation,
            _ = stop.changed() => return,
        };
        match observation {
            Ok(observation) => {
                flow.push(flow::delivery(&observation, &services, chrono::Utc::now().timestamp_millis()))
            }
            // Fell behind a burst: the ring shows the newest anyway.
            Err(broadcast::error::RecvError::Lagged(_)) => {}
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dashboard watching no consumer (so it never reaches the emulator), served on a free
    /// port; its base URL.
    async fn served() -> (String, watch::Sender<bool>) {
        let aws = aws_config::SdkConfig::builder().behavior_version(aws_config::BehaviorVersion::latest()).build();
        let dashboard = Dashboard::new(Metrics::default(), Arc::default(), Vec::new(), "http://api".into(), &aws);
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let base = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(serve(Arc::new(dashboard), listener, stopped));
        (base, stop)
    }

    #[tokio::test]
    async fn the_page_is_served_with_a_policy_that_allows_no_other_origin() {
        let (base, _stop) = served().await;
        let page = reqwest::get(format!("{base}/dashboard")).await.unwrap();
        assert_eq!(page.status(), 200);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        let policy = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
        assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
        assert_eq!(page.text().await.unwrap(), PAGE);
    }

    #[tokio::test]
    async fn the_state_is_json_with_the_summary_and_the_api_it_watches() {
        let (base, _stop) = served().await;
        let state: serde_json::Value =
            reqwest::get(format!("{base}/dashboard/state")).await.unwrap().json().await.unwrap();
        assert_eq!(state["apiUrl"], "http://api");
        assert_eq!(state["summary"]["ordersPlaced"], 0.0);
        assert_eq!(state["ordersPerMinute"].as_array().unwrap().len() as i64, MINUTES_SHOWN);
        assert_eq!(state["events"], json!([]));
    }

    #[tokio::test]
    async fn given_a_host_that_is_not_loopback_then_nothing_is_answered() {
        let (base, _stop) = served().await;
        let client = reqwest::Client::new();
        let rebound =
            client.get(format!("{base}/dashboard/state")).header("host", "shop.example:80").send().await.unwrap();
        assert_eq!(rebound.status(), 403);
    }

    #[tokio::test]
    async fn given_a_redrive_without_the_page_header_or_from_another_origin_then_it_is_refused() {
        let (base, _stop) = served().await;
        let client = reqwest::Client::new();
        let url = format!("{base}/dashboard/dlq/email/redrive");
        let bare = client.post(&url).send().await.unwrap();
        assert_eq!(bare.status(), 403);
        assert!(bare.text().await.unwrap().contains(REDRIVE_HEADER), "the error says what to send");
        let foreign =
            client.post(&url).header(REDRIVE_HEADER, "redrive").header("origin", "https://evil.example").send().await;
        assert_eq!(foreign.unwrap().status(), 403);
    }

    #[tokio::test]
    async fn given_a_redrive_of_a_consumer_it_does_not_know_then_404_naming_it() {
        let (base, _stop) = served().await;
        let answer = reqwest::Client::new()
            .post(format!("{base}/dashboard/dlq/nobody/redrive"))
            .header(REDRIVE_HEADER, "redrive")
            .header("origin", base.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 404);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["error"], "no consumer named nobody has a dead-letter queue to redrive");
    }

    #[tokio::test]
    async fn given_a_path_it_does_not_serve_then_404_pointing_at_the_page() {
        let (base, _stop) = served().await;
        let answer = reqwest::get(format!("{base}/orders")).await.unwrap();
        assert_eq!(answer.status(), 404);
        assert!(answer.text().await.unwrap().contains("/dashboard"));
    }

    #[test]
    fn only_loopback_names_of_this_port_are_answered() {
        assert!(loopback_host("127.0.0.1:8123", 8123));
        assert!(loopback_host("localhost:8123", 8123));
        assert!(!loopback_host("127.0.0.1:8124", 8123));
        assert!(!loopback_host("evil.example:8123", 8123), "a rebound name");
        assert!(!loopback_host("", 8123));
    }

    #[test]
    fn the_page_builds_no_markup_from_data() {
        // Every value shown goes in as text (textContent, text nodes), never as HTML.
        for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
            assert!(!PAGE.contains(sink), "the page uses {sink}");
        }
        assert!(PAGE.contains(REDRIVE_HEADER), "the page sends the redrive header");
    }
}
