#!/usr/bin/env bash
# Installs what building and testing rkube needs on a fresh Debian machine (run as root).
# Idempotent: only missing packages are installed.
set -euo pipefail

APT_PACKAGES=(
  build-essential clang libclang-dev   # rocksdb (C++ and bindgen)
  protobuf-compiler                    # etcd's gRPC client in the benchmark
  etcd-server                          # the benchmark peer
  iproute2 nftables iptables           # network namespaces, partitions, CNI portmap/masquerade
  containernetworking-plugins          # pod networking (bridge, host-local, loopback, portmap)
  docker-registry umoci skopeo         # a real registry on loopback and the tools to fill it
  busybox-static                       # the contents of the test image
  util-linux                           # nsenter (agents of the multi-node tests enter node netns)
  curl ca-certificates
)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! python3 -c "import kubernetes" 2>/dev/null; then
  echo "==> installing the Kubernetes Python client (for the end-to-end tests)"
  python3 -m pip install -q kubernetes
fi
if ! command -v kubectl >/dev/null; then
  echo "kubectl is not on the PATH: install kubectl 1.32 or newer and re-run" >&2
  exit 1
fi

if ! command -v cargo >/dev/null; then
  echo "cargo is not installed: install Rust (https://rustup.rs) and re-run" >&2
  exit 1
fi
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "==> installing cargo-nextest"
  cargo install --locked cargo-nextest
fi
