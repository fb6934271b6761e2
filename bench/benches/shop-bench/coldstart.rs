//! Cold-start proxy and memory: a function's release binary is started as Lambda starts it
//! (its environment, `AWS_LAMBDA_RUNTIME_API` pointing at our stub) and timed from spawn to its
//! first poll for work, which is where Lambda's init phase ends. Peak RSS is read after the
//! stub has handed it one invocation and received its answer.

use bench::runtime_stub::{Answer, Invocation, RuntimeStub};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One binary to start, with the environment its template entry gives it.
#[derive(Debug, Clone)]
pub struct Target {
    pub binary: String,
    pub path: PathBuf,
    pub environment: BTreeMap<String, String>,
    /// The sample event (events/) its one measured invocation gets.
    pub event: Option<PathBuf>,
}

/// What Lambda puts in every sandbox's environment, plus dummy credentials and the emulator.
fn lambda_environment(target: &Target, runtime_api: &str, endpoint: &str, memory_mb: u32) -> BTreeMap<String, String> {
    let mut env = target.environment.clone();
    let name = &target.binary;
    for (k, v) in [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.clone()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", memory_mb.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "2026/01/01/[$LATEST]bench".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_LAMBDA_LOG_LEVEL", "INFO".into()),
        ("AWS_REGION", testkit::REGION.into()),
        ("AWS_DEFAULT_REGION", testkit::REGION.into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("_HANDLER", "bootstrap".into()),
        ("TZ", ":UTC".into()),
    ] {
        env.insert(k.to_owned(), v);
    }
    env
}

fn spawn(target: &Target, runtime_api: &str, endpoint: &str, memory_mb: u32) -> std::io::Result<(Child, Instant)> {
    let mut command = Command::new(&target.path);
    command
        // Only Lambda's variables: nothing of this shell (RUST_LOG, AWS_PROFILE, ...) leaks in.
        .env_clear()
        .envs(lambda_environment(target, runtime_api, endpoint, memory_mb))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let started = Instant::now();
    Ok((command.spawn()?, started))
}

/// Ends a process we started, by its PID.
fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Milliseconds from spawn to the first `GET /runtime/invocation/next`.
pub fn cold_start(target: &Target, endpoint: &str, memory_mb: u32) -> Result<f64, String> {
    let stub = RuntimeStub::start(None).map_err(|e| e.to_string())?;
    let (child, started) =
        spawn(target, &stub.api(), endpoint, memory_mb).map_err(|e| format!("{}: {e}", target.binary))?;
    let polled = stub.wait_first_poll(Duration::from_secs(10));
    stop(child);
    let polled = polled.ok_or_else(|| format!("{} never polled the Runtime API", target.binary))?;
    Ok(polled.duration_since(started).as_secs_f64() * 1000.0)
}

/// After one invocation: peak resident memory (VmHWM) in KiB and a word on the answer.
#[derive(Debug, Clone)]
pub struct Memory {
    pub peak_kib: u64,
    pub answer: String,
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What the function said, in a few words: the HTTP status of an API answer, the failed
/// records of a batch answer, or the error type.
fn describe(answer: &Answer) -> String {
    let json = |body: &[u8]| serde_json::from_slice::<serde_json::Value>(body).unwrap_or_default();
    match answer {
        Answer::Response(body) => {
            let v = json(body);
            if let Some(status) = v.get("statusCode") {
                format!("HTTP {status}")
            } else if let Some(failures) = v.get("batchItemFailures").and_then(|f| f.as_array()) {
                format!("batch, {} failed record(s)", failures.len())
            } else {
                "response".into()
            }
        }
        Answer::Error(body) => format!("error {}", json(body)["errorType"].as_str().unwrap_or("?")),
        Answer::InitError(body) => format!("init error {}", json(body)["errorType"].as_str().unwrap_or("?")),
    }
}

pub fn memory_after_one_invocation(target: &Target, endpoint: &str, memory_mb: u32) -> Result<Memory, String> {
    let event = target.event.as_ref().ok_or_else(|| format!("no sample event for {}", target.binary))?;
    let payload = std::fs::read(event).map_err(|e| format!("{}: {e}", event.display()))?;
    let stub = RuntimeStub::start(Some(Invocation {
        request_id: ulid::Ulid::new().to_string(),
        function_arn: format!("arn:aws:lambda:{}:123456789012:function:{}", testkit::REGION, target.binary),
        payload,
    }))
    .map_err(|e| e.to_string())?;
    let (child, _) = spawn(target, &stub.api(), endpoint, memory_mb).map_err(|e| format!("{}: {e}", target.binary))?;
    let answer = stub.wait_answer(Duration::from_secs(30));
    // The answer is posted before the next poll; let that poll arrive so the peak includes the
    // whole invocation, response included.
    std::thread::sleep(Duration::from_millis(100));
    let peak = vm_hwm_kib(child.id());
    stop(child);
    let answer = answer.ok_or_else(|| format!("{} did not answer its invocation", target.binary))?;
    Ok(Memory { peak_kib: peak.ok_or("no VmHWM in /proc")?, answer: describe(&answer) })
}

/// The sample event of a binary: events/<binary>-*.json (the first, by name), or for the
/// hello-world any consumer sample (it echoes whatever it gets).
pub fn sample_event(root: &Path, binary: &str) -> Option<PathBuf> {
    let prefix = match binary {
        crate::artifacts::HELLO => "loyalty-",
        "checkout" => "checkout-place-order",
        "recommendations-api" => "recommendations-get",
        "recommendations" => "recommendations-order-placed",
        other => other,
    };
    let mut samples: Vec<PathBuf> = std::fs::read_dir(root.join("events"))
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".json"))
        })
        .collect();
    samples.sort();
    samples.into_iter().next()
}
