//! `shop-ops`: see the crate documentation (`ops/src/lib.rs`) and README "Inspecting and
//! redriving a dead-letter queue". Exit status: 0 done; 1 failed (or `--check` found
//! differences); 2 refused or a usage error (nothing was done).

use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};
use ops::error::Failure;
use ops::report::Done;
use ops::target::{self, Choice, Consumer};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(
    name = "shop-ops",
    version,
    about = "Operate the shop, deployed or local: dead-letter queues, archive replay, seed data, orders, the read model",
    long_about = "Operate the shop, deployed or local: dead-letter queues, archive replay, seed data, orders, the read \
                  model.\n\nThe target is a deployed stack (--stack NAME: AWS credentials and region as the aws CLI \
                  takes them, names from the stack's outputs) or the local one (--local: .local/stack-outputs.json, \
                  written by `make dev`; the default when that file exists)."
)]
struct Cli {
    /// A deployed stack (its CloudFormation name, e.g. shop).
    #[arg(long, global = true, value_name = "NAME", conflicts_with = "local")]
    stack: Option<String>,
    /// The local stack `make dev` runs (default when .local/stack-outputs.json exists).
    #[arg(long, global = true)]
    local: bool,
    /// The local stack's outputs file.
    #[arg(long, global = true, value_name = "FILE", conflicts_with = "stack")]
    outputs: Option<PathBuf>,
    /// AWS region of --stack, over AWS_REGION and the profile's.
    #[arg(long, global = true, value_name = "REGION")]
    region: Option<String>,
    /// One JSON document on stdout, for scripts (a failure as {"error", "exit"}); progress stays on stderr.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The consumers' dead-letter queues.
    #[command(subcommand)]
    Dlq(Dlq),
    /// Replay archived events onto the bus (all consumers, or one).
    Replay {
        /// Start of the range of event times (RFC 3339, e.g. 2026-01-02T10:00:00Z).
        #[arg(long, value_parser = rfc3339)]
        from: DateTime<Utc>,
        /// End of the range (exclusive).
        #[arg(long, value_parser = rfc3339)]
        to: DateTime<Utc>,
        /// Only this consumer's rule receives the events.
        #[arg(long, value_enum)]
        consumer: Option<Consumer>,
        /// Replay without asking.
        #[arg(long)]
        yes: bool,
        /// In AWS, follow the replay until it ends.
        #[arg(long)]
        wait: bool,
    },
    /// Load the catalogue, stock and customers of a data file (idempotent).
    Seed {
        #[arg(long, default_value = "tools/seed.json", value_name = "FILE")]
        file: PathBuf,
        /// Set existing products' available stock to the file's (kept otherwise).
        #[arg(long)]
        reset_stock: bool,
    },
    /// Orders, from the event store.
    #[command(subcommand)]
    Orders(Orders),
    /// The read model.
    #[command(subcommand)]
    Projections(Projections),
}

#[derive(Debug, Subcommand)]
enum Dlq {
    /// Depth of every consumer's queue and dead-letter queue.
    List,
    /// The messages of a consumer's dead-letter queue, left in the queue.
    Show {
        #[arg(value_enum)]
        consumer: Consumer,
        /// Show at most this many.
        #[arg(long, default_value_t = 100)]
        max: usize,
    },
    /// Move a consumer's dead letters back to its queue.
    Redrive {
        #[arg(value_enum)]
        consumer: Consumer,
        /// In AWS, return once the move task has started.
        #[arg(long)]
        no_wait: bool,
        /// In AWS, at most this many messages a second (SQS's default otherwise).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=500))]
        rate: Option<i32>,
    },
    /// The consumer's recent message move tasks (AWS).
    RedriveStatus {
        #[arg(value_enum)]
        consumer: Consumer,
    },
    /// Delete every message of a consumer's dead-letter queue, for good.
    Purge {
        #[arg(value_enum)]
        consumer: Consumer,
        /// Yes, delete them.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum Orders {
    /// An order's status, lines and history.
    Show {
        /// The order ID (a ULID).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum Projections {
    /// Fold every order into a fresh views table and compare it with the live one.
    Rebuild {
        /// The fresh table (created like the live one); by default <live>-rebuild-<time>.
        #[arg(long, value_name = "TABLE")]
        into: Option<String>,
        /// Exit 1 when the live views differ.
        #[arg(long)]
        check: bool,
    },
}

fn rfc3339(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{e}: give an RFC 3339 time such as 2026-01-02T10:00:00Z"))
}

async fn run(cli: &Cli) -> Result<Done, Failure> {
    let choice = Choice {
        stack: cli.stack.clone(),
        local: cli.local,
        outputs_file: cli.outputs.clone(),
        region: cli.region.clone(),
    };
    let target = target::resolve(&choice).await?;
    match &cli.command {
        Command::Dlq(Dlq::List) => ops::dlq::list(&target).await,
        Command::Dlq(Dlq::Show { consumer, max }) => ops::dlq::show(&target, *consumer, *max).await,
        Command::Dlq(Dlq::Redrive { consumer, no_wait, rate }) => {
            ops::dlq::redrive(&target, *consumer, !no_wait, *rate).await
        }
        Command::Dlq(Dlq::RedriveStatus { consumer }) => ops::dlq::redrive_status(&target, *consumer).await,
        Command::Dlq(Dlq::Purge { consumer, yes }) => ops::dlq::purge(&target, *consumer, *yes).await,
        Command::Replay { from, to, consumer, yes, wait } => {
            let request = ops::replay::Request { from: *from, to: *to, consumer: *consumer, yes: *yes, wait: *wait };
            ops::replay::replay(&target, &request, &mut ops::replay::Terminal).await
        }
        Command::Seed { file, reset_stock } => ops::seed::seed(&target, file, *reset_stock).await,
        Command::Orders(Orders::Show { id }) => ops::orders::show(&target, id).await,
        Command::Projections(Projections::Rebuild { into, check }) => {
            ops::orders::rebuild(&target, into.as_deref(), *check).await
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Library logs (the rebuild's) on stderr, warnings and above unless RUST_LOG says otherwise;
    // not the credential chain's probes (IMDS and so on): a missing credential is explained once.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn,aws_config=error".into()),
        )
        .init();
    match run(&cli).await {
        Ok(done) => {
            if cli.json {
                println!("{}", serde_json::to_string_pretty(&done.json).unwrap_or_default());
            } else {
                println!("{}", done.text);
            }
            ExitCode::from(done.exit)
        }
        Err(failure) => {
            eprintln!("shop-ops: {failure}");
            if cli.json {
                println!("{}", serde_json::json!({"error": failure.message, "exit": failure.exit}));
            }
            ExitCode::from(failure.exit)
        }
    }
}
