#!/usr/bin/env bash
# Builds rkube and runs the single-node dev cluster (`rkube dev`). Run as root on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rkube-target}"
cargo build --workspace --bins
exec "$CARGO_TARGET_DIR/debug/rkube" dev "$@"
