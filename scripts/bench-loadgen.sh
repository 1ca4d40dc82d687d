#!/usr/bin/env bash
# loadgen vs wrk: requests per second against the same fast loopback server, side by side in
# one run. Target: loadgen reaches at least 0.8x of wrk on one core.
#
#   scripts/bench-loadgen.sh                         # 5 s each, 64 connections
#   BENCH_SECONDS=10 BENCH_CONNS=128 scripts/bench-loadgen.sh
#   BENCH_ROUNDS=5 scripts/bench-loadgen.sh          # more alternating rounds (default 3)
#
# The echo server (loadtest/examples/echo.rs, one thread) is pinned to CPU 1; wrk (one thread)
# and loadgen (closed model, one runtime thread) each run alone, pinned to CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh

secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-64}
rounds=${BENCH_ROUNDS:-3}
port=${BENCH_PORT:-18080}
for v in secs conns rounds port; do
    [[ "${!v}" =~ ^[0-9]+$ ]] && (( ${!v} > 0 )) || { echo "bench-loadgen.sh: $v must be a positive integer (got '${!v}')" >&2; exit 64; }
done
if (( $(nproc) >= 2 )); then server_cpu=1; load_cpu=0; else server_cpu=0; load_cpu=0; fi

need wrk wrk

echo "Building loadgen and the echo server (release)..." >&2
cargo build --release -q -p bookinfo-loadtest --bin loadgen --example echo
target_dir=${CARGO_TARGET_DIR:-target}
loadgen="$target_dir/release/loadgen"
echo_bin="$target_dir/release/examples/echo"

taskset -c "$server_cpu" "$echo_bin" "127.0.0.1:$port" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do
    curl -fsS -o /dev/null "http://127.0.0.1:$port/" 2>/dev/null && break
    sleep 0.1
done
curl -fsS -o /dev/null "http://127.0.0.1:$port/" || { echo "bench-loadgen.sh: echo server did not start on port $port" >&2; exit 1; }

url="http://127.0.0.1:$port/"
tmp=$(mktemp -d)
trap 'cleanup; rm -rf "$tmp"' EXIT

# Client CPU seconds (user + system) of a command, via GNU time when it is installed: on a
# busy machine requests per CPU-second is the steadier measure of "fast on one core".
have_time=0; [[ -x /usr/bin/time ]] && /usr/bin/time -f '%U' true 2>/dev/null && have_time=1
timed() {
    local out=$1; shift
    if (( have_time )); then /usr/bin/time -f '%U %S' -o "$out" "$@"; else echo "0 0" >"$out"; "$@"; fi
}
cpu_per_req() { # cpu-file requests -> microseconds of client CPU per request
    awk -v n="$2" '{ if (n > 0 && ($1 + $2) > 0) printf "%.1f", ($1 + $2) * 1e6 / n; else print "-" }' "$1"
}
run_wrk() {
    timed "$tmp/wrk.cpu" taskset -c "$load_cpu" wrk -t1 -c"$conns" -d"${secs}s" "$url" >"$tmp/wrk.out"
    wrk_rps=$(awk '/^Requests\/sec:/ {print $2}' "$tmp/wrk.out")
    wrk_n=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
}
run_loadgen() {
    timed "$tmp/lg.cpu" taskset -c "$load_cpu" "$loadgen" --closed -c "$conns" -d "${secs}s" --threads 1 -q "$url" >"$tmp/lg.out"
    lg_rps=$(awk '/^Rate/ {sub("/s", "", $3); print $3}' "$tmp/lg.out")
    lg_n=$(awk '/^Requests/ {sub(",", "", $7); print $7}' "$tmp/lg.out")
}

echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on these CPUs skews single rounds; use BENCH_ROUNDS)"
printf '%-6s %12s %12s %7s   %14s %14s\n' round "wrk rps" "loadgen rps" ratio "wrk us CPU/req" "lg us CPU/req"
ratios=()
for round in $(seq "$rounds"); do
    # Alternate the order so slow drift in background load does not favour one tool.
    if (( round % 2 )); then run_wrk; run_loadgen; else run_loadgen; run_wrk; fi
    [[ -n "$wrk_rps" && -n "$lg_rps" ]] || { echo "bench-loadgen.sh: could not read a result (wrk '$wrk_rps', loadgen '$lg_rps')" >&2; exit 1; }
    ratio=$(awk -v a="$lg_rps" -v b="$wrk_rps" 'BEGIN {printf "%.2f", a / b}')
    ratios+=("$ratio")
    printf '%-6s %12.0f %12.0f %7s   %14s %14s\n' "$round" "$wrk_rps" "$lg_rps" "$ratio" \
        "$(cpu_per_req "$tmp/wrk.cpu" "$wrk_n")" "$(cpu_per_req "$tmp/lg.cpu" "$lg_n")"
done
echo "loadgen/wrk = $(median "${ratios[@]}") (median of $rounds round(s); target >= 0.80; ${conns} connections, ${secs} s, one core each)"
