//! The dashboard in a real browser: Debian's headless Chromium, driven over WebDriver
//! (chromedriver, from `tools/install-debian-packages.sh`, which `make test` runs), against the
//! whole local system. What a person at `make dev` would do: open the page, place an order, see
//! it flow and the counters move; break a consumer, see its dead-letter queue fill, repair the
//! cause and press Redrive, see the message go back and be processed.
//!
//! `UPDATE_SCREENSHOT=1` writes the screenshot the README shows (docs/local-dashboard.png);
//! without it the screenshot goes to target/, so a test run leaves the tree as it was.
//! Deadlines with polling, never fixed sleeps.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use fantoccini::{Client, ClientBuilder, Locator};
use local::demo::options;
use local::probe::{customer, Probe};
use local::system::{LocalSystem, Mode};
use std::path::PathBuf;
use std::time::Duration;

const PATIENCE: Duration = Duration::from_secs(60);

/// chromedriver on a free port of 127.0.0.1, in a process group of its own so that it and the
/// browser it starts are stopped together, by its PID.
struct ChromeDriver {
    child: tokio::process::Child,
    url: String,
}

impl ChromeDriver {
    async fn start() -> ChromeDriver {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("chromedriver is not installed: run tools/install-debian-packages.sh (make test runs it)");
        let port = testkit::free_port();
        let child = tokio::process::Command::new(binary)
            .arg(format!("--port={port}"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(tokio::time::Instant::now() < deadline, "chromedriver did not listen on port {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        ChromeDriver { child, url: format!("http://127.0.0.1:{port}") }
    }

    async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            let _ = tokio::process::Command::new("kill").args(["-TERM", "--", &format!("-{pid}")]).status().await;
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
    }
}

/// A headless Chromium session (`--no-sandbox`: the CI runs as root, where Chromium's sandbox
/// refuses to start).
async fn browser(driver: &ChromeDriver, profile: &std::path::Path) -> Client {
    let mut chrome = serde_json::json!({
        "args": [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--window-size=1360,1500", "--hide-scrollbars", "--lang=en-GB",
            format!("--user-data-dir={}", profile.display()),
        ]
    });
    if std::path::Path::new("/usr/bin/chromium").exists() {
        chrome["binary"] = "/usr/bin/chromium".into();
    }
    let mut capabilities = serde_json::Map::new();
    capabilities.insert("goog:chromeOptions".into(), chrome);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a Chromium session through chromedriver")
}

/// The text of every element `css` matches (empty when none does yet).
async fn texts(page: &Client, css: &str) -> Vec<String> {
    let mut texts = Vec::new();
    // An element swapped by the page's next refresh between finding and reading is read again
    // on the next poll.
    for element in page.find_all(Locator::Css(css)).await.unwrap_or_default() {
        if let Ok(text) = element.text().await {
            texts.push(text);
        }
    }
    texts
}

/// Waits until the first element `css` matches reads `expected`.
async fn until_text(page: &Client, css: &str, expected: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let found = texts(page, css).await;
        if found.first().map(String::as_str) == Some(expected) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let status = [texts(page, "#status").await, texts(page, "#problem").await].concat();
            panic!("{css} reads {found:?}, not {expected:?}, after {PATIENCE:?} (page status: {status:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until any element `css` matches reads `expected`.
async fn until_any_text(page: &Client, css: &str, expected: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !texts(page, css).await.iter().any(|t| t == expected) {
        assert!(tokio::time::Instant::now() < deadline, "no {css} reads {expected:?} after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits until `css` matches at least one element.
async fn until_present(page: &Client, css: &str) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while page.find_all(Locator::Css(css)).await.map(|found| found.is_empty()).unwrap_or(true) {
        assert!(tokio::time::Instant::now() < deadline, "nothing on the page matches {css} after {PATIENCE:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn screenshot_path() -> PathBuf {
    let root = testkit::workspace_root();
    if std::env::var("UPDATE_SCREENSHOT").is_ok_and(|v| v == "1") {
        root.join("docs/local-dashboard.png")
    } else {
        root.join("target/local-dashboard.png")
    }
}

/// `consumer`'s cell `field` in the consumers table.
fn consumer_cell(consumer: &str, field: &str) -> String {
    format!("#consumers tr[data-consumer='{consumer}'] [data-field='{field}']")
}

async fn scenario(page: Client, system_api: String, probe: Probe, customers_table: String) {
    until_present(&page, "#consumers tr[data-consumer='email']").await;
    until_text(&page, "#orders-placed", "0").await;
    assert_eq!(texts(&page, "#dlqs-empty").await.len(), 1, "no dead letters yet");
    assert_eq!(texts(&page, "#api-url").await, [system_api], "the page names the API it watches");

    // An order: it appears in the flow, request then deliveries, and the counters move.
    let good = probe.place_order("dash-good", "cust-ada", &[("MUG", 1)], "tok_visa").await.unwrap();
    assert_eq!(good.status, 201, "{}", good.body);
    let good_id = good.body["orderId"].as_str().unwrap().to_owned();
    until_present(&page, &format!("#events tr[data-kind='request'][data-order-id='{good_id}']")).await;
    until_present(&page, &format!("#events tr[data-kind='delivery'][data-target='email'][data-order-id='{good_id}']"))
        .await;
    until_text(&page, "#orders-placed", "1").await;
    until_text(&page, &consumer_cell("email", "processed"), "1").await;
    until_text(&page, &consumer_cell("loyalty", "processed"), "1").await;
    // The stream's records carry no envelope; every other row carries the request's correlation ID.
    let rows = format!("#events tr[data-order-id='{good_id}']:not([data-target='order-projector']) td:nth-child(6)");
    let correlations = texts(&page, &rows).await;
    assert!(correlations.len() >= 2, "{correlations:?}");
    assert!(
        correlations.iter().all(|c| c == "demo-dash-good"),
        "the request's correlation ID on every row: {correlations:?}"
    );

    // A declined card: a rejection.
    let declined =
        probe.place_order("dash-declined", "cust-grace", &[("HOODIE", 1)], "tok_chargeDeclined").await.unwrap();
    assert_eq!(declined.status, 402, "{}", declined.body);
    until_text(&page, "#orders-rejected", "1").await;

    // A consumer fails for good: cust-ghost has no customer record, so no address to e-mail.
    let ghost = probe.place_order("dash-ghost", "cust-ghost", &[("POSTER", 1)], "tok_mastercard").await.unwrap();
    assert_eq!(ghost.status, 201, "{}", ghost.body);
    let ghost_id = ghost.body["orderId"].as_str().unwrap().to_owned();
    until_text(&page, &consumer_cell("email", "dlq"), "1").await;
    until_text(&page, "#dlq-email [data-field='depth']", "1").await;
    until_present(&page, &format!("#dlq-email tr[data-order-id='{ghost_id}']")).await;
    until_text(&page, &consumer_cell("loyalty", "processed"), "2").await;
    let delivery = format!("#events tr[data-target='email'][data-order-id='{ghost_id}'] [data-field='outcome']");
    until_text(&page, &delivery, "handled, now in its DLQ").await;
    let path = screenshot_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, page.screenshot().await.expect("a screenshot")).unwrap();

    // Repair the cause (the customer gets a record), then Redrive: the message goes back to
    // the e-mail queue, is processed, and the DLQ is empty.
    probe
        .dynamodb
        .put_item()
        .table_name(customers_table)
        .item("customerId", AttributeValue::S("cust-ghost".into()))
        .item("email", AttributeValue::S("ghost@example.com".into()))
        .item("name", AttributeValue::S("Casper".into()))
        .send()
        .await
        .unwrap();
    let button = page.find(Locator::Css("#redrive-email")).await.expect("a Redrive button for the e-mail DLQ");
    assert_eq!(button.attr("aria-label").await.unwrap().as_deref(), Some("Redrive email's dead-letter queue"));
    button.click().await.unwrap();
    until_text(&page, "#redrive-result", "Moved 1 message(s) back to email's queue.").await;
    until_present(&page, "#dlqs-empty").await;
    until_text(&page, &consumer_cell("email", "dlq"), "0").await;
    until_text(&page, &consumer_cell("email", "processed"), "2").await;
    assert_eq!(probe.emails_sent().await.unwrap(), 2, "ada's receipt, then the ghost's once repaired");

    // Whatever a caller puts in a correlation ID is shown as text, never run as markup.
    let hostile = "<img/src=x/onerror=document.title='owned'>";
    let token = probe.token(&customer("cust-ada")).unwrap().unwrap();
    let answer = probe
        .http
        .get(format!("{}/orders/{good_id}", probe.api_url))
        .bearer_auth(token)
        .header("x-correlation-id", hostile)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    until_any_text(&page, "#events tr[data-kind='request'] td:nth-child(6)", hostile).await;
    assert!(page.find_all(Locator::Css("#events img")).await.unwrap().is_empty(), "no element was made from it");
    assert_eq!(page.title().await.unwrap(), "Shop: local dashboard");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_the_local_system_then_the_dashboard_shows_orders_flowing_and_redrives_a_dead_letter_queue() {
    let system = LocalSystem::start(options(Mode::InProcess)).await.expect("the local system starts");
    assert_eq!(system.outputs()["LocalDashboardUrl"], system.dashboard_url, "the URL is among the outputs");
    let contracts = support::watch(&system);
    let probe = Probe::new(&system);
    let customers = probe.output("CustomersTableName").to_owned();
    let driver = ChromeDriver::start().await;
    let profile = std::env::temp_dir().join(format!("shop-dashboard-chromium-{}", ulid::Ulid::new()));
    let page = browser(&driver, &profile).await;
    page.goto(&system.dashboard_url).await.unwrap();

    // The scenario runs as a task so that its panic still lets the browser and chromedriver be
    // stopped before the test reports it.
    let outcome = tokio::spawn(scenario(page.clone(), system.api_url.clone(), probe, customers)).await;
    let _ = page.close().await;
    driver.stop().await;
    let _ = std::fs::remove_dir_all(&profile);
    if let Err(error) = outcome {
        system.stop().await;
        std::panic::resume_unwind(error.into_panic());
    }
    // Redriven messages included: every delivery is an instance of its contract.
    assert!(contracts.check() > 0, "events were delivered and checked against their contracts");
    system.stop().await;
}
