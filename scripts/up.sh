#!/usr/bin/env bash
# Runs the whole Bookinfo mesh on this machine: builds the release binaries, then starts
# the control plane, every workload with its sidecar and the ingress gateway with
# `meshctl up`. Extra arguments go to `meshctl up` (try --help). Ctrl-C stops everything.
set -euo pipefail

cd "$(dirname "$0")/.."

# The options need only meshctl: a debug build of it, not the whole release build.
for arg in "$@"; do
    case "$arg" in
        -h|--help)
            [ -x target/release/meshctl ] && exec target/release/meshctl up --help
            echo "Building meshctl to show its options..." >&2
            exec cargo run --quiet -p mesh-ctl --bin meshctl -- up --help ;;
    esac
done

echo "Building the release binaries (the first build takes a few minutes)..."
cargo build --release --bins --quiet

exec target/release/meshctl up "$@"
