//! The release builds the cold-start and size sections measure. Building is slow on two cores
//! (LTO, one codegen unit), so existing artifacts are reused unless `--rebuild` is given; the
//! report says when each was built and warns when sources are newer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

pub const ARM64: &str = "aarch64-unknown-linux-gnu";
pub const HELLO: &str = "hello-world";

/// The function packages: every crate under functions/ (each is named after its directory).
pub fn function_packages(root: &Path) -> Vec<String> {
    let mut packages: Vec<String> = std::fs::read_dir(root.join("functions"))
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.path().join("Cargo.toml").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    packages.sort();
    packages
}

pub fn host_binary(root: &Path, binary: &str) -> PathBuf {
    root.join("target/release").join(binary)
}

pub fn arm64_zip(root: &Path, binary: &str) -> PathBuf {
    root.join("target/lambda").join(binary).join("bootstrap.zip")
}

pub fn arm64_binary(root: &Path, binary: &str) -> PathBuf {
    root.join("target").join(ARM64).join("release").join(binary)
}

/// A build that ran, for the report.
#[derive(Debug, Clone)]
pub struct Built {
    pub command: String,
    pub took: Duration,
}

fn run(root: &Path, program: &Path, args: &[String]) -> Result<Built, String> {
    let command = format!("{} {}", program.display(), args.join(" "));
    eprintln!("shop-bench: {command}");
    let started = Instant::now();
    // cargo-lambda links with the zig of the project venv (PyPI `ziglang`), found on PATH.
    let path = format!("{}:{}", root.join(".venv/bin").display(), std::env::var("PATH").unwrap_or_default());
    let status = Command::new(program)
        .args(args)
        .env("PATH", path)
        .current_dir(root)
        .status()
        .map_err(|e| format!("{command}: {e}"))?;
    if !status.success() {
        return Err(format!("{command} failed ({status})"));
    }
    Ok(Built { command, took: started.elapsed() })
}

fn package_args(packages: &[String]) -> Vec<String> {
    packages.iter().flat_map(|p| ["-p".to_owned(), p.clone()]).collect()
}

/// Host (x86_64) release binaries of every function and of the hello-world, for the cold-start
/// proxy. Functions are built in one cargo call (they share every dependency); the hello-world
/// on its own, so it never has the functions' features unified into it. The hello-world is
/// always (re)linked: `cargo bench` builds the bench package's bins too, with the benches'
/// dev-dependency features, into the same path; this puts the plain release build back (a
/// second when nothing changed).
pub fn ensure_host(root: &Path, binaries: &[String], rebuild: bool) -> Result<Vec<Built>, String> {
    let cargo = PathBuf::from(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    let mut built = Vec::new();
    if rebuild || binaries.iter().any(|b| !host_binary(root, b).exists()) {
        let mut args = vec!["build".to_owned(), "--release".into(), "--locked".into()];
        args.extend(package_args(&function_packages(root)));
        built.push(run(root, &cargo, &args)?);
    }
    let hello = ["build", "--release", "--locked", "-p", "bench", "--bin", HELLO].map(String::from);
    built.push(run(root, &cargo, &hello)?);
    Ok(built)
}

/// arm64 Lambda zips (`cargo lambda build --release --arm64 --output-format zip`) of every
/// function and of the hello-world, as `sam build` would produce them.
pub fn ensure_arm64(root: &Path, binaries: &[String], rebuild: bool) -> Result<Vec<Built>, String> {
    let missing = binaries.iter().chain([&HELLO.to_owned()]).any(|b| !arm64_zip(root, b).exists());
    if !rebuild && !missing {
        return Ok(Vec::new());
    }
    let cargo_lambda = root.join(".venv/bin/cargo-lambda");
    let base = ["lambda", "build", "--release", "--arm64", "--output-format", "zip", "--locked"].map(String::from);
    let mut args = base.to_vec();
    args.extend(package_args(&function_packages(root)));
    let mut built = vec![run(root, &cargo_lambda, &args)?];
    let mut hello = base.to_vec();
    hello.extend(["-p", "bench", "--bin", HELLO].map(String::from));
    built.push(run(root, &cargo_lambda, &hello)?);
    Ok(built)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest source file an artifact is built from: the functions' crates and shared/ for a
/// function, its own file for the hello-world; the manifest (profile) and lock file for both.
fn newest_source(root: &Path, binary: &str) -> Option<SystemTime> {
    fn walk(path: &Path, newest: &mut Option<SystemTime>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                walk(&entry.path(), newest);
            }
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("rs" | "toml")) {
            *newest = (*newest).max(modified(path));
        }
    }
    let mut newest = modified(&root.join("Cargo.lock")).max(modified(&root.join("Cargo.toml")));
    let sources: &[&str] =
        if binary == HELLO { &["bench/src/bin/hello-world.rs"] } else { &["functions", "shared/src"] };
    for source in sources {
        walk(&root.join(source), &mut newest);
    }
    newest
}

/// Artifacts older than the sources they come from: their figures would describe old code.
pub fn stale(root: &Path, binaries: &[String]) -> Vec<PathBuf> {
    let mut stale = Vec::new();
    for binary in binaries {
        let source = newest_source(root, binary);
        for artifact in [host_binary(root, binary), arm64_zip(root, binary)] {
            if modified(&artifact).zip(source).is_some_and(|(built, source)| built < source) {
                stale.push(artifact);
            }
        }
    }
    stale
}

pub fn size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).map(|m| m.len()).ok()
}
