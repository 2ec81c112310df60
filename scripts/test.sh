#!/usr/bin/env bash
# Runs every test of the repository: unit, openraft's storage suite, and end-to-end tests that
# start real rkube processes. Installs what it needs first. Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rkube-target}"
echo "==> building (target dir $CARGO_TARGET_DIR)"
cargo build --workspace --bins --tests
echo "==> testing"
cargo nextest run --workspace --no-fail-fast "$@"
