#!/usr/bin/env bash
# Which of two mesh-proxy builds costs less CPU per request: an A/B for proxy changes.
#
# Starts a client + server sidecar pair of each build in front of one echo upstream,
# then runs the same fixed-rate load (1 KB POSTs) through pair A and pair B in turns,
# for several rounds (A first in odd rounds, B first in even ones). CPU time is read from
# the scheduler's per-thread run time (nanoseconds) of the two proxies of each pair.
# Prints each round and the median of the per-round ratios B/A with its range. Each round
# also loads the echo upstream directly, so the latency each pair adds (its p50 and p99
# over the direct path's, medians over the rounds) is printed too, with the ratio B/A.
# At the end it prints each side's peak resident memory per proxy (VmHWM), and B - A.
# Either side may be the word `nginx`: a pair of nginx reverse proxies (one worker each,
# keep-alive), the yardstick of scripts/bench-mesh.sh, measured the same way.
#
# On a virtual machine the same binary's CPU cost drifts by 10-15 % from minute to
# minute; pairing A and B within a round cancels most of that drift, and the median over
# 12 or more rounds resolves differences of a few percent. Run it both ways round
# (A B, then B A): a real difference shows up as ratios on either side of 1.
#
#   scripts/bench-ab.sh OLD_BINARY NEW_BINARY            # 12 rounds of 4 s, 16 connections
#   AB_ROUNDS=16 AB_SECONDS=4 AB_CONNS=64 scripts/bench-ab.sh old/mesh-proxy target/release/mesh-proxy
#   scripts/bench-ab.sh nginx target/release/mesh-proxy   # ours against nginx, precisely
#
# AB_ENV_A and AB_ENV_B add variables to one side's proxies, so one binary can be
# compared with itself under two settings. Tracing off against Istio's 1 % sampling,
# the spans exported by OTLP to the echo upstream (which answers every POST):
#   AB_ENV_B="OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://127.0.0.1:ECHO/v1/traces" ...
# (`ECHO` is replaced by the echo upstream's port.)
#
# Example: keep the current build, change the code, build again, compare:
#   cp target/release/mesh-proxy /tmp/mesh-proxy-before
#   cargo build --release -p mesh-proxy
#   scripts/bench-ab.sh /tmp/mesh-proxy-before target/release/mesh-proxy
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh

usable() { [ "$1" = nginx ] || [ -x "$1" ]; }
if [ $# -ne 2 ] || ! usable "$1" || ! usable "$2"; then
    echo "usage: scripts/bench-ab.sh BINARY_A BINARY_B   (two executable mesh-proxy builds, or nginx)" >&2
    exit 64
fi
if [ "$1" = nginx ] || [ "$2" = nginx ]; then need nginx nginx; fi
a_bin=$1 b_bin=$2
rounds=${AB_ROUNDS:-12}
secs=${AB_SECONDS:-4}
conns=${AB_CONNS:-16}
rate=${AB_RATE:-1000}
run=${AB_DIR:-.run/bench-ab}
mkdir -p "$run"
if (( $(nproc) >= 2 )); then up_cpu=1; else up_cpu=0; fi

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    echo "Building release binaries (loadgen, echo)..." >&2
    cargo build --release --quiet -p bookinfo-loadtest --bin loadgen --example echo
fi
bin=target/release


echo_port=$(free_port)
taskset -c "$up_cpu" "$bin/examples/echo" "127.0.0.1:$echo_port" 2>/dev/null & pids+=($!)
wait_port "$echo_port"

proxy() { # NAME CONFIG BINARY -> prints "pid outbound_port"
    local in out admin side extra=()
    in=$(free_port) out=$(free_port) admin=$(free_port)
    # AB_ENV_A / AB_ENV_B: more variables for that side's proxies (tracing on, say).
    side=AB_ENV_${1%%-*}; side=${side^^}
    read -ra extra <<< "${!side:-}"
    extra=("${extra[@]//ECHO/$echo_port}")
    env "${extra[@]}" MESH_PROXY_CONFIG="$2" MESH_PROXY_INBOUND="127.0.0.1:$in" MESH_PROXY_OUTBOUND="127.0.0.1:$out" \
        MESH_PROXY_ADMIN="127.0.0.1:$admin" MESH_PROXY_APP="127.0.0.1:$echo_port" \
        MESH_PROXY_ACCESS_LOG=false RUST_LOG=warn taskset -c 0 "$3" >"$run/$1.log" 2>&1 &
    echo "$! $in $out"
}
pair() { # NAME BINARY -> sets pair_pids and pair_url
    if [ "$2" = nginx ]; then nginx_pair "$1"; return; fi
    server_config "$run/$1-server.yaml"
    local s_pid s_in s_out c_pid c_in c_out
    read -r s_pid s_in s_out < <(proxy "$1-server" "$run/$1-server.yaml" "$2")
    pids+=("$s_pid")
    client_config "$run/$1-client.yaml" "$s_in"
    read -r c_pid c_in c_out < <(proxy "$1-client" "$run/$1-client.yaml" "$2")
    pids+=("$c_pid")
    wait_port "$s_in"; wait_port "$c_out"
    pair_pids="$s_pid $c_pid" pair_url="http://127.0.0.1:$c_out/echo"
}
nginx_pair() { # NAME -> sets pair_pids (the workers) and pair_url
    local s c s_master c_master
    s=$(free_port) c=$(free_port)
    nginx_proxy "$run/$1-server" "$s" "$echo_port"; s_master=$!
    nginx_proxy "$run/$1-client" "$c" "$s"; c_master=$!
    wait_port "$s"; wait_port "$c"
    pair_pids="$(pgrep -P "$s_master" | head -1) $(pgrep -P "$c_master" | head -1)"
    pair_url="http://127.0.0.1:$c/echo"
}
# Both binaries dropped from the page cache and read back the same way first: how much
# of a binary's code a process maps depends on how the page cache holds the file, and
# a freshly copied binary showed up to 0.8 MB more resident memory than a byte-identical
# one that had been cached for an hour.
for b in "$a_bin" "$b_bin"; do
    [ "$b" = nginx ] && continue
    python3 -c 'import os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)' "$b"
    cat "$b" >/dev/null
done
pair a "$a_bin"; a_pids=$pair_pids a_url=$pair_url
pair b "$b_bin"; b_pids=$pair_pids b_url=$pair_url

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
load() { # URL SECONDS [JSON_REPORT]
    local report=()
    [ -n "${3:-}" ] && report=(--json "$3")
    taskset -c 0 "$bin/loadgen" -q --rate "$rate" -d "${2}s" -c "$conns" -X POST --body "$body" -H "Host: echo" \
        "${report[@]}" "$1" >/dev/null
}
# The coordinated-omission-corrected p50 and p99 (ms) of a loadgen JSON report.
latency() { python3 -c "import json,sys; l=json.load(open(sys.argv[1]))['latency_ms']['corrected']; print(l['p50'], l['p99'])" "$1"; }
direct_url="http://127.0.0.1:$echo_port/echo"
declare -A p50s p99s
echo "Warming up both pairs..." >&2
load "$a_url" 2; load "$b_url" 2

requests=$((rate * secs))
ratios=()
for r in $(seq 1 "$rounds"); do
    if (( r % 2 )); then order="a b"; else order="b a"; fi
    load "$direct_url" "$secs" "$run/direct.json"
    read -r l50 l99 < <(latency "$run/direct.json")
    p50s[direct]+=" $l50"; p99s[direct]+=" $l99"
    for side in $order; do
        if [ "$side" = a ]; then p=$a_pids url=$a_url; else p=$b_pids url=$b_url; fi
        t0=$(cpu_ns $p); load "$url" "$secs" "$run/$side.json"; t1=$(cpu_ns $p)
        read -r l50 l99 < <(latency "$run/$side.json")
        p50s[$side]+=" $l50"; p99s[$side]+=" $l99"
        # CPU microseconds per request, per proxy (the pair's total over two).
        printf -v "us_$side" '%s' "$(awk -v t=$((t1 - t0)) -v n="$requests" 'BEGIN { printf "%.1f", t / 1000 / n / 2 }')"
    done
    ratio=$(awk -v a="$us_a" -v b="$us_b" 'BEGIN { printf "%.3f", b / a }')
    ratios+=("$ratio")
    printf 'round %2d: A %6.1f us/request/proxy   B %6.1f   B/A %s\n' "$r" "$us_a" "$us_b" "$ratio"
done
read -r lo mid hi < <(spread "${ratios[@]}")
printf '\nCPU per request, B/A: median %.3f (%.3f to %.3f over %d rounds; below 1: B is cheaper)\n' "$mid" "$lo" "$hi" "$rounds"
added() { # SIDE PERCENTILE -> the side's median minus the direct path's, in ms
    local -n of=$2
    awk -v s="$(median ${of[$1]})" -v d="$(median ${of[direct]})" 'BEGIN { printf "%.3f", s - d }'
}
a50=$(added a p50s) b50=$(added b p50s) a99=$(added a p99s) b99=$(added b p99s)
awk -v a50="$a50" -v b50="$b50" -v a99="$a99" -v b99="$b99" 'BEGIN {
    printf "Added latency (medians over the rounds, minus the direct path'"'"'s): p50 A %.3f ms, B %.3f ms; p99 A %.3f ms, B %.3f ms", a50, b50, a99, b99
    if (a99 >= 0.05 && b99 >= 0) printf "; p99 B/A %.2f", b99 / a99
    print "" }'
# The p99 of a few seconds is set by the machine's own hiccups as much as by the path:
# how far the direct path's p99 moved between rounds says how much the added p99 can be trusted.
read -r lo mid hi < <(spread ${p99s[direct]})
printf "(the direct path's own p99 ranged %.3f to %.3f ms over the rounds)\n" "$lo" "$hi"
echo "($rate rps, $conns connections, ${secs} s per turn, 1 KB bodies, load and proxies on CPU 0, upstream on CPU $up_cpu)"
# Peak resident memory (VmHWM) per proxy of each side, and how B compares.
hwm_kb() { # PIDS -> the mean of their VmHWM, in kB
    local total=0 n=0 kb
    for p in "$@"; do
        kb=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null || true)
        [ -n "$kb" ] && total=$((total + kb)) n=$((n + 1))
    done
    if (( n )); then echo $((total / n)); else echo 0; fi
}
# shellcheck disable=SC2086 # the pid lists split on purpose
a_kb=$(hwm_kb $a_pids) b_kb=$(hwm_kb $b_pids)
awk -v a="$a_kb" -v b="$b_kb" 'BEGIN {
    printf "Peak RSS per proxy: A %.2f MB, B %.2f MB (B - A %+.2f MB)\n", a / 1024, b / 1024, (b - a) / 1024 }'
