//! `shop-local demo` runs a scripted scenario and stops; `shop-local dev` leaves the system
//! running for curl until Ctrl-C, and prints access tokens to call it with (and how to mint
//! more). `--cargo-lambda` runs the functions under `cargo lambda watch`.

use local::oidc::TokenRequest;
use local::probe::STAFF_MEMBER;
use local::system::{LocalSystem, Mode, Options};

/// How long the tokens `make dev` prints stay valid: a working day.
const DEV_TOKEN_SECONDS: u64 = 12 * 3600;

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
                local_only: Vec::new(),
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
            let issuer = system.tokens.issuer().to_owned();
            let scope = system.staff_scope().to_owned();
            let dev_token = |subject: &str, scope: Option<&str>| {
                let request = TokenRequest {
                    subject: subject.into(),
                    scope: scope.map(Into::into),
                    expires_in: Some(DEV_TOKEN_SECONDS),
                };
                system.tokens.mint(&request).map(|m| m.access_token)
            };
            let (customer, staff) = (dev_token("cust-ada", None)?, dev_token(STAFF_MEMBER, Some(&scope))?);
            eprintln!(
                "\nThe shop runs locally. API: {}  emulator: {}  token issuer: {issuer}",
                system.api_url, system.emulator.endpoint
            );
            eprintln!(
                "Dashboard: {} (live: orders, consumers, queues and DLQs with redrive, the event flow)",
                system.dashboard_url
            );
            eprintln!("Stack outputs written to {path}, the functions' environment to {}.", env_file.display());
            eprintln!(
                "\nEvery route but recommendations needs an access token (API Gateway's JWT authorizer). Two, valid {} hours:\n\n  \
                 export TOKEN='{customer}'   # cust-ada, a customer\n\n  \
                 export STAFF_TOKEN='{staff}'   # {STAFF_MEMBER}, scope {scope}: the staff routes\n",
                DEV_TOKEN_SECONDS / 3600
            );
            eprintln!(
                "More from the issuer (sub: any customer ID; scope and expires_in, up to 86400 s, optional):\n  \
                 curl -s -X POST {issuer}/token -d sub=cust-grace\n  \
                 curl -s -X POST {issuer}/token -d sub=staff-kim -d scope={scope} -d expires_in=600\n"
            );
            eprintln!(
                "Try (the order is the token's customer's):\n  \
                 curl -si {api}/orders -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -H \"idempotency-key: $(uuidgen || date +%s%N)\" \\\n    \
                 -d '{{\"items\":[{{\"sku\":\"MUG\",\"quantity\":1}}],\"paymentToken\":\"tok_visa\",\"currency\":\"EUR\"}}'\n",
                api = system.api_url
            );
            eprintln!(
                "  then, with the orderId it answers ($ID):\n  \
                 curl -si {api}/orders/$ID/events -H \"authorization: Bearer $TOKEN\"   # the audit trail\n  \
                 curl -si {api}/orders/$ID/events   # without a token: 401 from API Gateway, no function runs\n  \
                 curl -si -X POST {api}/orders/$ID/shipments -H \"authorization: Bearer $STAFF_TOKEN\" -H 'content-type: application/json' -H 'idempotency-key: ship-1' -d '{{\"carrier\":\"UPS\",\"trackingId\":\"1Z1\"}}'   # staff: ship it\n  \
                 curl -si -X POST {api}/orders/$ID/cancel -H \"authorization: Bearer $TOKEN\" -H 'content-type: application/json' -H 'idempotency-key: cancel-1' -d '{{}}'   # or, before it ships, cancel it\n  \
                 curl -si {api}/customers/cust-ada/orders -H \"authorization: Bearer $TOKEN\"   # the read model: your own orders only\n",
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
