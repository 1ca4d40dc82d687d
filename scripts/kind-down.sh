#!/usr/bin/env bash
# Deletes the kind cluster made by scripts/kind-up.sh, and everything in it.
#
#   scripts/kind-down.sh [--name CLUSTER] [--dry-run]
set -euo pipefail

name=bookinfo
dry_run=false
while [ $# -gt 0 ]; do
    case $1 in
    --name)
        name=${2:?--name needs a cluster name}
        shift
        ;;
    --dry-run) dry_run=true ;;
    -h | --help)
        sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "kind-down.sh: unknown option $1" >&2
        exit 64
        ;;
    esac
    shift
done

if $dry_run; then
    printf '+ kind delete cluster --name %q\n' "$name"
    exit 0
fi
command -v kind >/dev/null || { echo "kind-down.sh: kind is not installed" >&2; exit 1; }
kind delete cluster --name "$name"
