//! The report: every figure of one run, as markdown, with ratios against baselines measured
//! in the same run.

use crate::coldstart::Memory;
use crate::counting::PerHandler;
use crate::latency::{Results, CONSUMERS, VARIANTS};
use crate::{artifacts, Args, Sizes};
use bench::cost::{self, LambdaUse, Usage};
use bench::stats::{median, summary, Summary};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Inputs<'a> {
    pub args: &'a Args,
    pub machine: String,
    pub builds: Vec<artifacts::Built>,
    pub stale: Vec<PathBuf>,
    pub criterion: BTreeMap<String, Estimate>,
    pub cold: BTreeMap<String, Vec<f64>>,
    pub memory: BTreeMap<String, Memory>,
    pub memory_mb: u32,
    pub sizes: BTreeMap<String, Sizes>,
    pub counts: Result<PerHandler, String>,
    pub latency: Result<Results, String>,
    pub errors: Vec<String>,
    pub timings: Vec<(String, f64)>,
    pub total_s: f64,
}

fn sh(command: &str) -> String {
    Command::new("sh")
        .args(["-c", command])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim_end().to_owned())
        .unwrap_or_else(|e| format!("({command}: {e})"))
}

/// What this machine is: `nproc`, `lscpu | head`, `free -h`, the toolchain.
pub fn machine() -> String {
    format!(
        "$ nproc\n{}\n$ lscpu | head -n 14\n{}\n$ free -h\n{}\n$ rustc --version\n{}",
        sh("nproc"),
        sh("lscpu | head -n 14"),
        sh("free -h"),
        sh("rustc --version")
    )
}

/// A criterion estimate, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Estimate {
    pub median: f64,
    pub mean: f64,
    pub mean_low: f64,
    pub mean_high: f64,
}

/// The estimates criterion left under target/criterion/<group>/<bench>/new/.
pub fn criterion_estimates(root: &Path) -> BTreeMap<String, Estimate> {
    let mut found = BTreeMap::new();
    for group in ["checkout", "consumer"] {
        let dir = root.join("target/criterion").join(group);
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path().join("new/estimates.json");
            let Ok(text) = std::fs::read_to_string(&path) else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
            let num = |p: &str| v.pointer(p).and_then(|x| x.as_f64()).unwrap_or(f64::NAN);
            found.insert(
                format!("{group}/{}", entry.file_name().to_string_lossy()),
                Estimate {
                    median: num("/median/point_estimate"),
                    mean: num("/mean/point_estimate"),
                    mean_low: num("/mean/confidence_interval/lower_bound"),
                    mean_high: num("/mean/confidence_interval/upper_bound"),
                },
            );
        }
    }
    found
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() {
        format!("{:.2}×", a / b)
    } else {
        "–".into()
    }
}

fn kib(bytes: Option<u64>) -> String {
    bytes.map(|b| format!("{:.0}", b as f64 / 1024.0)).unwrap_or_else(|| "–".into())
}

fn short(function: &str) -> String {
    function.trim_end_matches("Function").to_lowercase()
}

pub fn render(i: &Inputs) -> String {
    let mut r = String::new();
    let mode = if i.args.quick { "quick (`make bench-quick`)" } else { "full (`make bench`)" };
    let commit = sh("git rev-parse --short HEAD");
    let dirty = if sh("git status --porcelain").is_empty() { "" } else { " with uncommitted changes" };
    let _ = writeln!(r, "# Benchmark report\n");
    let _ = writeln!(
        r,
        "Mode: {mode}. Commit {commit}{dirty}. Date: {}. The run took {:.0} s.\n",
        sh("date -u +%Y-%m-%dT%H:%MZ"),
        i.total_s
    );
    let _ = writeln!(r, "```\n{}\n```\n", i.machine);

    // 1. Handler CPU cost.
    let _ = writeln!(r, "## 1. Handler CPU cost, in-memory ports (criterion)\n");
    let event_p50_ms = i.latency.as_ref().ok().and_then(|l| median(&l.event_response));
    if i.criterion.is_empty() {
        let _ = writeln!(
            r,
            "No criterion results under target/criterion: run `cargo bench -p bench --bench handlers` first.\n"
        );
    } else {
        let _ = writeln!(
            r,
            "| handler | median | mean [95% CI] | budget | median / budget |\n| --- | ---: | ---: | ---: | ---: |"
        );
        for (name, e) in &i.criterion {
            let budget_us = if name.starts_with("checkout/") { 50.0 } else { 20.0 };
            let _ = writeln!(
                r,
                "| {name} | {:.1} µs | {:.1} µs [{:.1}, {:.1}] | {budget_us:.0} µs | {:.2} |",
                e.median / 1e3,
                e.mean / 1e3,
                e.mean_low / 1e3,
                e.mean_high / 1e3,
                e.median / 1e3 / budget_us
            );
        }
        if let (Some(c), Some(p50)) = (i.criterion.get("checkout/place-order"), event_p50_ms) {
            let _ = writeln!(
                r,
                "\nThe checkout's CPU time is {:.2}% of its event-driven p50 response time measured in section 2 ({p50:.1} ms): the rest is waiting on the network.",
                c.median / 1e6 / p50 * 100.0
            );
        }
        let _ = writeln!(r);
    }

    // 2. Event-driven vs synchronous.
    let _ = writeln!(r, "## 2. Event-driven vs synchronous (local emulator, real SDK)\n");
    match &i.latency {
        Err(e) => {
            let _ = writeln!(r, "Not measured: {e}\n");
        }
        Ok(l) => {
            let ev = summary(&l.event_response);
            let _ = writeln!(
                r,
                "{} iterations on {} fresh emulators (at most {} each, after {} warm-up); in each, one event-driven order (then a wait until all five consumers finished) and one synchronous order per variant, in rotating order. Milliseconds.\n",
                l.iterations, l.segments, crate::latency::SEGMENT, l.warmup
            );
            let _ = writeln!(r, "| consumers | synchronous p50 / p95 / p99 | event-driven p50 / p95 / p99 | sync ÷ event-driven p50 / p95 / p99 | event-driven faster by (p50) |\n| --- | ---: | ---: | ---: | ---: |");
            for k in VARIANTS {
                let names: Vec<String> = CONSUMERS[..k].iter().map(|c| short(c)).collect();
                if let (Some(s), Some(e)) = (l.sync_response.get(&k).and_then(|v| summary(v)), ev) {
                    let _ = writeln!(
                        r,
                        "| {k} ({}) | {:.1} / {:.1} / {:.1} | {:.1} / {:.1} / {:.1} | {} / {} / {} | {:.0}% |",
                        names.join(", "),
                        s.p50,
                        s.p95,
                        s.p99,
                        e.p50,
                        e.p95,
                        e.p99,
                        ratio(s.p50, e.p50),
                        ratio(s.p95, e.p95),
                        ratio(s.p99, e.p99),
                        (1.0 - e.p50 / s.p50) * 100.0
                    );
                }
            }
            // moto matches the rules and delivers to the five queues and the archive inside the
            // PutEvents call; EventBridge answers once it has accepted the event and fans out
            // afterwards. The same iterations without that call show what the emulator adds.
            let without_put: Vec<f64> = l.event_response.iter().zip(&l.event_put_events).map(|(e, p)| e - p).collect();
            if let Some(w) = summary(&without_put) {
                let _ = writeln!(
                    r,
                    "\nThe event-driven answer includes moto's PutEvents call (p50 {:.1} ms), inside which moto matches the rules and delivers to the five queues and the archive; EventBridge fans out after answering. The same iterations without that call:\n",
                    median(&l.event_put_events).unwrap_or(0.0)
                );
                let _ = writeln!(r, "| consumers | event-driven minus its PutEvents p50 / p95 / p99 | sync ÷ that, p50 / p95 / p99 | faster by (p50) |\n| --- | ---: | ---: | ---: |");
                for k in VARIANTS {
                    if let Some(s) = l.sync_response.get(&k).and_then(|v| summary(v)) {
                        let _ = writeln!(
                            r,
                            "| {k} | {:.1} / {:.1} / {:.1} | {} / {} / {} | {:.0}% |",
                            w.p50,
                            w.p95,
                            w.p99,
                            ratio(s.p50, w.p50),
                            ratio(s.p95, w.p95),
                            ratio(s.p99, w.p99),
                            (1.0 - w.p50 / s.p50) * 100.0
                        );
                    }
                }
            }
            let thirds = |v: &[f64]| {
                let third = v.len() / 3;
                (median(&v[..third]), median(&v[v.len() - third..]))
            };
            if let (Some(s5), true) = (l.sync_response.get(&5), l.event_response.len() >= 3) {
                let ((e1, e3), (s1, s3)) = (thirds(&l.event_response), thirds(s5));
                let f = |x: Option<f64>| x.map(|x| format!("{x:.1}")).unwrap_or_default();
                let _ = writeln!(
                    r,
                    "\nDrift check (p50 of the first vs the last third of the iterations): event-driven {} → {} ms, synchronous with 5 {} → {} ms.",
                    f(e1), f(e3), f(s1), f(s3)
                );
            }
            let fmt = |s: Option<Summary>| {
                s.map(|s| format!("{:.1} / {:.1} / {:.1}", s.p50, s.p95, s.p99)).unwrap_or_else(|| "–".into())
            };
            let _ = writeln!(r, "\nEvent-driven, end to end (from the request until the consumers' messages were processed and deleted):\n");
            let _ = writeln!(r, "| consumers | p50 / p95 / p99 |\n| --- | ---: |");
            for k in VARIANTS {
                let _ = writeln!(r, "| first {k} | {} |", fmt(l.event_e2e.get(&k).and_then(|v| summary(v))));
            }
            let windows: Vec<String> = l.batching_window_s.iter().map(|w| w.to_string()).collect();
            let _ = writeln!(
                r,
                "\nThe consumers' event sources have `MaximumBatchingWindowInSeconds` of {} s (template.yaml), as Lambda's SQS poller waits that long to fill a batch; the end-to-end time includes it.\n",
                windows.join(", ")
            );
            let _ = writeln!(r, "Parts of the answers (the consumers' inline handler durations are the basis of section 5):\n\n| part | p50 / p95 / p99 |\n| --- | ---: |");
            let _ = writeln!(
                r,
                "| event-driven: the PutEvents call inside its answer | {} |",
                fmt(summary(&l.event_put_events))
            );
            let _ = writeln!(
                r,
                "| synchronous: the checkout alone (no PutEvents) | {} |",
                fmt(summary(&l.sync_checkout_part))
            );
            for c in CONSUMERS {
                let _ = writeln!(r, "| {} | {} |", short(c), fmt(l.consumer_duration.get(c).and_then(|v| summary(v))));
            }
            if !l.errors.is_empty() {
                let _ = writeln!(r, "\n{} error(s) during the run; first: {}", l.errors.len(), l.errors[0]);
            }
            let _ = writeln!(r);
        }
    }

    // 3. Cold start and memory.
    let _ = writeln!(r, "## 3. Cold start proxy and peak memory (host x86_64 release builds)\n");
    let hello_cold = i.cold.get(artifacts::HELLO).and_then(|v| median(v));
    let hello_rss = i.memory.get(artifacts::HELLO).map(|m| m.peak_kib as f64);
    let runs = i.cold.values().map(Vec::len).max().unwrap_or(0);
    let _ = writeln!(r, "Spawn → first `GET /runtime/invocation/next` on a loopback Runtime API stub, median of {runs} runs each; peak RSS (VmHWM) after one invocation of the function's sample event (events/) against the emulator.\n");
    let _ = writeln!(r, "| binary | cold start median (p95) | × hello-world | peak RSS | × hello-world | its answer |\n| --- | ---: | ---: | ---: | ---: | --- |");
    for (binary, samples) in &i.cold {
        let s = summary(samples);
        let m = i.memory.get(binary);
        let _ = writeln!(
            r,
            "| {binary} | {} | {} | {} | {} | {} |",
            s.map(|s| format!("{:.1} ms ({:.1})", s.p50, s.p95)).unwrap_or_default(),
            s.zip(hello_cold).map(|(s, h)| ratio(s.p50, h)).unwrap_or_default(),
            m.map(|m| format!("{:.1} MiB", m.peak_kib as f64 / 1024.0)).unwrap_or_else(|| "–".into()),
            m.zip(hello_rss).map(|(m, h)| ratio(m.peak_kib as f64, h)).unwrap_or_default(),
            m.map(|m| m.answer.clone()).unwrap_or_default()
        );
    }
    let _ = writeln!(r);

    // 4. Size.
    let _ = writeln!(r, "## 4. Size: arm64 Lambda zips (`cargo lambda build --release --arm64 --output-format zip`)\n");
    let hello_zip = i.sizes.get(artifacts::HELLO).and_then(|s| s.zip);
    let _ = writeln!(r, "| binary | bootstrap.zip | bootstrap | zip × hello-world |\n| --- | ---: | ---: | ---: |");
    for (binary, s) in &i.sizes {
        let _ = writeln!(
            r,
            "| {binary} | {} KiB | {} KiB | {} |",
            kib(s.zip),
            kib(s.binary),
            s.zip.zip(hello_zip).map(|(z, h)| ratio(z as f64, h as f64)).unwrap_or_default()
        );
    }
    let _ = writeln!(r);

    // 5. Cost.
    let _ = writeln!(r, "## 5. Cost per 1M checkouts\n");
    match (&i.counts, &i.latency) {
        (Ok(counts), Ok(l)) => render_cost(&mut r, counts, l, i.memory_mb),
        (Err(e), _) | (_, Err(e)) => {
            let _ = writeln!(r, "Not computed: {e}\n");
        }
    }

    // How the run went.
    let _ = writeln!(r, "## This run\n");
    if i.builds.is_empty() {
        let _ = writeln!(r, "Builds: reused the existing release binaries and zips (`--rebuild` rebuilds them).");
    }
    for b in &i.builds {
        let _ = writeln!(r, "Built: `{}` in {:.0} s.", b.command, b.took.as_secs_f64());
    }
    if !i.stale.is_empty() {
        let _ = writeln!(
            r,
            "\n**Warning:** {} artifact(s) are older than the sources (e.g. {}): rerun with `--rebuild`.",
            i.stale.len(),
            i.stale[0].display()
        );
    }
    let phases: Vec<String> = i.timings.iter().map(|(n, s)| format!("{n} {s:.0} s")).collect();
    let _ = writeln!(r, "\nPhases: {}.", phases.join(", "));
    if !i.errors.is_empty() {
        let _ = writeln!(r, "\nErrors: {}", i.errors.join("; "));
    }
    r
}

fn render_cost(r: &mut String, counts: &PerHandler, l: &Results, memory_mb: u32) {
    let p50 = |v: Option<&Vec<f64>>| v.and_then(|v| median(v)).unwrap_or(0.0);
    let mut lambdas = vec![LambdaUse {
        function: "checkout".into(),
        invocations: 1.0,
        duration_ms: p50(Some(&l.event_response)),
        memory_mb,
        dynamodb: counts.checkout.dynamodb,
    }];
    for c in CONSUMERS {
        lambdas.push(LambdaUse {
            function: short(c),
            invocations: 1.0,
            duration_ms: p50(l.consumer_duration.get(c)),
            memory_mb,
            dynamodb: counts.consumers.get(c).map(|c| c.dynamodb).unwrap_or_default(),
        });
    }
    let events = counts.checkout.calls.get("EventBridge.PutEvents").copied().unwrap_or(0) as f64
        + counts
            .consumers
            .values()
            .map(|c| c.calls.get("EventBridge.PutEvents").copied().unwrap_or(0) as f64)
            .sum::<f64>();
    // Per consumer and order: EventBridge's SendMessage into the queue, then the poller's
    // ReceiveMessage and DeleteMessageBatch (an order per batch: the worst case, low traffic).
    let sqs = 3.0 * CONSUMERS.len() as f64;
    let usage = Usage { http_api_requests: 1.0, lambdas, eventbridge_events: events, sqs_requests: sqs };
    let _ = writeln!(r, "Requests one order makes, counted by a proxy in front of the emulator:\n\n| handler | requests | DynamoDB WRU / RRU |\n| --- | --- | ---: |");
    let _ = writeln!(
        r,
        "| checkout | {} | {} / {} |",
        counts.checkout.describe(),
        counts.checkout.dynamodb.write,
        counts.checkout.dynamodb.read
    );
    for c in CONSUMERS {
        if let Some(n) = counts.consumers.get(c) {
            let _ = writeln!(r, "| {} | {} | {} / {} |", short(c), n.describe(), n.dynamodb.write, n.dynamodb.read);
        }
    }
    let lines = cost::per_million_checkouts(&usage);
    let _ = writeln!(r, "\nDurations are this run's p50s (checkout: event-driven response; consumers: inline handler), billed per started ms at {memory_mb} MB. SQS: {sqs} requests per order (per consumer one SendMessage by EventBridge, one ReceiveMessage and one DeleteMessageBatch by the poller, one order per batch). Prices: {}, {}, list prices as known, not fetched.\n", cost::REGION, cost::PRICES_AS_OF);
    let _ = writeln!(r, "| item | quantity per 1M checkouts | USD |\n| --- | ---: | ---: |");
    for line in &lines {
        let _ = writeln!(r, "| {} | {:.0} {} | {:.2} |", line.item, line.quantity, line.unit, line.usd);
    }
    let _ = writeln!(r, "| **total** | | **{:.2}** |\n", cost::total(&lines));
    let _ = writeln!(
        r,
        "Not in the total (not among the items asked for): the receipt e-mail, SES at ${:.2} per 1,000, is ${:.2} per 1M checkouts; CloudWatch Logs ingestion; the pollers' empty long polls and the outbox relay's schedule, which cost the same at any volume.\n",
        cost::SES_PER_EMAIL * 1000.0,
        cost::SES_PER_EMAIL * 1e6
    );
}
