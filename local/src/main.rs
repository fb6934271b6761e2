//! `shop-local demo` runs a scripted scenario and stops; `shop-local dev` leaves the system
//! running for curl until Ctrl-C. `--cargo-lambda` runs the functions under `cargo lambda watch`.

use local::system::{LocalSystem, Mode, Options};

fn usage() -> ! {
    eprintln!("usage: shop-local (demo | dev [--outputs FILE] [--port PORT]) [--cargo-lambda [--invoke-port PORT]]");
    std::process::exit(2)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag =
        |name: &str| args.iter().position(|a| a == name).map(|i| args.get(i + 1).cloned().unwrap_or_else(|| usage()));
    let mode = if args.iter().any(|a| a == "--cargo-lambda") {
        let port = flag("--invoke-port").map(|p| p.parse().unwrap_or_else(|_| usage())).unwrap_or(9000);
        Mode::CargoLambda { port }
    } else {
        Mode::InProcess
    };
    match args.first().map(String::as_str) {
        Some("demo") => local::demo::main(mode).await,
        Some("dev") => {
            shared::telemetry::init();
            let options = Options {
                mode,
                parameters: Vec::new(),
                api_port: flag("--port").map(|p| p.parse().unwrap_or_else(|_| usage())),
            };
            let system = LocalSystem::start(options).await?;
            let outputs = serde_json::to_string_pretty(&system.outputs())?;
            let path = flag("--outputs").unwrap_or_else(|| ".local/stack-outputs.json".into());
            if let Some(dir) = std::path::Path::new(&path).parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&path, &outputs)?;
            // For running functions by hand: `cargo lambda watch --env-file .local/functions.env`.
            let env_file = std::path::Path::new(&path).with_file_name("functions.env");
            let env = local::system::lambda_env(&system.stack, &system.emulator.endpoint);
            std::fs::write(&env_file, env.iter().map(|(k, v)| format!("{k}={v}\n")).collect::<String>())?;
            eprintln!("\nThe shop runs locally. API: {}  emulator: {}", system.api_url, system.emulator.endpoint);
            eprintln!("Stack outputs written to {path}, the functions' environment to {}. Try:\n", env_file.display());
            eprintln!(
                "  curl -si {}/orders -H 'content-type: application/json' -H \"idempotency-key: $(uuidgen || date +%s%N)\" \\\n    -d '{{\"customerId\":\"cust-ada\",\"items\":[{{\"sku\":\"MUG\",\"quantity\":1}}],\"paymentToken\":\"tok_visa\",\"currency\":\"EUR\"}}'\n",
                system.api_url
            );
            eprintln!(
                "  then, with the orderId it answers ($ID):\n  \
                 curl -si {api}/orders/$ID/events      # the audit trail\n  \
                 curl -si -X POST {api}/orders/$ID/shipments -H 'content-type: application/json' -H 'idempotency-key: ship-1' -d '{{\"carrier\":\"UPS\",\"trackingId\":\"1Z1\"}}'   # staff: ship it\n  \
                 curl -si -X POST {api}/orders/$ID/cancel -H 'content-type: application/json' -H 'idempotency-key: cancel-1' -d '{{}}'   # or, before it ships, cancel it\n  \
                 curl -si {api}/customers/cust-ada/orders   # the read model\n",
                api = system.api_url
            );
            eprintln!("Ctrl-C stops everything.");
            tokio::signal::ctrl_c().await?;
            eprintln!("stopping...");
            system.stop().await;
            Ok(())
        }
        _ => usage(),
    }
}
