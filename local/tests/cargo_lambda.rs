//! The `cargo lambda watch` loop, once: the functions run under cargo lambda (the Lambda
//! runtime API and invoke API on 127.0.0.1), the local runner reaches them through the Invoke
//! API, and the documented `cargo lambda invoke --data-file` works against the same server.

use local::probe::Probe;
use local::system::{LocalSystem, Mode, Options};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cargo_lambda_watch_loop_serves_the_functions_against_the_emulator() {
    let port = testkit::free_port();
    let options =
        Options { mode: Mode::CargoLambda { port }, parameters: Vec::new(), local_only: Vec::new(), api_port: None };
    let system = LocalSystem::start(options).await.expect("cargo lambda watch starts");
    let probe = Probe::new(&system);
    let mut rx = system.observations.subscribe();

    // HTTP → the local API Gateway → Invoke API → cargo lambda → checkout → the emulator.
    let placed = probe.place_order("cargo-lambda-1", "cust-ada", &[("MUG", 1)], "tok_visa").await.unwrap();
    assert_eq!(placed.status, 201, "{}", placed.body);
    let order_id = placed.body["orderId"].as_str().unwrap().to_owned();

    // The event reaches a consumer that also runs under cargo lambda (its first invocation
    // compiles it, behind the other functions' builds).
    let credited = tokio::time::timeout(Duration::from_secs(240), async {
        loop {
            let obs = rx.recv().await.unwrap();
            if obs.function == "LoyaltyFunction" && obs.order_id.as_deref() == Some(order_id.as_str()) && obs.succeeded
            {
                return;
            }
        }
    })
    .await;
    assert!(credited.is_ok(), "loyalty processed the order under cargo lambda");
    assert_eq!(probe.loyalty_points("cust-ada").await.unwrap(), 12);

    // The documented command, with a sample event from events/.
    let out = tokio::process::Command::new(testkit::venv().join("bin/cargo-lambda"))
        .args(["lambda", "invoke", "checkout", "-A", "127.0.0.1", "-P", &port.to_string()])
        .args(["--data-file", "events/checkout-get-order.json"])
        .current_dir(testkit::workspace_root())
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["statusCode"], 404, "the sample's order does not exist here: {answer}");

    system.stop().await;
}
