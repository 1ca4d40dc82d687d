#!/usr/bin/env bash
# The test command: installs and starts what the tests need, then runs every check CI runs.
#
#   scripts/test.sh            # everything: format, lints, k8s files, compose, the labs, the
#                              # proxy's cost per request (valgrind), the test suite
#   scripts/test.sh -p NAME    # extra arguments go to the test runner (e.g. one package);
#                              # the k8s, compose, labs and cost checks are skipped then
#
# What it needs on a fresh Debian machine it installs itself (as root, or with sudo):
# MariaDB for the ratings v2 tests, started as a private server on a loopback port;
# podman, runc and podman-compose for the compose run; kubernetes-validate for the
# Kubernetes files; valgrind and strace for the cost check; Prometheus (Debian's
# `prometheus`) for the test that runs every Grafana dashboard query against a live mesh;
# Chromium for the dashboard's browser test (required here: BOOKINFO_REQUIRE_CHROMIUM=1,
# so a missing browser fails).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*" >&2; }

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# Tests talk to loopback servers; a proxy set on the machine must not capture them.
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy

command -v cargo >/dev/null || { echo "test.sh: cargo is not installed (https://rustup.rs)" >&2; exit 1; }

step "Starting a private MariaDB for the ratings v2 tests"
scripts/mariadb.sh start
# shellcheck disable=SC2046
export $(scripts/mariadb.sh env | sed 's/^MYSQL_DB_/RATINGS_TEST_MYSQL_/')
trap 'scripts/mariadb.sh stop >/dev/null 2>&1 || true' EXIT

# Installs a Debian package unless its command is there already; the tests that need it
# are then told to fail instead of skipping when it is missing.
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo -n "$@"; fi; }
install_package() { # command package
    command -v "$1" >/dev/null && return 0
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 ||
        { as_root apt-get update -qq >/dev/null 2>&1 &&
            as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1; } ||
        { echo "test.sh: cannot install $2 (apt-get install $2)" >&2; exit 1; }
}

step "Installing Prometheus for the dashboard-query test (apt-get install prometheus)"
install_package prometheus prometheus
export BOOKINFO_REQUIRE_PROMETHEUS=1
prometheus --version 2>&1 | head -1 >&2

step "Installing Chromium for the dashboard's browser test (apt-get install chromium)"
install_package chromium chromium
export BOOKINFO_REQUIRE_CHROMIUM=1
chromium --version 2>&1 | head -1 >&2

step "Checking formatting (cargo fmt --check)"
cargo fmt --all -- --check

step "Linting (cargo clippy --all-targets -- -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "Building every binary (the end-to-end tests run the real programs)"
cargo build --workspace --bins --locked

if [ $# -eq 0 ]; then
    step "Kubernetes files: rendered and validated offline"
    scripts/k8s-test.sh
    step "docker-compose.yml for real: static images, podman-compose up, the tour, load"
    scripts/compose-test.sh
    step "The labs: every labs/*/README.md run step by step against its own meshctl up"
    scripts/labs.sh run all
    step "Cost per request of the sidecar pair: instructions and system calls against bench/cost-baseline.txt"
    scripts/bench-cost.sh --check
else
    step "Skipping the Kubernetes, compose, labs and cost checks (a subset of the tests was asked for)"
fi

step "Running the test suite"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast "$@"
else
    cargo test --workspace --locked --no-fail-fast "$@"
fi
