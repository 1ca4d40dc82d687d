#!/usr/bin/env bash
# Runs the whole Bookinfo mesh on this machine: builds the release binaries, then starts
# the control plane, every workload with its sidecar and the ingress gateway with
# `meshctl up`. Extra arguments go to `meshctl up` (try --help). Ctrl-C stops everything.
set -euo pipefail

cd "$(dirname "$0")/.."

echo "Building the release binaries (the first build takes a few minutes)..."
cargo build --release --bins --quiet

exec target/release/meshctl up "$@"
