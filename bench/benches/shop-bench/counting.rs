//! What one checkout asks of AWS, counted rather than assumed: a loopback proxy in front of the
//! emulator sees every SDK request, and one order goes through the checkout (as built) and then
//! through each consumer inline, with the counts taken between the steps. DynamoDB request
//! units are computed from the requests themselves (`bench::cost::dynamodb_units`).

use crate::latency::{as_sqs_batch, env_of, Captured, CONSUMERS};
use async_trait::async_trait;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bench::cost::{dynamodb_units, Units};
use shared::events::Outbound;
use shared::ports::{EventPublisher, PublishError, Rejected};
use shared::testing::failed_ids;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct Counts {
    /// Calls per operation, e.g. `DynamoDB.TransactWriteItems`, `EventBridge.PutEvents`.
    pub calls: BTreeMap<String, u32>,
    pub dynamodb: Units,
}

impl Counts {
    pub fn since(&self, before: &Counts) -> Counts {
        let calls = self
            .calls
            .iter()
            .map(|(k, v)| (k.clone(), v - before.calls.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect();
        let dynamodb = Units {
            write: self.dynamodb.write - before.dynamodb.write,
            read: self.dynamodb.read - before.dynamodb.read,
        };
        Counts { calls, dynamodb }
    }

    pub fn describe(&self) -> String {
        self.calls.iter().map(|(k, v)| format!("{v}× {k}")).collect::<Vec<_>>().join(", ")
    }
}

struct Proxy {
    upstream: String,
    client: reqwest::Client,
    counts: Mutex<Counts>,
}

/// `DynamoDB_20120810.PutItem` → ("DynamoDB", "PutItem"); SES v2 is REST, named by its path.
fn operation(headers: &HeaderMap, method: &Method, uri: &Uri) -> (String, String) {
    if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
        let (service, op) = target.split_once('.').unwrap_or(("?", target));
        let service = match service {
            s if s.starts_with("DynamoDB") => "DynamoDB",
            "AWSEvents" => "EventBridge",
            "AmazonSQS" => "SQS",
            other => other,
        };
        return (service.to_owned(), op.to_owned());
    }
    if uri.path().starts_with("/v2/email/outbound-emails") {
        return ("SESv2".into(), "SendEmail".into());
    }
    ("?".into(), format!("{method} {}", uri.path()))
}

async fn forward(
    State(proxy): State<Arc<Proxy>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, HeaderMap, Bytes) {
    let (service, op) = operation(&headers, &method, &uri);
    {
        let mut counts = proxy.counts.lock().unwrap();
        *counts.calls.entry(format!("{service}.{op}")).or_default() += 1;
        if service == "DynamoDB" {
            let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            counts.dynamodb += dynamodb_units(&op, &request);
        }
    }
    let url = format!("{}{}", proxy.upstream, uri.path_and_query().map(|p| p.as_str()).unwrap_or("/"));
    let mut request = proxy.client.request(method, url).body(body);
    for (name, value) in &headers {
        if !matches!(name.as_str(), "host" | "content-length" | "transfer-encoding" | "connection") {
            request = request.header(name, value);
        }
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status();
            let mut out = HeaderMap::new();
            for (name, value) in response.headers() {
                if !matches!(name.as_str(), "content-length" | "transfer-encoding" | "connection") {
                    out.insert(name, value.clone());
                }
            }
            (status, out, response.bytes().await.unwrap_or_default())
        }
        Err(e) => (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::from(e.to_string())),
    }
}

/// Publishes for real (through the proxy, so PutEvents is counted) and keeps a copy of each
/// event for the inline consumers.
struct Tee {
    inner: Arc<dyn EventPublisher>,
    copy: Captured,
}

#[async_trait]
impl EventPublisher for Tee {
    async fn put(&self, events: &[Outbound]) -> Result<Vec<Rejected>, PublishError> {
        self.copy.put(events).await?;
        self.inner.put(events).await
    }
}

/// The counts of one order: the checkout's, then each consumer's.
#[derive(Debug, Clone)]
pub struct PerHandler {
    pub checkout: Counts,
    pub consumers: BTreeMap<String, Counts>,
}

/// Starts the proxy on a free loopback port in front of `emulator`, runs one order through
/// it and stops it.
pub async fn count_one_order(emulator: &testkit::Emulator, stack: &testkit::Stack) -> Result<PerHandler, String> {
    let proxy = Arc::new(Proxy {
        upstream: emulator.endpoint.clone(),
        client: reqwest::Client::builder().no_proxy().build().map_err(|e| e.to_string())?,
        counts: Mutex::new(Counts::default()),
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.map_err(|e| e.to_string())?;
    let endpoint = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = axum::Router::new().fallback(forward).with_state(proxy.clone());
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    let result = count(&endpoint, stack, &proxy).await;
    let _ = stop.send(());
    let _ = server.await;
    result
}

async fn count(endpoint: &str, stack: &testkit::Stack, proxy: &Proxy) -> Result<PerHandler, String> {
    let aws = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(shared::config::https_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(testkit::REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new("test", "test", None, None, "bench"))
        .load()
        .await;
    let snapshot = || proxy.counts.lock().unwrap().clone();
    let mut checkout = checkout::from_env(&env_of(stack, "CheckoutFunction"), &aws).map_err(|e| e.to_string())?;
    let tee = Arc::new(Tee { inner: checkout.ports.publisher.clone(), copy: Captured::default() });
    checkout.ports.publisher = tee.clone();
    let consumers = crate::latency::consumers(stack, &aws)?;

    let before = snapshot();
    let reply = crate::latency::place(&checkout).await;
    if reply.status != 201 {
        return Err(format!("the counted order was answered {}: {}", reply.status, reply.body));
    }
    let checkout_counts = snapshot().since(&before);
    let events = tee.copy.take();
    let batch = as_sqs_batch(events.first().ok_or("the checkout published nothing")?)?;
    let mut per_consumer = BTreeMap::new();
    for name in CONSUMERS {
        let before = snapshot();
        let response = (consumers[name])(batch.clone()).await;
        if !failed_ids(&response).is_empty() {
            return Err(format!("{name} failed the counted order"));
        }
        per_consumer.insert(name.to_owned(), snapshot().since(&before));
    }
    Ok(PerHandler { checkout: checkout_counts, consumers: per_consumer })
}
