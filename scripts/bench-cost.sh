#!/usr/bin/env bash
# What a sidecar pair costs per request, counted rather than timed: a fixed number of
# keep-alive 1 KB POSTs (closed model) through a client and a server proxy, for
#   ours        our pair (mesh-proxy, Istio stats on, access log off), plaintext,
#   ours-mtls   the same pair with mTLS (certificates from mesh-control's CA),
#   ours-h2     the same pair speaking HTTP/2 between the sidecars,
#   nginx       the nginx pair of scripts/bench-mesh.sh (one worker each, keep-alive),
#   relay       the TCP relay floor (bytes copied both ways, no HTTP),
# each proxy counted on its own. Per proxy and per request it prints
#   - user-space instructions (valgrind's callgrind), with our top functions;
#   - heap allocations: calls to malloc, calloc, realloc and the aligned allocators,
#     counted by the same callgrind run (every allocation of Rust's and nginx's code
#     goes through them);
#   - system calls by name and the bytes each read/write-family call moved (strace, a
#     separate pass: tracing slows a process tenfold);
#   - voluntary and involuntary context switches (/proc, all threads, in a third pass
#     with no tool attached at all);
# and each figure as a ratio to nginx's same side, next to the targets.
#
# Warm-up is excluded by a marker, not by subtraction: every proxy serves COST_WARMUP
# requests first, then its counters are zeroed (callgrind_control -z), strace is
# attached, or /proc is read, and only the COST_REQUESTS that follow are counted.
#
#   scripts/bench-cost.sh                    # 20,000 requests over 16 connections, all five pairs
#   COST_REQUESTS=5000 COST_PATHS="ours nginx" scripts/bench-cost.sh
#   scripts/bench-cost.sh --check            # the regression guard: our plaintext pair
#   scripts/bench-cost.sh --update-baseline  # measure as --check does, rewrite the baseline
#
# The guard counts 2,000 requests after 200 warm-up ones over one connection through our
# plaintext pair, and compares instructions and system calls per request with
# bench/cost-baseline.txt: more than 3 % above it fails, with the functions that moved.
# One connection, because then every run sees the same sequence of events: five runs
# agreed to within 0.1 % on instructions and 0.2 % on system calls, where at 16
# connections how many sockets are ready per wake-up moves them by up to 3 % and 13 %.
#
# Environment: COST_REQUESTS, COST_WARMUP, COST_CONNS, COST_PATHS (report mode only),
# COST_DIR (where logs and raw counts go), COST_PROXY (another mesh-proxy binary to
# count), BENCH_NO_BUILD=1 to use the binaries already built with
# `cargo build --profile bench-cost`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib-bench.sh

mode=report
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --update-baseline) mode=update ;;
    *) echo "usage: scripts/bench-cost.sh [--check | --update-baseline]" >&2; exit 64 ;;
esac
baseline=bench/cost-baseline.txt
if [ "$mode" = report ]; then
    requests=${COST_REQUESTS:-20000} warmup=${COST_WARMUP:-1000} conns=${COST_CONNS:-16}
    paths=${COST_PATHS:-"ours ours-mtls ours-h2 nginx relay"}
    passes="native strace callgrind"
else
    # Fixed, so that the counts compare with the baseline's (see the header for why one
    # connection).
    requests=2000 warmup=200 conns=1 paths=ours passes="strace callgrind"
fi
run=${COST_DIR:-.run/bench-cost}
rm -rf "$run"; mkdir -p "$run"

need valgrind valgrind
need strace strace
need curl curl
case " $paths " in *" nginx "*) need nginx nginx ;; esac
if [ "$mode" = report ] && [[ " $paths " != *" nginx "* ]]; then
    echo "COST_PATHS must include nginx: every figure is a ratio to it" >&2; exit 64
fi

if [ -z "${BENCH_NO_BUILD:-}" ]; then
    echo "Building the bench-cost profile (release code with symbols)..." >&2
    # The proxy on its own, as `cargo build --release -p mesh-proxy` makes it: built with
    # an example, it would get the dev-dependencies' features too (tokio's test-util,
    # whose mockable clock cost 2.5 % more instructions per request).
    cargo build --profile bench-cost --quiet -p mesh-proxy --bin mesh-proxy
    # The rest (the guard needs neither the control plane nor the relay).
    extra=()
    [ "$mode" = report ] && extra=(-p mesh-control --bin mesh-control -p mesh-proxy --example tcp-relay)
    cargo build --profile bench-cost --quiet -p bookinfo-loadtest --bin loadgen --example echo "${extra[@]}"
fi
bin=${CARGO_TARGET_DIR:-target}/bench-cost
# Another build of the proxy to count (an older one, for before/after figures).
proxy_bin=${COST_PROXY:-$bin/mesh-proxy}

# Shared by every pass: the upstream and the control plane, natively.
echo_port=$(free_port)
"$bin/examples/echo" "127.0.0.1:$echo_port" 2>/dev/null & pids+=($!)
wait_port "$echo_port"
ctl_port=$(free_port)
case " $paths " in *" ours-mtls "*)
    "$bin/mesh-control" --listen "127.0.0.1:$ctl_port" >"$run/control.log" 2>&1 & pids+=($!)
    wait_port "$ctl_port" ;;
esac

# A proxy process under the pass's tool: under TOOL NAME [VAR=VALUE...] COMMAND...
# (its pid in `$!`). Only callgrind wraps the process; strace attaches at the marker,
# and the native pass runs it bare. The environment is set outside valgrind, which
# would otherwise follow `env` and stop at its exec.
under() {
    local tool=$1 name=$2 vars=()
    shift 2
    while [[ "$1" == *=* ]]; do vars+=("$1"); shift; done
    if [ "$tool" = callgrind ]; then
        env "${vars[@]}" valgrind --tool=callgrind --quiet --callgrind-out-file="$run/cg/$name.%p" "$@" >"$run/$name.log" 2>&1 &
    else
        env "${vars[@]}" "$@" >"$run/$name.log" 2>&1 &
    fi
    pids+=($!) pass_pids+=($!)
}
sidecar() { # TOOL NAME IN OUT ADMIN ENV...
    local tool=$1 name=$2 in=$3 out=$4 admin=$5; shift 5
    under "$tool" "$name" MESH_PROXY_INBOUND="127.0.0.1:$in" MESH_PROXY_OUTBOUND="127.0.0.1:$out" \
        MESH_PROXY_ADMIN="127.0.0.1:$admin" MESH_PROXY_APP="127.0.0.1:$echo_port" \
        MESH_PROXY_ACCESS_LOG=false RUST_LOG=warn "$@" "$proxy_bin"
}

# Starts every pair of the pass; sets proc[PATH-SIDE] (the pid counted) and url[PATH].
declare -A proc url
start_pairs() { # TOOL
    local tool=$1 s_in s_out s_admin c_in c_out c_admin p
    pass_pids=()
    local slow=10
    [ "$tool" = callgrind ] && slow=300
    s_in=$(free_port) s_out=$(free_port) s_admin=$(free_port)
    case " $paths " in *" ours "*|*" ours-h2 "*)
        server_config "$run/server.yaml"
        sidecar "$tool" ours-server "$s_in" "$s_out" "$s_admin" MESH_PROXY_CONFIG="$run/server.yaml"
        proc[ours-server]=$! proc[ours-h2-server]=$!
        wait_port_for "$slow" "$s_in" ;;
    esac
    case " $paths " in *" ours "*)
        c_in=$(free_port) c_out=$(free_port) c_admin=$(free_port)
        client_config "$run/client.yaml" "$s_in"
        sidecar "$tool" ours-client "$c_in" "$c_out" "$c_admin" MESH_PROXY_CONFIG="$run/client.yaml"
        proc[ours-client]=$! url[ours]="http://127.0.0.1:$c_out/echo"
        wait_port_for "$slow" "$c_out" ;;
    esac
    case " $paths " in *" ours-h2 "*)
        # A second client sidecar whose DestinationRule upgrades to HTTP/2.
        h2_rule "$run/h2-rule.yaml"
        client_config "$run/client-h2.yaml" "$s_in"
        echo "resources: [h2-rule.yaml]" >> "$run/client-h2.yaml"
        c_in=$(free_port) c_out=$(free_port) c_admin=$(free_port)
        sidecar "$tool" ours-h2-client "$c_in" "$c_out" "$c_admin" MESH_PROXY_CONFIG="$run/client-h2.yaml"
        proc[ours-h2-client]=$! url[ours-h2]="http://127.0.0.1:$c_out/echo"
        wait_port_for "$slow" "$c_out" ;;
    esac
    case " $paths " in *" ours-mtls "*)
        local m_in m_out m_admin
        m_in=$(free_port) m_out=$(free_port) m_admin=$(free_port)
        sidecar "$tool" mtls-server "$m_in" "$m_out" "$m_admin" MESH_PROXY_CONTROL="http://127.0.0.1:$ctl_port" \
            MESH_PROXY_WORKLOAD=echo-v1 MESH_PROXY_SERVICE=echo MESH_PROXY_SERVICE_ACCOUNT=echo-v1 MESH_PROXY_LABELS="app=echo,version=v1"
        proc[ours-mtls-server]=$!
        c_in=$(free_port) c_out=$(free_port) c_admin=$(free_port)
        sidecar "$tool" mtls-client "$c_in" "$c_out" "$c_admin" MESH_PROXY_CONTROL="http://127.0.0.1:$ctl_port" \
            MESH_PROXY_WORKLOAD=loadgen MESH_PROXY_SERVICE=loadgen MESH_PROXY_SERVICE_ACCOUNT=loadgen MESH_PROXY_LABELS="app=loadgen,version=v1"
        proc[ours-mtls-client]=$! url[ours-mtls]="http://127.0.0.1:$c_out/echo"
        for a in "$m_admin" "$c_admin"; do
            local end=$((SECONDS + slow))
            until curl -sf "http://127.0.0.1:$a/ready" >/dev/null 2>&1; do
                (( SECONDS < end )) || { echo "the mTLS pair is not ready; see $run/mtls-*.log" >&2; exit 1; }
                sleep 0.5
            done
        done
        local stats
        curl -s -H "Host: echo" "http://127.0.0.1:$c_out/echo" -d hello >/dev/null || true
        stats=$(curl -s "http://127.0.0.1:$m_admin/stats/prometheus")
        grep -q 'connection_security_policy="mutual_tls"' <<<"$stats" \
            || { echo "the server sidecar did not see mTLS; see $run/mtls-*.log" >&2; exit 1; } ;;
    esac
    case " $paths " in *" nginx "*)
        local ns nc dir
        ns=$(free_port) nc=$(free_port)
        for side in server client; do
            if [ "$side" = server ]; then dir=$(nginx_config "$run/nginx-server" "$ns" "$echo_port")
            else dir=$(nginx_config "$run/nginx-client" "$nc" "$ns"); fi
            # One process, no master: the event loop a worker runs, serving requests in
            # the process valgrind starts (valgrind's gdbserver, which callgrind_control
            # talks to, does not follow a fork into the worker).
            sed -i '1i master_process off;' "$dir/nginx.conf"
            under "$tool" "nginx-$side" "$(command -v nginx)" -p "$dir" -c "$dir/nginx.conf"
            proc[nginx-$side]=$!
            wait_port_for "$slow" "$([ "$side" = server ] && echo "$ns" || echo "$nc")"
        done
        url[nginx]="http://127.0.0.1:$nc/echo" ;;
    esac
    case " $paths " in *" relay "*)
        local rs rc
        rs=$(free_port) rc=$(free_port)
        under "$tool" relay-server "$bin/examples/tcp-relay" "127.0.0.1:$rs" "127.0.0.1:$echo_port"; proc[relay-server]=$!
        under "$tool" relay-client "$bin/examples/tcp-relay" "127.0.0.1:$rc" "127.0.0.1:$rs"; proc[relay-client]=$!
        wait_port_for "$slow" "$rs"; wait_port_for "$slow" "$rc"
        url[relay]="http://127.0.0.1:$rc/echo" ;;
    esac
}
stop_pairs() {
    for p in "${pass_pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pass_pids[@]}"; do wait "$p" 2>/dev/null || true; done
}

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
load() { # URL COUNT [JSON]
    local report=()
    [ -n "${3:-}" ] && report=(--json "$3")
    "$bin/loadgen" -q --threads 1 --closed -c "$conns" -n "$2" -X POST --body "$body" -H "Host: echo" \
        --timeout 60s "${report[@]}" "$1" >/dev/null
}
# Every counted request must have been answered: a failure would count less work.
answered() { # JSON
    python3 -c 'import json, sys
r = json.load(open(sys.argv[1]))["requests"]
bad = r["errors"] + r.get("dropped", 0)
sys.exit(0 if bad == 0 and r["completed"] == int(sys.argv[2]) else 1)' "$1" "$requests" \
        || { echo "not every request was answered: see $1" >&2; exit 1; }
}

# Waits until strace is attached to every thread of a process.
traced() { # PID
    local end=$((SECONDS + 10)) f
    while (( SECONDS < end )); do
        f=0
        for s in /proc/"$1"/task/*/status; do
            awk '/^TracerPid/ { exit ($2 == 0) }' "$s" || f=1
        done
        (( f == 0 )) && return 0
        sleep 0.05
    done
    echo "strace did not attach to $1" >&2; exit 1
}

# callgrind_control, quiet unless it fails: control ARGS... PID.
control() {
    local out
    out=$(callgrind_control "$@" 2>&1) || true
    grep -q 'OK\.' <<<"$out" || { echo "callgrind_control $*: $out" >&2; exit 1; }
}

manifest=$run/manifest.tsv
: > "$manifest"
mkdir -p "$run/cg" "$run/strace"
for pass in $passes; do
    echo "Pass: $pass..." >&2
    start_pairs "$pass"
    for path in $paths; do
        load "${url[$path]}" "$warmup"
        cli=${proc[$path-client]} srv=${proc[$path-server]}
        case "$pass" in
            native)
                read -r cv0 cn0 < <(ctx_switches "$cli"); read -r sv0 sn0 < <(ctx_switches "$srv") ;;
            strace)
                strace -f -qq -o "$run/strace/$path-client" -p "$cli" & st_c=$!
                strace -f -qq -o "$run/strace/$path-server" -p "$srv" & st_s=$!
                traced "$cli"; traced "$srv" ;;
            callgrind)
                control -z "$cli"; control -z "$srv" ;;
        esac
        load "${url[$path]}" "$requests" "$run/$path-$pass.json"
        case "$pass" in
            native)
                read -r cv1 cn1 < <(ctx_switches "$cli"); read -r sv1 sn1 < <(ctx_switches "$srv")
                printf '%s\tclient\tctx\t%s\t%s\n' "$path" $((cv1 - cv0)) $((cn1 - cn0)) >> "$manifest"
                printf '%s\tserver\tctx\t%s\t%s\n' "$path" $((sv1 - sv0)) $((sn1 - sn0)) >> "$manifest" ;;
            strace)
                kill -INT "$st_c" "$st_s"; wait "$st_c" "$st_s" 2>/dev/null || true
                printf '%s\tclient\tstrace\t%s\n' "$path" "$run/strace/$path-client" >> "$manifest"
                printf '%s\tserver\tstrace\t%s\n' "$path" "$run/strace/$path-server" >> "$manifest" ;;
            callgrind)
                # Each dump is a file of its own, NAME.PID.N, complete once it has its
                # `totals:` line (callgrind_control does not wait for it).
                for side in client server; do
                    p=${proc[$path-$side]}
                    n=$(($(find "$run/cg" -name "*.$p.*" | wc -l) + 1))
                    control -d "$path" "$p"
                    end=$((SECONDS + 120))
                    until f=$(find "$run/cg" -name "*.$p.$n") && [ -n "$f" ] && grep -q '^totals:' "$f"; do
                        (( SECONDS < end )) || { echo "callgrind wrote no dump for $path $side" >&2; exit 1; }
                        sleep 0.2
                    done
                    printf '%s\t%s\tcallgrind\t%s\n' "$path" "$side" "$f" >> "$manifest"
                done ;;
        esac
        answered "$run/$path-$pass.json"
    done
    stop_pairs
done

args=(--requests "$requests" --warmup "$warmup" --conns "$conns" --manifest "$manifest")
case "$mode" in
    report) python3 bench/cost.py report "${args[@]}" ;;
    check) python3 bench/cost.py check "${args[@]}" --baseline "$baseline" ;;
    update) python3 bench/cost.py update "${args[@]}" --baseline "$baseline"
            echo "Rewrote $baseline; review its diff before committing." >&2 ;;
esac
