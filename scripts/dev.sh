#!/usr/bin/env bash
# Builds rkube and runs the single-node dev cluster (`rkube dev`): one master plus an agent that
# runs pods as containers. Run as root on Debian. Extra arguments go to `rkube dev`.
#
# The machine may have no internet access, so an image is seeded into the dev node's store:
# `rkube.local/busybox:1` (Debian's static busybox, built locally by scripts/build-test-image.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/rkube-target}"
cargo build --workspace --bins
rkube="$CARGO_TARGET_DIR/debug/rkube"
data_dir="${RKUBE_DATA_DIR:-/var/lib/rkube/dev}"
image_tar="$CARGO_TARGET_DIR/rkube-local-busybox.tar"
[ -f "$image_tar" ] || ./scripts/build-test-image.sh "$image_tar" rkube.local/busybox:1 >/dev/null
"$rkube" images import "$image_tar" --data-dir "$data_dir/agent" >/dev/null
exec "$rkube" dev --data-dir "$data_dir" "$@"
