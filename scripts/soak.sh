#!/usr/bin/env bash
# The soak with faults: the whole mesh under `meshctl up` (release build, ports of its own,
# run directory .run/soak, workload certificates on a short lifetime so they rotate during
# the run) takes the Bookinfo mix through the gateway at 70 % of the maximum pages/s
# measured just before (closed model, 10 s), open model, for SOAK_DURATION (default 10m),
# while a schedule kills every app, every sidecar, the gateway and the control plane with
# SIGTERM and with SIGKILL, one fault every 15 to 20 s. Then `soak-report` attributes the
# failed requests and degraded pages to the faults, times the recovery, compares every
# process's memory at the first fault and at the end, and checks the targets; the exit
# code is 1 when one is not met.
#
#   scripts/soak.sh                      # 10 minutes, 28 faults: every process twice
#   SOAK_DURATION=2m scripts/soak.sh     # a short run: 6 faults, every kind of process
#
# SOAK_RUN_DIR (.run/soak) keeps the logs, the per-request log and report.txt;
# SOAK_CONNECTIONS (200) is the load's connection pool; SOAK_NO_BUILD=1 skips the build,
# SOAK_BIN_DIR (target/release) is where the binaries are.
# SOAK_KEEP_CA=1 keeps the control plane's CA root across its restarts (MESH_CONTROL_CA_DIR
# in the run directory; `meshctl up` itself gives the control plane no CA directory, so a
# restarted control plane signs with a new root).
set -euo pipefail

cd "$(dirname "$0")/.."

# Seconds in a duration written 90, 90s, 10m or 1h.
seconds() {
    case "$1" in
        *h) echo $((${1%h} * 3600)) ;;
        *m) echo $((${1%m} * 60)) ;;
        *s) echo "${1%s}" ;;
        *) echo "$1" ;;
    esac
}

duration_text=${SOAK_DURATION:-10m}
if ! [[ $duration_text =~ ^[0-9]+[hms]?$ ]]; then
    echo "soak.sh: SOAK_DURATION=$duration_text: expected a duration such as 10m, 90s or 1h" >&2
    exit 64
fi
duration=$(seconds "$duration_text")
if ((duration < 45)); then
    echo "soak.sh: SOAK_DURATION=$duration_text is too short: a fault needs 20 s of baseline before it and 20 s after" >&2
    exit 64
fi
# Certificates live a fifth of the run (at least 10 s): renewed at half life, every proxy
# rotates about ten times, on top of the fresh ones each restart brings.
cert_ttl=$((duration / 5 < 10 ? 10 : duration / 5))s
run=${SOAK_RUN_DIR:-.run/soak}
connections=${SOAK_CONNECTIONS:-200}
bin=${SOAK_BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
hz=$(getconf CLK_TCK)

if [ -z "${SOAK_NO_BUILD:-}" ]; then
    echo "Building the release binaries (several minutes the first time)..."
    cargo build --release --quiet --bins -p mesh-ctl -p mesh-control -p mesh-proxy \
        -p bookinfo-productpage -p bookinfo-details -p bookinfo-reviews -p bookinfo-ratings
    cargo build --release --quiet -p bookinfo-loadtest --bin loadgen --bin soak-report
fi
for b in meshctl loadgen soak-report; do
    [ -x "$bin/$b" ] || { echo "soak.sh: $bin/$b is missing (build first, or unset SOAK_NO_BUILD)" >&2; exit 1; }
done

now_ms() { date +%s%3N; }

# Wall-clock start of a process, milliseconds since the epoch (to the kernel's 10 ms tick):
# its start in ticks since boot, plus the boot time (now minus the uptime).
proc_start_ms() {
    local ticks
    ticks=$(awk '{ print $22 }' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$ticks" ] || return 1
    awk -v t="$ticks" -v hz="$hz" -v now="$(date +%s.%N)" \
        '{ printf "%.0f\n", (now - $1 + t / hz) * 1000 }' /proc/uptime
}

# The current pid of a process of the run, from meshctl's state file (empty while restarting).
pid_of() { jq -r --arg n "$1" '.processes[] | select(.name == $n) | .pid // empty' "$run/state.json" 2>/dev/null || true; }

# Nothing listens on any port of [first, first + count).
ports_free() {
    local first=$1 count=$2
    ! ss -Htln | awk '{ n = split($4, a, ":"); print a[n] }' |
        awk -v lo="$first" -v hi="$((first + count))" '$1 >= lo && $1 < hi { found = 1 } END { exit !found }'
}

# meshctl's port plan: workloads and the gateway's admin in blocks of 10 from the base
# port, then the control plane's and the gateway's own port. The first free set wins.
base=""
for candidate in 31100 32100 33100 34100 35100 36100; do
    if ports_free "$candidate" 80 && ports_free $((candidate + 100)) 2; then
        base=$candidate
        break
    fi
done
[ -n "$base" ] || { echo "soak.sh: no free block of ports found between 31100 and 36200" >&2; exit 1; }
control_port=$((base + 100))
gateway_port=$((base + 101))
url="http://127.0.0.1:$gateway_port"

rm -rf "$run"
mkdir -p "$run"
meshctl_pid=""
load_pid=""
cleanup() {
    if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
    if [ -n "$meshctl_pid" ] && kill -0 "$meshctl_pid" 2>/dev/null; then
        kill -INT "$meshctl_pid" 2>/dev/null || true
        wait "$meshctl_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

echo "meshctl up on ports $base.. (control $control_port, gateway $gateway_port), certificates for $cert_ttl, logs in $run"
# The control plane inherits meshctl's environment: that is how the lifetime (and the CA
# directory) reach it.
if [ "${SOAK_KEEP_CA:-0}" = 1 ]; then
    MESH_CONTROL_CA_DIR=$(realpath -m "$run/ca")
    export MESH_CONTROL_CA_DIR
    echo "  the CA root is kept in $MESH_CONTROL_CA_DIR across control-plane restarts (SOAK_KEEP_CA=1)"
fi
MESH_CONTROL_CERT_TTL=$cert_ttl "$bin/meshctl" --run-dir "$run" up --bin-dir "$bin" \
    --base-port "$base" --control-port "$control_port" --gateway-port "$gateway_port" \
    >"$run/meshctl.log" 2>&1 &
meshctl_pid=$!
# meshctl writes the state file once everything is ready and the first page answered.
for _ in $(seq 1 600); do
    [ -s "$run/state.json" ] && break
    kill -0 "$meshctl_pid" 2>/dev/null || { cat "$run/meshctl.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$run/state.json" ] || { echo "soak.sh: meshctl up was not ready in 60 s" >&2; tail -20 "$run/meshctl.log" >&2; exit 1; }
cp "$run/state.json" "$run/state-start.json"

echo "Calibrating: the Bookinfo mix, closed model, 32 connections, 10 s..."
"$bin/loadgen" --closed -c 32 -d 10s --bookinfo -q --json "$run/calibration.json" "$url" >"$run/calibration.txt"
max=$(jq -r '.achieved_rps' "$run/calibration.json")
rate=$(awk -v m="$max" 'BEGIN { printf "%.1f", m * 0.7 }')
echo "  maximum $max pages/s; the soak runs at 70 %: $rate pages/s for ${duration} s"

"$bin/soak-report" plan --state "$run/state-start.json" --duration "${duration}s" >"$run/plan.tsv"
echo "  $(wc -l <"$run/plan.tsv") faults planned ($run/plan.tsv)"

"$bin/loadgen" --rate "$rate" -d "${duration}s" -c "$connections" --bookinfo -q \
    --outcomes "$run/outcomes.jsonl" --json "$run/load.json" --html "$run/load.html" "$url" \
    >"$run/load.txt" 2>&1 &
load_pid=$!
t0=$(now_ms)

# One line per process: phase process role pid rss_kb started_unix_ms sampled_unix_ms.
sample_memory() {
    local name role pid rss
    {
        jq -r '.processes[] | select(.pid != null) | "\(.name) \(.role) \(.pid)"' "$run/state.json"
        echo "meshctl supervisor $meshctl_pid"
    } | while read -r name role pid; do
        rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null) || continue
        [ -n "$rss" ] || continue
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$name" "$role" "$pid" "$rss" \
            "$(proc_start_ms "$pid" || echo -)" "$(now_ms)"
    done >>"$run/memory.tsv"
}

first=1
: >"$run/faults.tsv"
while IFS=$'\t' read -r at_ms process role target flag signal; do
    wait_ms=$((t0 + at_ms - $(now_ms)))
    ((wait_ms > 0)) && sleep "$(awk -v w="$wait_ms" 'BEGIN { print w / 1000 }')"
    kill -0 "$load_pid" 2>/dev/null || { echo "soak.sh: the load ended early; see $run/load.txt" >&2; exit 1; }
    if ((first)); then
        sample_memory start
        first=0
    fi
    old=$(pid_of "$process")
    for _ in $(seq 1 100); do
        [ -n "$old" ] && break
        sleep 0.05
        old=$(pid_of "$process")
    done
    kill_ms=$(now_ms)
    "$bin/meshctl" --run-dir "$run" kill "$target" "$flag" --signal "$signal" >>"$run/kills.log" 2>&1 ||
        echo "soak.sh: meshctl kill $target $flag --signal $signal failed (see $run/kills.log)" >&2
    # The supervisor's replacement: a new pid in the state file (a SIGTERM drains first).
    new=""
    for _ in $(seq 1 1500); do
        new=$(pid_of "$process")
        [ -n "$new" ] && [ "$new" != "$old" ] && break
        new=""
        sleep 0.02
    done
    restart_ms=-
    [ -n "$new" ] && restart_ms=$(proc_start_ms "$new" || echo -)
    workload=$target
    [ "$role" = control ] && workload=-
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kill_ms" "$process" "$role" "$workload" "$signal" \
        "${old:--}" "${new:--}" "$restart_ms" >>"$run/faults.tsv"
    if [ "$restart_ms" = - ]; then
        after="no restart seen in 30 s"
    else
        after="restarted after $(awk -v d="$((restart_ms - kill_ms))" 'BEGIN { printf "%.2f", d / 1000 }') s"
    fi
    printf '  [%5.1f s] %s %s (%s): %s\n' "$(awk -v a="$at_ms" 'BEGIN { print a / 1000 }')" \
        "$signal" "$process" "$role" "$after"
done <"$run/plan.tsv"

echo "Waiting for the load to finish..."
wait "$load_pid" || { echo "soak.sh: loadgen failed; see $run/load.txt" >&2; load_pid=""; exit 1; }
load_pid=""
sample_memory end
cleanup
meshctl_pid=""

echo
status=0
"$bin/soak-report" report --state "$run/state-start.json" --outcomes "$run/outcomes.jsonl" \
    --load "$run/load.json" --faults "$run/faults.tsv" --memory "$run/memory.tsv" \
    --calibration "$run/calibration.json" --cert-ttl "$cert_ttl" | tee "$run/report.txt" || status=$?
echo "Report: $run/report.txt; the load's own report: $run/load.txt, $run/load.html"
exit "$status"
