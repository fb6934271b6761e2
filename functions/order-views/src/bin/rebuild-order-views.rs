//! `rebuild-order-views --into <table> [--check]`: re-folds the event store (ORDERS_TABLE) into
//! a fresh views table, created like ORDER_VIEWS_TABLE if it does not exist, and prints how the
//! live views differ as JSON on stdout (logs go to stderr).
//!
//! Exit status: 0 done (and, with `--check`, identical); 1 with `--check` when they differ;
//! 2 on a usage error or a failure.

use shared::config::{self, Env};
use std::process::ExitCode;

const USAGE: &str = "usage: rebuild-order-views --into <fresh table name> [--check]";

struct Args {
    into: String,
    check: bool,
}

fn args() -> Result<Args, String> {
    let (mut into, mut check) = (None, false);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--into" => into = Some(args.next().ok_or("--into needs a table name")?),
            "--check" => check = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let into = into.filter(|t| !t.is_empty()).ok_or("--into is required")?;
    Ok(Args { into, check })
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt().with_writer(std::io::stderr).with_target(false).init();
    let args = match args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match order_views::rebuild::run(&Env::from_process(), &config::aws().await, &args.into).await {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).unwrap_or_default());
            if args.check && !report.matches() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(error) => {
            eprintln!("rebuild failed: {error}");
            ExitCode::from(2)
        }
    }
}
