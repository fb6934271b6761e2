#!/usr/bin/env bash
# Installs the Debian packages the tests need beyond the Rust toolchain and Python: headless
# Chromium and its WebDriver server (chromedriver), for the local dashboard's browser test
# (local/tests/dashboard.rs).
# Idempotent: does nothing when every package is installed already, so `make test` can call it
# each time. Needs root (or sudo) and apt-get, as on the CI's Debian machine.
set -euo pipefail

packages=(chromium chromium-driver)

missing=()
for package in "${packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$package")
    fi
done
if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

if ! command -v apt-get >/dev/null; then
    echo "install-debian-packages: apt-get not found; install ${missing[*]} with your system's package manager" >&2
    exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
    if ! command -v sudo >/dev/null; then
        echo "install-debian-packages: run as root, or install sudo, to install ${missing[*]}" >&2
        exit 1
    fi
    sudo=(sudo)
fi

echo "== installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
