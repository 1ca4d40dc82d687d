#!/usr/bin/env bash
# loadgen vs wrk: requests per second against the same fast loopback server, side by side in
# one run. Target: loadgen reaches at least 0.8x of wrk on one core.
#
#   scripts/bench-loadgen.sh                         # 5 s each, 64 connections
#   BENCH_SECONDS=10 BENCH_CONNS=128 scripts/bench-loadgen.sh
#   BENCH_ROUNDS=3 scripts/bench-loadgen.sh          # alternate wrk/loadgen, report each round
#
# The echo server (loadtest/examples/echo.rs, one thread) is pinned to CPU 1; wrk (one thread)
# and loadgen (closed model, one runtime thread) each run alone, pinned to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."

secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-64}
rounds=${BENCH_ROUNDS:-1}
port=${BENCH_PORT:-18080}
for v in secs conns rounds port; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || { echo "bench-loadgen.sh: $v must be a positive integer (got '${!v}')" >&2; exit 64; }
done
if (( $(nproc) >= 2 )); then server_cpu=1; load_cpu=0; else server_cpu=0; load_cpu=0; fi

if ! command -v wrk >/dev/null; then
    echo "Installing wrk (Debian package)..." >&2
    sudo=""; (( EUID == 0 )) || sudo="sudo"
    $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq wrk >&2
fi

echo "Building loadgen and the echo server (release)..." >&2
cargo build --release -q -p bookinfo-loadtest --bin loadgen --example echo
target_dir=${CARGO_TARGET_DIR:-target}
loadgen="$target_dir/release/loadgen"
echo_bin="$target_dir/release/examples/echo"

taskset -c "$server_cpu" "$echo_bin" "127.0.0.1:$port" 2>/dev/null &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null || true' EXIT
for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { echo "bench-loadgen.sh: echo server did not start on port $port" >&2; exit 1; }

url="http://127.0.0.1:$port/"
printf '%-6s %14s %14s %8s\n' round "wrk rps" "loadgen rps" ratio
total_wrk=0; total_lg=0
for round in $(seq "$rounds"); do
    wrk_rps=$(taskset -c "$load_cpu" wrk -t1 -c"$conns" -d"${secs}s" "$url" \
        | awk '/^Requests\/sec:/ {print $2}')
    lg_rps=$(taskset -c "$load_cpu" "$loadgen" --closed -c "$conns" -d "${secs}s" --threads 1 -q "$url" \
        | awk '/^Rate/ {sub("/s", "", $3); print $3}')
    [[ -n "$wrk_rps" && -n "$lg_rps" ]] || { echo "bench-loadgen.sh: could not read a result (wrk '$wrk_rps', loadgen '$lg_rps')" >&2; exit 1; }
    printf '%-6s %14.0f %14.0f %8.2f\n' "$round" "$wrk_rps" "$lg_rps" "$(awk -v a="$lg_rps" -v b="$wrk_rps" 'BEGIN {print a / b}')"
    total_wrk=$(awk -v a="$total_wrk" -v b="$wrk_rps" 'BEGIN {print a + b}')
    total_lg=$(awk -v a="$total_lg" -v b="$lg_rps" 'BEGIN {print a + b}')
done
ratio=$(awk -v a="$total_lg" -v b="$total_wrk" 'BEGIN {printf "%.2f", a / b}')
echo "loadgen/wrk = $ratio (target >= 0.80; ${conns} connections, ${secs} s, one core each)"
