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
# Kubernetes files; valgrind and strace for the cost check; Chromium for the dashboard's
# browser test (required here: BOOKINFO_REQUIRE_CHROMIUM=1, so a missing browser fails).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

step() { printf '\n==> %s\n' "$*" >&2; }

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
# Tests talk to loopback servers; a proxy set on the machine must not capture them.
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy

command -v cargo >/dev/null || { echo "test.sh: cargo is not installed (https://rustup.rs)" >&2; exit 1; }

step "Installing Chromium for the dashboard's browser test"
if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y -qq chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }
    else
        sudo apt-get install -y -qq chromium >/dev/null
    fi
fi
export BOOKINFO_REQUIRE_CHROMIUM=1

step "Starting a private MariaDB for the ratings v2 tests"
scripts/mariadb.sh start
# shellcheck disable=SC2046
export $(scripts/mariadb.sh env | sed 's/^MYSQL_DB_/RATINGS_TEST_MYSQL_/')
trap 'scripts/mariadb.sh stop >/dev/null 2>&1 || true' EXIT

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
