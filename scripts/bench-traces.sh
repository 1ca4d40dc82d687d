#!/usr/bin/env bash
# How much memory the control plane's embedded trace store takes when it is full.
#
# Starts mesh-control (the default store bound, or MESH_CONTROL_TRACE_STORE_MB) and a
# client + server sidecar pair in front of the echo upstream, both sampling every request (OTEL_TRACES_SAMPLER=always_on) and
# exporting their spans by OTLP/HTTP to the control plane, as `meshctl up` wires them.
# Then it sends TRACES_REQUESTS keep-alive requests, several times what the store keeps,
# in TRACES_STEPS steps, and prints after each step the control plane's resident memory
# (VmRSS), its peak (VmHWM) and how many traces the query API still returns. The
# store's share is the growth over the control plane's resident memory before any span
# arrived; it must stay within 20 MB with the default bound.
#
#   scripts/bench-traces.sh                        # 60,000 requests in 6 steps
#   TRACES_REQUESTS=20000 TRACES_STEPS=4 scripts/bench-traces.sh
#
# BENCH_NO_BUILD=1 uses the release binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh

requests=${TRACES_REQUESTS:-60000}
steps=${TRACES_STEPS:-6}
limit_mb=20
run=${TRACES_DIR:-.run/bench-traces}
mkdir -p "$run"
if [ -z "${BENCH_NO_BUILD:-}" ]; then
    echo "Building release binaries (mesh-control, mesh-proxy, loadgen, echo)..." >&2
    cargo build --release --quiet -p mesh-control -p mesh-proxy -p bookinfo-loadtest \
        --bin mesh-control --bin mesh-proxy --bin loadgen --example echo
fi
bin=target/release

echo_port=$(free_port) control_port=$(free_port)
"$bin/examples/echo" "127.0.0.1:$echo_port" 2>/dev/null & pids+=($!)
mkdir -p "$run/config" "$run/ca"
MESH_CONTROL_LISTEN="127.0.0.1:$control_port" MESH_CONTROL_CONFIG_DIR="$run/config" \
    MESH_CONTROL_CA_DIR="$run/ca" RUST_LOG=warn "$bin/mesh-control" >"$run/control.log" 2>&1 &
control_pid=$!; pids+=("$control_pid")
wait_port "$echo_port"; wait_port "$control_port"

proxy() { # NAME CONFIG -> prints "pid inbound_port outbound_port"
    local in out admin
    in=$(free_port) out=$(free_port) admin=$(free_port)
    env OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:$control_port" OTEL_TRACES_SAMPLER=always_on \
        OTEL_BSP_SCHEDULE_DELAY=200 MESH_PROXY_CONFIG="$2" MESH_PROXY_INBOUND="127.0.0.1:$in" \
        MESH_PROXY_OUTBOUND="127.0.0.1:$out" MESH_PROXY_ADMIN="127.0.0.1:$admin" \
        MESH_PROXY_APP="127.0.0.1:$echo_port" MESH_PROXY_ACCESS_LOG=false RUST_LOG=warn \
        "$bin/mesh-proxy" >"$run/$1.log" 2>&1 &
    echo "$! $in $out"
}
server_config "$run/server.yaml"
read -r s_pid s_in _ < <(proxy server "$run/server.yaml"); pids+=("$s_pid")
client_config "$run/client.yaml" "$s_in"
read -r c_pid _ c_out < <(proxy client "$run/client.yaml"); pids+=("$c_pid")
wait_port "$s_in"; wait_port "$c_out"

rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
held() { # how many traces the store still returns (the query API's maximum is 500)
    curl -fsS "http://127.0.0.1:$control_port/api/traces?limit=500" |
        python3 -c 'import json, sys; print(len(json.load(sys.stdin)))'
}
empty=$(rss_mb "$control_pid")
printf 'control plane before any span: VmRSS %s MB\n' "$empty"
per_step=$((requests / steps))
for s in $(seq 1 "$steps"); do
    "$bin/loadgen" -q --closed -n "$per_step" -c 8 -H "Host: echo" "http://127.0.0.1:$c_out/echo" >/dev/null
    sleep 1 # the batch processors' last exports (200 ms delay) land
    printf 'after %6d requests (%6d spans): VmRSS %5s MB, VmHWM %5s MB, traces returned %s\n' \
        $((s * per_step)) $((2 * s * per_step)) "$(rss_mb "$control_pid")" "$(hwm_mb "$control_pid")" "$(held)"
done
grep -i "drop\|error" "$run/client.log" "$run/server.log" | head -3 || true
awk -v e="$empty" -v r="$(rss_mb "$control_pid")" -v h="$(hwm_mb "$control_pid")" -v l="$limit_mb" 'BEGIN {
    printf "\nstore share: VmRSS grew %.1f MB (peak %.1f MB over the empty control plane); bound %d MB: %s\n",
        r - e, h - e, l, (h - e <= l) ? "within" : "EXCEEDED" }'
