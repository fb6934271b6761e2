# Every target installs what it needs: a fresh machine needs only the Rust toolchain and Python 3.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: help venv lint test test-rust test-tools demo dev bench bench-quick build-arm64 clean explore

help:
	@echo "make demo   run the whole system locally and show it working"
	@echo "make test   run every test (installs the pinned tools first)"
	@echo "make dev    run the system locally and leave it running"
	@echo "make bench  benchmarks (BENCHMARKS.md); make bench-quick for a short run"

# Pinned Python tools (moto server, SAM CLI, cfn-lint, cargo-lambda) in a project venv.
$(STAMP): tools/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

venv: $(STAMP)

lint: venv
	tools/lint.sh
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

# Headless Chromium and chromedriver (Debian packages) for the dashboard's browser test.
test-rust: venv
	tools/install-debian-packages.sh
	cargo test --workspace --locked

test-tools: venv
	$(VENV)/bin/pytest -q tools

test: lint test-rust test-tools

# The whole system on this machine (moto + the local runner), a scripted scenario, then stop.
demo: venv
	cargo run --quiet -p local --bin shop-local -- demo $(ARGS)

# The same, left running until Ctrl-C; ARGS=--cargo-lambda runs functions under cargo lambda watch.
dev: venv
	cargo run --quiet -p local --bin shop-local -- dev $(ARGS)

# The long fault-space exploration: every pair of faults (first attempt x the client's retry)
# and 20,000 random schedules instead of 256.
explore:
	PROPTEST_CASES=20000 cargo test --locked -p explorer -- --include-ignored --nocapture

clean:
	cargo clean
	rm -rf $(VENV)

# Benchmarks (BENCHMARKS.md): criterion measures the handlers' CPU cost, then shop-bench the
# rest in one run (emulator, release builds, cold start, size, latency, cost) and writes
# target/bench/report.md. Release builds are made once and reused; ARGS=--rebuild rebuilds them.
bench: venv
	cargo bench --locked -p bench --bench contention
	cargo bench --locked -p bench --bench handlers
	cargo bench --locked -p bench --bench shop-bench -- $(ARGS)

# The same with fewer samples: under two minutes once the release builds exist.
bench-quick: venv
	cargo bench --locked -p bench --bench handlers -- --quick --warm-up-time 0.5 --measurement-time 1
	cargo bench --locked -p bench --bench shop-bench -- --quick $(ARGS)
