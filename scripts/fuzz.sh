#!/usr/bin/env bash
# Fuzzes the suite's parsers and listeners: Istio YAML (parse, validate, compile), the
# chaos experiment format, the control plane's HTTP API and the proxy's listeners (a
# real mesh-control and a real sidecar pair, on loopback ports of their own).
#
#   scripts/fuzz.sh                      # every target, 1,000,000 inputs each (release build)
#   scripts/fuzz.sh proxy-http           # one target
#   FUZZ_COUNT=10000 FUZZ_SEED=7 scripts/fuzz.sh istio-yaml chaos-experiment
#   scripts/fuzz.sh --list               # the targets
#
# Each target promises: no panic, no input taking over FUZZ_HANG_MS (1000) ms, no
# memory growth between the end of warm-up (half the run) and the end (10 % + 2 MB
# allowed), and the servers keep serving good requests. Findings are saved under
# .run/fuzz/<target>-<n>.bin; `target/release/fuzz replay <target> <file>` replays one.
# The test suite runs every target for a few thousand inputs (tools/fuzz/tests).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --list ]; then
    cargo run --release --quiet -p bookinfo-fuzz -- list
    exit 0
fi
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy
echo "Building release binaries (fuzz, mesh-proxy, mesh-control)..." >&2
cargo build --release --locked --quiet -p bookinfo-fuzz -p mesh-proxy -p mesh-control
exec target/release/fuzz run "$@" --count "${FUZZ_COUNT:-1000000}" --seed "${FUZZ_SEED:-1}" \
    --hang-ms "${FUZZ_HANG_MS:-1000}" --bin-dir target/release --repo . --out .run/fuzz
