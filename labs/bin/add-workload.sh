#!/usr/bin/env bash
# Adds one more workload to a running `meshctl up`: a Bookinfo app of another version
# (ratings v-faulty, ratings v-unhealthy, details v2, ...) with its own sidecar, the way a
# Deployment with an injected sidecar joins the mesh. The labs use it where istio.io
# applies a Deployment with `kubectl apply -f`.
#
#   labs/bin/add-workload.sh SERVICE VERSION     e.g. ratings v-faulty
#   labs/bin/add-workload.sh --stop NAME         e.g. ratings-v-faulty
#
# Run it from the folder `meshctl up` runs in: it reads `.run/meshctl/state.json` for the
# control plane and the port plan, and writes its logs next to meshctl's
# (`.run/meshctl/logs/NAME.log`, `NAME-proxy.log`). The new workload takes the block of
# ten ports after meshctl's seven (15170 to 15179 with the default ports; the next one
# 15180...): app, outbound, inbound, admin, as every block. It keeps running until
# `--stop` (stopping `meshctl up` does not stop it).
set -euo pipefail

run_dir=.run/meshctl
state=$run_dir/state.json
extra=$run_dir/extra
die() { echo "add-workload: $*" >&2; exit 1; }

stop() {
    local pids=$extra/$1.pids
    [ -f "$pids" ] || die "no workload $1 was added here"
    # shellcheck disable=SC2046
    kill $(cat "$pids") 2>/dev/null || true
    rm -f "$pids"
    grep -lx "$1" "$extra"/slot-* 2>/dev/null | xargs -r rm -f
    echo "workload $1 stopped"
}

if [ "${1:-}" = "--stop" ]; then
    [ $# -eq 2 ] || die "usage: $0 --stop NAME"
    stop "$2"
    exit 0
fi
[ $# -eq 2 ] || die "usage: $0 SERVICE VERSION (e.g. ratings v-faulty) | --stop NAME"
service=$1 version=$2 name="$1-$2"
[ -f "$state" ] || die "no $state: start \`meshctl up\` first, and run this from the same folder"
[ -f "$extra/$name.pids" ] && die "$name is already running (stop it with --stop $name)"

bin_dir=$(dirname "$(command -v meshctl || die "meshctl is not on PATH")")
control=$(jq -r .control_url "$state")
base=$(jq -r '.processes[] | select(.name == "productpage-v1") | .ports.app' "$state")
if [ -z "$base" ] || [ "$base" = null ]; then die "cannot find the port plan in $state"; fi
mkdir -p "$extra" "$run_dir/logs"
# The first free block after meshctl's seven slots (0 to 6) and those added before.
slot=7
while [ -f "$extra/slot-$slot" ]; do slot=$((slot + 1)); done
echo "$name" > "$extra/slot-$slot"
app=$((base + 10 * slot)) outbound=$((base + 10 * slot + 1))
inbound=$((base + 10 * slot + 2)) admin=$((base + 10 * slot + 3))

# What the version's image bakes in: details v2 is the one that asks the external books
# API (its manifest's DO_NOT_ENCRYPT=true, if wanted, comes from the caller's environment).
image_env=()
if [ "$name" = details-v2 ]; then image_env=(ENABLE_EXTERNAL_BOOK_SERVICE=true); fi
# Each in its own session, so it outlives the shell that started it.
env -u HTTP_PROXY -u http_proxy "${image_env[@]}" PORT=$app BIND_ADDRESS=127.0.0.1 SERVICE_VERSION="$version" \
    HOSTNAME="$name" HTTP_PROXY="http://127.0.0.1:$outbound" \
    setsid "$bin_dir/$service" >> "$run_dir/logs/$name.log" 2>&1 < /dev/null &
app_pid=$!
# Its credential, as `meshctl up` gives every proxy one: a random token in a file only we
# can read, and the identity it stands for appended to the control plane's tokens file
# (re-read within a second). Without it the control plane would refuse the registration.
tokens=$run_dir/tokens
[ -f "$tokens/workload-tokens.yaml" ] || die "no $tokens/workload-tokens.yaml: start \`meshctl up\` (with the mesh) first"
token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
token_file=$tokens/$name.token
(umask 077 && printf '%s\n' "$token" > "$token_file")
printf -- '- token: "%s"\n  namespace: "default"\n  serviceAccount: "bookinfo-%s"\n  workload: "%s"\n' \
    "$token" "$service" "$name" >> "$tokens/workload-tokens.yaml"
env -u HTTP_PROXY -u http_proxy -u MESH_PROXY_TOKEN MESH_PROXY_TOKEN_FILE="$token_file" \
    MESH_PROXY_CONTROL="$control" MESH_PROXY_NAMESPACE=default \
    MESH_PROXY_MODE=sidecar MESH_PROXY_WORKLOAD="$name" MESH_PROXY_SERVICE="$service" \
    MESH_PROXY_SERVICE_ACCOUNT="bookinfo-$service" MESH_PROXY_LABELS="app=$service,version=$version" \
    MESH_PROXY_OUTBOUND="127.0.0.1:$outbound" MESH_PROXY_INBOUND="127.0.0.1:$inbound" \
    MESH_PROXY_APP="127.0.0.1:$app" MESH_PROXY_ADMIN="127.0.0.1:$admin" \
    setsid "$bin_dir/mesh-proxy" >> "$run_dir/logs/$name-proxy.log" 2>&1 < /dev/null &
echo "$app_pid $!" > "$extra/$name.pids"

for _ in $(seq 1 100); do
    if curl -sf -o /dev/null "http://127.0.0.1:$admin/ready"; then
        echo "workload $name added: app on $app, sidecar inbound $inbound, admin $admin"
        exit 0
    fi
    sleep 0.1
done
stop "$name" >/dev/null
die "$name was not ready within 10 s: see $run_dir/logs/$name.log and $name-proxy.log"
