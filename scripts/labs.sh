#!/usr/bin/env bash
# The scripted labs in labs/: each README's command blocks run in order against a fresh
# `meshctl up` on free ports, and the `expect` block after each is checked.
#
#   scripts/labs.sh list                     # the labs, their titles and step counts
#   scripts/labs.sh check                    # parse every README, run nothing
#   scripts/labs.sh run 03-fault-injection   # one lab (or several; a number prefix is enough)
#   scripts/labs.sh run all                  # every lab
#
# It builds what it needs first: the labs runner for list/check, every binary of the
# workspace (debug profile, or LABS_PROFILE=release) for run. The labs' commands use curl,
# jq, openssl and python3, as a student's would: on Debian, run installs what is missing
# (as root, or with sudo). Extra options go to the runner (`scripts/labs.sh run --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${LABS_PROFILE:-debug}
case "$profile" in
    debug) flags=() ;;
    release) flags=(--release) ;;
    *) echo "labs.sh: LABS_PROFILE must be debug or release, not '$profile'" >&2; exit 64 ;;
esac
target=${CARGO_TARGET_DIR:-target}
# The labs talk to loopback; a proxy set on the machine must not capture them.
unset HTTP_PROXY http_proxy HTTPS_PROXY https_proxy ALL_PROXY all_proxy

case "${1:-}" in
    list | check)
        cargo build --quiet "${flags[@]}" -p bookinfo-labs
        ;;
    run)
        missing=()
        for tool in curl jq openssl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
        if [ ${#missing[@]} -gt 0 ]; then
            echo "Installing ${missing[*]} (apt), which the labs' commands use..." >&2
            sudo=(); [ "$(id -u)" = 0 ] || sudo=(sudo -n)
            { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
                apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1 \
                || { echo "labs.sh: the labs need ${missing[*]}: install them (apt-get install ${missing[*]})" >&2; exit 1; }
        fi
        echo "Building every binary ($profile)..." >&2
        cargo build --quiet "${flags[@]}" --workspace --bins
        ;;
    -h | --help | help)
        sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "usage: scripts/labs.sh list | check | run LAB... | run all" >&2
        exit 64
        ;;
esac
exec "$target/$profile/labs" "$@"
