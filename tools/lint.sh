#!/usr/bin/env bash
# Lints template.yaml offline: cfn-lint, then SAM's own validation with its linter.
# No AWS account or network is needed; the dummy region/credentials only keep the CLIs quiet.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"
export AWS_REGION="$AWS_DEFAULT_REGION"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export SAM_CLI_TELEMETRY=0
cd "$root"
echo "== cfn-lint template.yaml"
"$venv/bin/cfn-lint" template.yaml
echo "== sam validate (SAM translator)"
"$venv/bin/sam" validate --template-file template.yaml --region "$AWS_DEFAULT_REGION"
echo "== sam validate --lint"
"$venv/bin/sam" validate --lint --template-file template.yaml --region "$AWS_DEFAULT_REGION"
echo "== actionlint .github/workflows"
# The workflows run only on GitHub (README, Continuous integration); this is the check they get
# here. actionlint also runs shellcheck on each `run:` script when shellcheck is on PATH (as on
# GitHub's runners) and skips it otherwise: the scripts are kept clean under both.
"$venv/bin/actionlint" .github/workflows/*.yml
