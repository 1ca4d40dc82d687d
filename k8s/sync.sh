#!/usr/bin/env bash
# Copies the files kustomize needs from elsewhere in the repository into k8s/ (kustomize
# reads only files under a kustomization's own folder). The Rust test
# mesh/ctl/tests/k8s.rs fails while a copy differs from its original.
#   k8s/sync.sh           refresh the copies
#   k8s/sync.sh --check   exit 1 and name the stale copies instead
set -euo pipefail
cd "$(dirname "$0")/.."

pairs=(
    mesh/config/bookinfo-gateway.yaml k8s/components/istio-routing/config/bookinfo-gateway.yaml
    mesh/config/destination-rule-all.yaml k8s/components/istio-routing/config/destination-rule-all.yaml
    scripts/mariadb-init.sql k8s/components/ratings-mysql/mysqldb-init.sql
)

check=false
[ "${1:-}" = "--check" ] && check=true
stale=0
for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    from=${pairs[i]} to=${pairs[i + 1]}
    if cmp -s "$from" "$to"; then
        continue
    fi
    if $check; then
        echo "stale copy: $to differs from $from (run k8s/sync.sh)" >&2
        stale=1
    else
        cp "$from" "$to"
        echo "updated $to"
    fi
done
exit "$stale"
