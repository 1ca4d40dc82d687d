#!/usr/bin/env bash
# Runs the Bookinfo demo on this machine: the four services as local processes on
# 127.0.0.1, wired together, each supervised by this script. Ctrl-C stops them all.
#
#   scripts/demo.sh                      # productpage on http://127.0.0.1:9080/productpage
#   REVIEWS_VERSION=v3 scripts/demo.sh   # which reviews to run: v1 (no stars), v2 (black), v3 (red)
#   DEMO_PORT=8000 scripts/demo.sh       # first port; the others follow it
#
# Without a mesh there is nothing to split traffic between reviews versions, so one
# version runs; `meshctl up` runs all three behind the mesh.
set -euo pipefail
cd "$(dirname "$0")/.."

version=${REVIEWS_VERSION:-v2}
case "$version" in v1|v2|v3) ;; *) echo "demo.sh: REVIEWS_VERSION must be v1, v2 or v3 (got '$version')" >&2; exit 64;; esac
base=${DEMO_PORT:-9080}
[[ "$base" =~ ^[0-9]+$ ]] && (( base > 0 && base < 65532 )) || { echo "demo.sh: DEMO_PORT must be a port number (got '$base')" >&2; exit 64; }
pp=$base details=$((base + 1)) reviews=$((base + 2)) ratings=$((base + 3))
logs=${BOOKINFO_RUN_DIR:-.run}/demo-logs
mkdir -p "$logs"

echo "Building the services (release mode; the first build takes a few minutes)..." >&2
cargo build --release --quiet -p bookinfo-productpage -p bookinfo-details -p bookinfo-reviews -p bookinfo-ratings
bin=target/release

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$pp" "$details" "$reviews" "$ratings"; do
    port_free "$p" || { echo "demo.sh: port $p on 127.0.0.1 is already in use (set DEMO_PORT to use other ports)" >&2; exit 1; }
done

pids=()
stop() {
    trap - INT TERM EXIT
    echo >&2; echo "Stopping..." >&2
    for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    echo "Stopped." >&2
}
trap stop INT TERM EXIT

# Runs one service in the background; env assignments come first, then the binary.
run() {
    local name=$1; shift
    env BIND_ADDRESS=127.0.0.1 "$@" >"$logs/$name.log" 2>&1 &
    pids+=($!)
}
run ratings   PORT="$ratings" SERVICE_VERSION=v1 HOSTNAME=ratings-v1-local "$bin/ratings"
run details   PORT="$details" HOSTNAME=details-v1-local "$bin/details"
run reviews   PORT="$reviews" SERVICE_VERSION="$version" HOSTNAME="reviews-$version-local" \
              RATINGS_HOSTNAME=127.0.0.1 RATINGS_SERVICE_PORT="$ratings" "$bin/reviews"
run productpage PORT="$pp" HOSTNAME=productpage-v1-local \
              DETAILS_HOSTNAME=127.0.0.1 DETAILS_SERVICE_PORT="$details" \
              REVIEWS_HOSTNAME=127.0.0.1 REVIEWS_SERVICE_PORT="$reviews" \
              RATINGS_HOSTNAME=127.0.0.1 RATINGS_SERVICE_PORT="$ratings" "$bin/productpage"

# Wait (bounded) until every service answers its health check.
for p in "$pp" "$details" "$reviews" "$ratings"; do
    for _ in $(seq 1 100); do
        port_free "$p" || break
        sleep 0.05
    done
    if port_free "$p"; then
        echo "demo.sh: a service did not start on port $p; its log is in $logs/" >&2
        tail -n 5 "$logs"/*.log >&2 || true
        exit 1
    fi
done

cat <<MSG

  Bookinfo is running (reviews $version, no mesh).

    Product page:  http://127.0.0.1:$pp/productpage
    JSON API:      http://127.0.0.1:$pp/api/v1/products/0/reviews
    Services:      details :$details   reviews :$reviews   ratings :$ratings
    Logs:          $logs/

  Sign in as "jason" on the page to send the end-user header. Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
echo "demo.sh: a service exited; see $logs/" >&2
