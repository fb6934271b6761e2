//! What the logs never hold: a payment token, a customer's e-mail address, an access token.
//! Every function runs in this process under the same JSON subscriber Lambda's would use (with
//! spans, at debug level so that nothing hides below the default), through an order's whole
//! life, and so do the local API Gateway, its authorizer and the issuer.

use local::demo::options;
use local::probe::{customer, eventually, As, Probe};
use local::system::{LocalSystem, Mode};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every log line written, kept for the test to read.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_an_order_placed_mailed_shipped_and_cancelled_then_no_log_line_holds_a_token_an_address_or_a_jwt() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .json()
        .with_current_span(true)
        .with_env_filter(tracing_subscriber::EnvFilter::new("debug,aws_smithy_runtime=info,hyper=info,h2=info"))
        .with_writer(move || writer.clone())
        .init();
    shared::telemetry::metrics_to_log();
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    let probe = Probe::new(&system);

    let shipped = probe.place_order("logs-1", "cust-ada", &[("MUG", 1)], "tok_visa").await.unwrap();
    let cancelled = probe.place_order("logs-2", "cust-grace", &[("TEE", 1)], "tok_mastercard").await.unwrap();
    let declined = probe.place_order("logs-3", "cust-linus", &[("CAP", 1)], "tok_chargeDeclined").await.unwrap();
    assert_eq!((shipped.status, cancelled.status, declined.status), (201, 201, 402));
    let (a, b) = (shipped.body["orderId"].as_str().unwrap(), cancelled.body["orderId"].as_str().unwrap());
    let shipment = json!({"carrier": "UPS", "trackingId": "1Z999"});
    assert_eq!(
        probe.post(&As::Staff, &format!("/orders/{a}/shipments"), "logs-ship", &shipment).await.unwrap().status,
        200
    );
    let grace = customer("cust-grace");
    assert_eq!(
        probe.post(&grace, &format!("/orders/{b}/cancel"), "logs-cancel", &json!({})).await.unwrap().status,
        200
    );
    // Refused ones too: another customer's order, a customer on a staff route, a broken token.
    assert_eq!(probe.get(&grace, &format!("/orders/{a}")).await.unwrap().status, 404);
    assert_eq!(probe.post(&grace, &format!("/orders/{b}/shipments"), "logs-403", &shipment).await.unwrap().status, 403);
    let broken = format!("{}x", probe.token(&grace).unwrap().unwrap());
    let refused = probe.http.get(format!("{}/orders/{a}", probe.api_url)).bearer_auth(&broken).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    // Receipts, a shipping notice and a cancellation notice: SES counts them.
    let mailed = eventually(Duration::from_secs(40), || async { probe.emails_sent().await.ok().filter(|n| *n >= 4) });
    assert_eq!(mailed.await, Some(4));
    system.stop().await;

    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(logs.lines().count() > 50, "the functions logged: {} lines", logs.lines().count());
    for secret in
        ["tok_visa", "tok_mastercard", "tok_chargeDeclined", "ada@example.com", "grace@example.com", "@example.com"]
    {
        let line = logs.lines().find(|l| l.contains(secret));
        assert!(line.is_none(), "a log line holds {secret}: {}", line.unwrap_or_default());
    }
    // The access tokens sent, whole or any of their parts (a signature alone is a credential's
    // proof; the header and claims together identify it).
    let mut jwts = probe.tokens_sent();
    assert!(jwts.len() >= 4, "tokens of cust-ada, cust-grace, cust-linus and staff were sent");
    jwts.push(broken);
    for jwt in &jwts {
        let (header_and_claims, signature) = jwt.rsplit_once('.').unwrap();
        for secret in [jwt.as_str(), header_and_claims, signature] {
            let line = logs.lines().find(|l| l.contains(secret));
            assert!(line.is_none(), "a log line holds an access token: {}", line.unwrap_or_default());
        }
    }
}
