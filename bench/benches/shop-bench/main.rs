//! `shop-bench`: the benchmark report of BENCHMARKS.md in one command.
//!
//! `make bench` runs the criterion benches (handler CPU cost), then this, which measures in one
//! run: cold start and peak memory of every function against a hello-world Lambda, zipped arm64
//! sizes, requests per checkout (counted), event-driven vs synchronous latency against the local
//! emulator, and the cost per million checkouts. It writes target/bench/report.md.
//!
//! Flags: `--quick` (fewer samples, under two minutes once built), `--rebuild` (rebuild the
//! release binaries and zips even when they exist), `--out FILE`.

mod artifacts;
mod coldstart;
mod counting;
mod latency;
mod report;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

/// (iterations, warm-up iterations per emulator) of the latency section: quick, full.
pub const LATENCY_ITERATIONS: ((usize, usize), (usize, usize)) = ((15, 3), (150, 3));

pub struct Args {
    pub quick: bool,
    pub rebuild: bool,
    pub out: PathBuf,
}

fn args() -> Args {
    let root = testkit::workspace_root();
    let mut args = Args { quick: false, rebuild: false, out: root.join("target/bench/report.md") };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--quick" => args.quick = true,
            "--rebuild" => args.rebuild = true,
            "--out" => args.out = it.next().map(PathBuf::from).unwrap_or_else(|| usage()),
            // cargo bench passes --bench to every bench target.
            "--bench" => {}
            _ => usage(),
        }
    }
    args
}

fn usage() -> ! {
    eprintln!("usage: cargo bench -p bench --bench shop-bench -- [--quick] [--rebuild] [--out FILE]");
    std::process::exit(2)
}

/// The functions' memory setting (template.yaml Globals), which Lambda bills duration at.
fn template_memory_mb(root: &std::path::Path) -> u32 {
    std::fs::read_to_string(root.join("template.yaml"))
        .ok()
        .and_then(|t| t.lines().find_map(|l| l.trim().strip_prefix("MemorySize:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(128)
}

pub struct Sizes {
    pub zip: Option<u64>,
    pub binary: Option<u64>,
}

fn main() {
    let args = args();
    let root = testkit::workspace_root();
    let started = Instant::now();
    let mut timings: Vec<(String, f64)> = Vec::new();
    let mut lap = {
        let mut last = Instant::now();
        move |name: &str, timings: &mut Vec<(String, f64)>| {
            timings.push((name.to_owned(), last.elapsed().as_secs_f64()));
            last = Instant::now();
        }
    };
    // The in-process checkout prints an EMF metric line per order to stdout (Lambda's capture);
    // with no log subscriber installed here they go nowhere instead of into the report.
    shared::telemetry::metrics_to_log();
    let machine = report::machine();

    eprintln!("shop-bench: starting the emulator and provisioning the stack from template.yaml");
    let emulator = testkit::Emulator::start();
    let stack = testkit::Stack::provision(&emulator);
    let mut functions: Vec<(String, String)> =
        stack.functions.iter().map(|(logical, def)| (logical.clone(), def.binary.clone())).collect();
    functions.sort_by(|a, b| a.1.cmp(&b.1));
    let binaries: Vec<String> = functions.iter().map(|(_, b)| b.clone()).collect();
    lap("emulator and stack", &mut timings);

    let mut builds = Vec::new();
    type Ensure = fn(&std::path::Path, &[String], bool) -> Result<Vec<artifacts::Built>, String>;
    for ensure in [artifacts::ensure_host as Ensure, artifacts::ensure_arm64] {
        match ensure(&root, &binaries, args.rebuild) {
            Ok(built) => builds.extend(built),
            Err(e) => {
                eprintln!("shop-bench: {e}");
                std::process::exit(1);
            }
        }
    }
    lap("builds", &mut timings);
    let mut every: Vec<String> = binaries.clone();
    every.push(artifacts::HELLO.to_owned());
    let stale = artifacts::stale(&root, &every);

    // Cold start: every binary once per round, the order rotating, so that they share the
    // machine's noise; one untimed round first, so every binary is in the page cache.
    let memory_mb = template_memory_mb(&root);
    let mut targets: Vec<coldstart::Target> = functions
        .iter()
        .map(|(logical, binary)| coldstart::Target {
            binary: binary.clone(),
            path: artifacts::host_binary(&root, binary),
            environment: stack.function(logical).environment.clone(),
            event: coldstart::sample_event(&root, binary),
        })
        .collect();
    targets.push(coldstart::Target {
        binary: artifacts::HELLO.into(),
        path: artifacts::host_binary(&root, artifacts::HELLO),
        environment: BTreeMap::new(),
        event: coldstart::sample_event(&root, artifacts::HELLO),
    });
    let rounds = if args.quick { 10 } else { 30 };
    let mut cold: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    eprintln!("shop-bench: cold start, {rounds} rounds of {} binaries", targets.len());
    for round in 0..=rounds {
        let mut order: Vec<&coldstart::Target> = targets.iter().collect();
        order.rotate_left(round % targets.len());
        for target in order {
            match coldstart::cold_start(target, &emulator.endpoint, memory_mb) {
                Ok(ms) if round > 0 => cold.entry(target.binary.clone()).or_default().push(ms),
                Ok(_) => {}
                Err(e) => errors.push(e),
            }
        }
    }
    lap("cold start", &mut timings);
    eprintln!("shop-bench: peak memory after one invocation");
    let mut memory = BTreeMap::new();
    for target in &targets {
        match coldstart::memory_after_one_invocation(target, &emulator.endpoint, memory_mb) {
            Ok(m) => {
                memory.insert(target.binary.clone(), m);
            }
            Err(e) => errors.push(e),
        }
    }
    lap("peak memory", &mut timings);

    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    eprintln!("shop-bench: counting the requests of one order");
    let counts = runtime.block_on(counting::count_one_order(&emulator, &stack));
    drop(emulator);
    lap("request counts", &mut timings);

    let (iterations, warmup) = if args.quick { LATENCY_ITERATIONS.0 } else { LATENCY_ITERATIONS.1 };
    eprintln!("shop-bench: event-driven vs synchronous, {iterations} iterations after {warmup} warm-up");
    let latency = runtime.block_on(latency::run(iterations, warmup));
    lap("event-driven vs synchronous", &mut timings);
    drop(runtime);

    let sizes: BTreeMap<String, Sizes> = every
        .iter()
        .map(|b| {
            let sizes = Sizes {
                zip: artifacts::size(&artifacts::arm64_zip(&root, b)),
                binary: artifacts::size(&artifacts::arm64_binary(&root, b)),
            };
            (b.clone(), sizes)
        })
        .collect();

    let text = report::render(&report::Inputs {
        args: &args,
        machine,
        builds,
        stale,
        criterion: report::criterion_estimates(&root),
        cold,
        memory,
        memory_mb,
        sizes,
        counts,
        latency,
        errors,
        timings,
        total_s: started.elapsed().as_secs_f64(),
    });
    if let Some(dir) = args.out.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(&args.out, &text).expect("write the report");
    println!("{text}");
    eprintln!("shop-bench: report written to {}", args.out.display());
}
