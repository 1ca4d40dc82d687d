#!/usr/bin/env bash
# Bookinfo on a local kind cluster: creates the cluster, builds our images, loads them
# into the cluster and deploys an overlay of k8s/, then waits until everything is ready
# and prints the product page's URL.
#
#   scripts/kind-up.sh                  our mesh (k8s/overlays/mesh)
#   scripts/kind-up.sh --overlay full   our mesh + ratings on MariaDB + a loadgen Job
#   scripts/kind-up.sh --overlay plain  no mesh
#   scripts/kind-up.sh --istio          real Istio (istioctl install) with our images
#   scripts/kind-up.sh --dry-run ...    print the commands instead of running them
#
# Needs docker, kind and kubectl (and istioctl for --istio). The cluster maps node port
# 30080 (the ingress gateway) to http://127.0.0.1:${KIND_HOST_PORT:-8080} on this machine.
# Options: --name CLUSTER (default bookinfo), --no-build (use the images already built),
# --timeout SECONDS (readiness wait, default 300).
set -euo pipefail
cd "$(dirname "$0")/.."

name=bookinfo
overlay=mesh
istio=false
build=true
dry_run=false
timeout=300
host_port=${KIND_HOST_PORT:-8080}

usage() {
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case $1 in
    --istio) istio=true overlay=istio ;;
    --overlay)
        overlay=${2:?--overlay needs a name}
        shift
        ;;
    --name)
        name=${2:?--name needs a cluster name}
        shift
        ;;
    --timeout)
        timeout=${2:?--timeout needs seconds}
        shift
        ;;
    --no-build) build=false ;;
    --dry-run) dry_run=true ;;
    -h | --help) usage 0 ;;
    *)
        echo "kind-up.sh: unknown option $1" >&2
        usage 64 >&2
        ;;
    esac
    shift
done
[ -d "k8s/overlays/$overlay" ] || { echo "kind-up.sh: no overlay k8s/overlays/$overlay" >&2; exit 64; }
if [ "$overlay" = istio ]; then istio=true; fi

step() { printf '\n==> %s\n' "$*" >&2; }
# Runs a command, or prints it (shell-quoted) with --dry-run.
run() {
    if $dry_run; then
        printf '+'
        printf ' %q' "$@"
        printf '\n'
    else
        "$@"
    fi
}
need() {
    $dry_run && return 0
    command -v "$1" >/dev/null || { echo "kind-up.sh: $1 is not installed ($2)" >&2; exit 1; }
}

need docker "https://docs.docker.com/engine/install/"
need kind "https://kind.sigs.k8s.io/docs/user/quick-start/#installation"
need kubectl "https://kubernetes.io/docs/tasks/tools/"
if $istio; then need istioctl "https://istio.io/latest/docs/setup/getting-started/#download"; fi

cluster_config="kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    extraPortMappings:
      - containerPort: 30080
        hostPort: $host_port
        listenAddress: 127.0.0.1"

step "Cluster $name"
if ! $dry_run && kind get clusters 2>/dev/null | grep -qx "$name"; then
    echo "kind cluster $name exists: reusing it" >&2
elif $dry_run; then
    printf '+ kind create cluster --name %q --config - <<CONFIG\n%s\nCONFIG\n' "$name" "$cluster_config"
else
    kind create cluster --name "$name" --config - <<<"$cluster_config"
fi
run kubectl config use-context "kind-$name"

# The images the overlay uses: ours are built and loaded, others are pulled by the node.
images=$(kubectl kustomize "k8s/overlays/$overlay" 2>/dev/null | sed -n 's/^ *image: *//p' | sort -u || true)
ours=$(grep '^bookinfo-rs/' <<<"$images" || true)
if $build; then
    step "Building the images (scripts/images.sh)"
    # Named as the overlays' `images:` map them (bookinfo-rs/<variant>:dev).
    run env REGISTRY=bookinfo-rs TAG=dev scripts/images.sh
fi
others=$(grep -v '^bookinfo-rs/' <<<"$images" || true)
step "Loading the images into the cluster"
for image in $ours; do
    run kind load docker-image --name "$name" "$image"
done
# Third-party images too (MariaDB): pulled once on this machine, not by every node.
for image in $others; do
    run docker pull --quiet "$image"
    run kind load docker-image --name "$name" "$image"
done

if $istio; then
    step "Installing Istio (demo profile) and deploying Bookinfo with our images"
    run istioctl install -y --set profile=demo
    # The gateway's port 80 on the node port kind maps to this machine.
    run kubectl -n istio-system patch service istio-ingressgateway -p '{"spec":{"ports":[{"port":80,"nodePort":30080}]}}'
    run kubectl apply -k "k8s/overlays/$overlay"
    run kubectl apply -f mesh/config/bookinfo-gateway.yaml -f mesh/config/destination-rule-all.yaml
else
    step "Deploying k8s/overlays/$overlay"
    if [ "$overlay" != plain ]; then
        run kubectl apply -k k8s/crds
        run kubectl wait --for condition=established --timeout=60s crd -l app.kubernetes.io/part-of=bookinfo-rs
    fi
    run kubectl apply -k "k8s/overlays/$overlay"
fi

step "Waiting for every Deployment to be available (up to ${timeout}s)"
run kubectl -n default wait --for condition=available --timeout="${timeout}s" deployment --all
if $istio; then
    run kubectl -n istio-system wait --for condition=available --timeout="${timeout}s" deployment --all
fi

step "Ready"
if [ "$overlay" = plain ]; then
    cat <<MSG
No gateway without a mesh: reach productpage with
  kubectl port-forward svc/productpage 9080:9080   ->  http://127.0.0.1:9080/productpage
MSG
else
    echo "Product page: http://127.0.0.1:$host_port/productpage"
fi
if ! $istio && [ "$overlay" != plain ]; then
    cat <<MSG
Control plane (dashboard, meshctl, chaos):
  kubectl port-forward svc/mesh-control 15010:15010   ->  http://127.0.0.1:15010/
  meshctl --control http://127.0.0.1:15010 apply -f mesh/config/virtual-service-all-v1.yaml
MSG
fi
echo "Remove everything: scripts/kind-down.sh --name $name"
