//! Reading the running system: HTTP calls to the local API, each as a customer or a staff
//! member signed in with the local issuer (or as nobody), and state read back from the
//! emulator with the AWS SDK. Used by the demo to report and by the end-to-end test to assert.

use crate::oidc::Tokens;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The staff member the demo and the tests act as on the staff routes.
pub const STAFF_MEMBER: &str = "staff-sam";

/// Whom a request is sent as: the bearer of a customer's access token (its subject is the
/// customer ID), of a staff member's (with the stack's staff scope), or of none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum As {
    Customer(String),
    Staff,
    Nobody,
}

/// As the customer `id`.
pub fn customer(id: &str) -> As {
    As::Customer(id.to_owned())
}

pub struct Probe {
    pub api_url: String,
    pub endpoint: String,
    pub outputs: std::collections::BTreeMap<String, String>,
    pub http: reqwest::Client,
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub eventbridge: aws_sdk_eventbridge::Client,
    pub tokens: Tokens,
    pub staff_scope: String,
    /// One token per caller, minted on first use (signing costs tens of ms in a debug build).
    minted: Mutex<HashMap<As, String>>,
}

/// An HTTP answer and how long it took.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub millis: f64,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type ProbeError = Box<dyn std::error::Error + Send + Sync>;

impl Probe {
    pub fn new(system: &crate::system::LocalSystem) -> Probe {
        Probe {
            api_url: system.api_url.clone(),
            endpoint: system.emulator.endpoint.clone(),
            outputs: system.outputs(),
            http: reqwest::Client::new(),
            dynamodb: aws_sdk_dynamodb::Client::new(&system.aws),
            sqs: aws_sdk_sqs::Client::new(&system.aws),
            eventbridge: aws_sdk_eventbridge::Client::new(&system.aws),
            tokens: system.tokens.clone(),
            staff_scope: system.staff_scope().to_owned(),
            minted: Mutex::new(HashMap::new()),
        }
    }

    /// The access token `who` sends (`None` for nobody).
    pub fn token(&self, who: &As) -> Result<Option<String>, ProbeError> {
        let (subject, scope) = match who {
            As::Nobody => return Ok(None),
            As::Customer(id) => (id.as_str(), None),
            As::Staff => (STAFF_MEMBER, Some(self.staff_scope.as_str())),
        };
        let mut minted = self.minted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(token) = minted.get(who) {
            return Ok(Some(token.clone()));
        }
        let token = self.tokens.access_token(subject, scope)?;
        minted.insert(who.clone(), token.clone());
        Ok(Some(token))
    }

    /// Every token sent so far (for checking that none reached a log).
    pub fn tokens_sent(&self) -> Vec<String> {
        self.minted.lock().unwrap_or_else(|p| p.into_inner()).values().cloned().collect()
    }

    fn signed(&self, request: reqwest::RequestBuilder, who: &As) -> Result<reqwest::RequestBuilder, ProbeError> {
        Ok(match self.token(who)? {
            Some(token) => request.bearer_auth(token),
            None => request,
        })
    }

    pub fn output(&self, key: &str) -> &str {
        self.outputs.get(key).map(String::as_str).unwrap_or_default()
    }

    /// `POST /orders` as `customer` (signed in: the order is theirs), paying with `payment_token`.
    pub async fn place_order(
        &self,
        key: &str,
        customer: &str,
        items: &[(&str, u32)],
        payment_token: &str,
    ) -> Result<Answer, ProbeError> {
        let items: Vec<Value> = items.iter().map(|(sku, q)| json!({"sku": sku, "quantity": q})).collect();
        let body = json!({"items": items, "paymentToken": payment_token, "currency": "EUR"});
        self.post(&As::Customer(customer.to_owned()), "/orders", key, &body).await
    }

    /// A command as `who`: `POST path` with a JSON body and an Idempotency-Key.
    pub async fn post(&self, who: &As, path: &str, key: &str, body: &Value) -> Result<Answer, ProbeError> {
        let request = self
            .http
            .post(format!("{}{path}", self.api_url))
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .header("x-correlation-id", format!("demo-{key}"))
            .body(body.to_string());
        let request = self.signed(request, who)?;
        let started = Instant::now();
        answer(request.send().await?, started).await
    }

    /// `GET path` as `who`.
    pub async fn get(&self, who: &As, path: &str) -> Result<Answer, ProbeError> {
        let request = self.signed(self.http.get(format!("{}{path}", self.api_url)), who)?;
        let started = Instant::now();
        answer(request.send().await?, started).await
    }

    /// (available, reserved) of a SKU.
    pub async fn stock(&self, sku: &str) -> Result<(i64, i64), ProbeError> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(self.output("ProductsTableName"))
            .key("sku", AttributeValue::S(sku.into()))
            .consistent_read(true)
            .send()
            .await?
            .item
            .ok_or("no such product")?;
        Ok((number(&item, "available"), number(&item, "reserved")))
    }

    pub async fn loyalty_points(&self, customer: &str) -> Result<i64, ProbeError> {
        let item = self
            .dynamodb
            .get_item()
            .table_name(self.output("LoyaltyTableName"))
            .key("customerId", AttributeValue::S(customer.into()))
            .key("entry", AttributeValue::S("BALANCE".into()))
            .consistent_read(true)
            .send()
            .await?
            .item;
        Ok(item.map(|i| number(&i, "points")).unwrap_or(0))
    }

    /// The sandbox gateway's ledger entry under `key` (a payment key, or `<payment key>#refund`);
    /// empty when there is none.
    pub async fn ledger_entry(
        &self,
        key: &str,
    ) -> Result<std::collections::HashMap<String, AttributeValue>, ProbeError> {
        let out = self
            .dynamodb
            .get_item()
            .table_name(self.output("SandboxPaymentsTableName"))
            .key("paymentKey", AttributeValue::S(key.to_owned()))
            .consistent_read(true)
            .send()
            .await?;
        Ok(out.item.unwrap_or_default())
    }

    /// Every item of a table, for summaries (the local tables are small).
    pub async fn scan(
        &self,
        output: &str,
    ) -> Result<Vec<std::collections::HashMap<String, AttributeValue>>, ProbeError> {
        let out = self.dynamodb.scan().table_name(self.output(output)).consistent_read(true).send().await?;
        Ok(out.items.unwrap_or_default())
    }

    /// Messages visible plus in flight in the queue named by a stack output.
    pub async fn depth(&self, queue_output: &str) -> Result<i64, ProbeError> {
        let depth = ops::dlq::depth(&self.sqs, self.output(queue_output)).await?;
        Ok(i64::try_from(depth.total())?)
    }

    /// The bodies in a queue, read without taking them (visibility timeout 0).
    pub async fn peek(&self, queue_output: &str) -> Result<Vec<Value>, ProbeError> {
        let out = self
            .sqs
            .receive_message()
            .queue_url(self.output(queue_output))
            .max_number_of_messages(10)
            .visibility_timeout(0)
            .send()
            .await?;
        Ok(out
            .messages
            .unwrap_or_default()
            .iter()
            .filter_map(|m| m.body().and_then(|b| serde_json::from_str(b).ok()))
            .collect())
    }

    /// How many e-mails SES accepted: its own count (`GetSendQuota.SentLast24Hours`), asked
    /// through SES's query API so as not to build the SES v1 SDK for one call. The emulator
    /// picks the service from the credential scope, which is all the signature it checks.
    pub async fn emails_sent(&self) -> Result<usize, ProbeError> {
        let scope =
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ses/aws4_request, SignedHeaders=host, Signature=0";
        let xml = self
            .http
            .post(format!("{}/", self.endpoint))
            .header("authorization", scope)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=GetSendQuota&Version=2010-12-01")
            .send()
            .await?
            .text()
            .await?;
        let sent = xml
            .split_once("<SentLast24Hours>")
            .and_then(|(_, rest)| rest.split_once("</SentLast24Hours>"))
            .and_then(|(n, _)| n.parse::<f64>().ok())
            .ok_or_else(|| format!("unexpected GetSendQuota answer: {xml}"))?;
        Ok(sent as usize)
    }

    /// Puts an event's `detail` on the bus again, as an at-least-once delivery or a replay would.
    pub async fn put_on_bus(&self, source: &str, detail_type: &str, detail: &Value) -> Result<(), ProbeError> {
        let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
            .event_bus_name(self.output("EventBusName"))
            .source(source)
            .detail_type(detail_type)
            .detail(detail.to_string())
            .build();
        let out = self.eventbridge.put_events().entries(entry).send().await?;
        if out.failed_entry_count() > 0 {
            return Err("the bus refused the event".into());
        }
        Ok(())
    }
}

async fn answer(response: reqwest::Response, started: Instant) -> Result<Answer, ProbeError> {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await?;
    let millis = started.elapsed().as_secs_f64() * 1000.0;
    Ok(Answer { status, headers, body: serde_json::from_str(&text).unwrap_or(Value::String(text)), millis })
}

/// A string attribute, or `-` when the item has none.
pub fn text(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> String {
    item.get(name).and_then(|v| v.as_s().ok()).cloned().unwrap_or_else(|| "-".into())
}

pub fn number(item: &std::collections::HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// Polls `check` until it yields a value or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
