#!/usr/bin/env bash
# Throughput, p99 latency and peak memory of each Bookinfo service, measured side by side
# in one run with wrk at a fixed concurrency on loopback.
#
#   scripts/bench-services.sh                 # 5 s per service, 32 connections
#   BENCH_SECONDS=10 BENCH_CONNS=64 scripts/bench-services.sh
#
# The service under test is pinned to CPU 1 so its figure is "one core"; wrk and the
# upstreams it needs share CPU 0. Targets: each leaf service >= 30,000 rps, productpage
# >= 5,000 pages/s, every process under 15 MB peak RSS. The last column is measured/target.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh

secs=${BENCH_SECONDS:-5}
conns=${BENCH_CONNS:-32}
ncpu=$(nproc)
if (( ncpu >= 2 )); then svc_cpu=1; load_cpu=0; else svc_cpu=0; load_cpu=0; fi

need wrk wrk

echo "Building release binaries..." >&2
cargo build --release --quiet -p bookinfo-productpage -p bookinfo-details -p bookinfo-reviews -p bookinfo-ratings
bin=target/release

# start CPU PORT ENV... BINARY  → sets $started_pid
start() {
    local cpu=$1 port=$2; shift 2
    env BIND_ADDRESS=127.0.0.1 PORT="$port" RUST_LOG=warn "$@" >/dev/null 2>&1 &
    started_pid=$!
    taskset -pc "$cpu" "$started_pid" >/dev/null
    pids+=("$started_pid")
    wait_port "$port"
}

printf '%-28s %12s %10s %12s %10s %8s\n' "service" "req/s" "p99 ms" "peak RSS MB" "target" "ratio"
# bench NAME PID URL TARGET
bench() {
    local name=$1 pid=$2 url=$3 target=$4 out rps p99
    # Warm up (connections, allocator), then measure.
    taskset -c "$load_cpu" wrk -t1 -c"$conns" -d1s "$url" >/dev/null 2>&1 || true
    out=$(taskset -c "$load_cpu" wrk -t1 -c"$conns" -d"${secs}s" --latency "$url")
    if grep -q 'Non-2xx' <<<"$out"; then echo "$name: non-2xx answers during the run:" >&2; echo "$out" >&2; fi
    rps=$(echo "$out" | awk '/Requests\/sec/ { print $2 }')
    p99=$(echo "$out" | awk '$1 == "99%" { v=$2; if (v ~ /us$/) { sub(/us/,"",v); v=v/1000 } else if (v ~ /ms$/) { sub(/ms/,"",v) } else if (v ~ /s$/) { sub(/s/,"",v); v=v*1000 }; printf "%.2f", v }')
    printf '%-28s %12.0f %10s %12s %10s %8s\n' "$name" "$rps" "$p99" "$(hwm_mb "$pid")" "$target" "$(awk -v a="$rps" -v b="$target" 'BEGIN { printf "%.2f", a / b }')"
}

ratings_port=$(free_port); start "$svc_cpu" "$ratings_port" SERVICE_VERSION=v1 "$bin/ratings"; ratings_pid=$started_pid
bench "ratings v1 /ratings/0" "$ratings_pid" "http://127.0.0.1:$ratings_port/ratings/0" 30000

details_port=$(free_port); start "$svc_cpu" "$details_port" "$bin/details"; details_pid=$started_pid
bench "details /details/0" "$details_pid" "http://127.0.0.1:$details_port/details/0" 30000

reviews_port=$(free_port); start "$svc_cpu" "$reviews_port" SERVICE_VERSION=v1 "$bin/reviews"; reviews_pid=$started_pid
bench "reviews v1 /reviews/0" "$reviews_pid" "http://127.0.0.1:$reviews_port/reviews/0" 30000

# reviews v2 calls ratings: both on the service CPU would measure two processes, so the
# ratings upstream moves to the load CPU for this row.
taskset -pc "$load_cpu" "$ratings_pid" >/dev/null
rv2_port=$(free_port); start "$svc_cpu" "$rv2_port" SERVICE_VERSION=v2 RATINGS_HOSTNAME=127.0.0.1 RATINGS_SERVICE_PORT="$ratings_port" "$bin/reviews"; rv2_pid=$started_pid
bench "reviews v2 (+ratings call)" "$rv2_pid" "http://127.0.0.1:$rv2_port/reviews/0" 30000

# productpage: its upstreams (details, reviews v1) run on the load CPU.
taskset -pc "$load_cpu" "$details_pid" >/dev/null
taskset -pc "$load_cpu" "$reviews_pid" >/dev/null
up="DETAILS_HOSTNAME=127.0.0.1 DETAILS_SERVICE_PORT=$details_port REVIEWS_HOSTNAME=127.0.0.1 REVIEWS_SERVICE_PORT=$reviews_port"
pp_port=$(free_port)
# shellcheck disable=SC2086
start "$svc_cpu" "$pp_port" $up "$bin/productpage"; pp_pid=$started_pid
bench "productpage (new conn/call)" "$pp_pid" "http://127.0.0.1:$pp_port/productpage" 5000
pp2_port=$(free_port)
# shellcheck disable=SC2086
start "$svc_cpu" "$pp2_port" $up PRODUCTPAGE_KEEPALIVE=true "$bin/productpage"; pp2_pid=$started_pid
bench "productpage (keep-alive)" "$pp2_pid" "http://127.0.0.1:$pp2_port/productpage" 5000

echo
echo "Peak RSS of the upstreams after the productpage runs: details $(hwm_mb "$details_pid") MB, reviews $(hwm_mb "$reviews_pid") MB, ratings $(hwm_mb "$ratings_pid") MB"
echo "($secs s per row, $conns connections, service on CPU $svc_cpu, wrk and upstreams on CPU $load_cpu, $(nproc) CPUs)"
