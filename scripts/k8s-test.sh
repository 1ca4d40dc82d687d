#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests under k8s/ (no cluster needed):
#   1. shellcheck of the Kubernetes scripts;
#   2. the copies under k8s/ equal their originals (k8s/sync.sh --check);
#   3. every overlay renders with `kubectl kustomize`;
#   4. every rendered object validates strictly against the Kubernetes ${K8S_VERSION}
#      schemas (kubernetes-validate, offline), and the Istio kinds against our CRDs
#      (k8s/crds) as the API server would;
#   5. consistency of each render: images ours and tagged, referenced ConfigMaps,
#      Secrets and service accounts present, Service selectors and target ports
#      matching pods, probes on declared ports, Pod Security "restricted" settings.
# Failures name the overlay and the object. Cross-checks against the Rust code (env
# names, ports, subsets) are in mesh/ctl/tests/k8s.rs.
#
#   scripts/k8s-test.sh
#
# Installs what it needs when missing: kubernetes-validate (pip, in a venv under .run/
# when the system Python refuses), shellcheck (apt). kubectl cannot be installed from
# the distribution (Debian's is too old for kustomize components): without it the
# render and validation steps are skipped with a message, or fail with K8S_TEST_STRICT=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

K8S_VERSION=${K8S_VERSION:-1.34.0}
overlays=(plain mesh istio full)
scripts=(scripts/k8s-test.sh scripts/kind-up.sh scripts/kind-down.sh k8s/sync.sh)

say() { echo "k8s-test: $*" >&2; }
die() {
    say "FAIL: $*"
    exit 1
}

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        return 1
    fi
}

apt_install() {
    command -v apt-get >/dev/null || return 1
    as_root apt-get install -y -qq "$@" >/dev/null 2>&1 ||
        { as_root apt-get update -qq >/dev/null 2>&1 && as_root apt-get install -y -qq "$@" >/dev/null 2>&1; }
}

# --- 1. shellcheck -------------------------------------------------------------------
if ! command -v shellcheck >/dev/null; then
    say "installing shellcheck (apt)"
    apt_install shellcheck || die "shellcheck is not installed and apt-get could not install it"
fi
shellcheck "${scripts[@]}" || die "shellcheck found problems in ${scripts[*]}"
say "shellcheck: ${#scripts[@]} scripts clean"

# --- 2. copies -----------------------------------------------------------------------
k8s/sync.sh --check || die "copies under k8s/ are stale: run k8s/sync.sh"

# --- 3. render -----------------------------------------------------------------------
if ! command -v kubectl >/dev/null; then
    msg="kubectl is not installed: the overlays were NOT rendered or validated (install kubectl 1.27+ from https://kubernetes.io/docs/tasks/tools/; it includes kustomize)"
    [ "${K8S_TEST_STRICT:-0}" = 1 ] && die "$msg"
    say "SKIPPED: $msg"
    exit 0
fi
render_dir=$(mktemp -d)
trap 'rm -rf "$render_dir"' EXIT
kubectl kustomize k8s/crds >"$render_dir/crds.yaml" 2>"$render_dir/err" ||
    die "k8s/crds does not render: $(cat "$render_dir/err")"
for o in "${overlays[@]}"; do
    kubectl kustomize "k8s/overlays/$o" >"$render_dir/$o.yaml" 2>"$render_dir/err" ||
        die "overlay $o does not render: $(cat "$render_dir/err")"
done
say "rendered ${overlays[*]} and crds"

# --- 4./5. validate ------------------------------------------------------------------
python=python3
if ! "$python" -c 'import kubernetes_validate' 2>/dev/null; then
    venv="${BOOKINFO_RUN_DIR:-$repo/.run}/k8s-validate-venv"
    if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import kubernetes_validate' 2>/dev/null; then
        python="$venv/bin/python"
    else
        say "installing kubernetes-validate (pip)"
        if ! python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate >/dev/null 2>&1; then
            python3 -m venv "$venv" >/dev/null 2>&1 || { apt_install python3-venv && python3 -m venv "$venv"; } ||
                die "cannot create a Python venv for kubernetes-validate (install python3-venv)"
            "$venv/bin/python" -m pip install --quiet --disable-pip-version-check kubernetes-validate ||
                die "pip could not install kubernetes-validate"
            python="$venv/bin/python"
        fi
    fi
fi

"$python" - "$K8S_VERSION" "$render_dir" "${overlays[@]}" <<'PY'
import sys
import warnings

import jsonschema
import kubernetes_validate
import yaml

version, render_dir, overlays = sys.argv[1], sys.argv[2], sys.argv[3:]
failures = []


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def strip_extensions(schema):
    """An openAPIV3Schema as plain JSON Schema (x-kubernetes-* keys dropped)."""
    if isinstance(schema, dict):
        return {k: strip_extensions(v) for k, v in schema.items() if not k.startswith("x-kubernetes-")}
    if isinstance(schema, list):
        return [strip_extensions(v) for v in schema]
    return schema


crds = {}
for crd in load(f"{render_dir}/crds.yaml"):
    try:
        kubernetes_validate.validate(crd, version, strict=True)
    except kubernetes_validate.ValidationError as e:
        failures.append(f"crds: CustomResourceDefinition/{crd['metadata']['name']}: {e.message} at {list(e.path)}")
    spec = crd["spec"]
    for v in spec["versions"]:
        if v.get("served"):
            crds[(f"{spec['group']}/{v['name']}", spec["names"]["kind"])] = strip_extensions(v["schema"]["openAPIV3Schema"])
crd_groups = {api.split("/")[0] for api, _ in crds}

OURS = ("bookinfo-rs/",)
THIRD_PARTY = ("docker.io/library/mariadb:", "docker.io/prom/prometheus:", "docker.io/grafana/grafana:")


def pod_spec(obj):
    kind = obj["kind"]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return obj["spec"]["template"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]
    if kind == "Pod":
        return obj
    return None


def check_overlay(name, docs):
    fail = lambda obj, msg: failures.append(f"overlay {name}: {obj['kind']}/{obj['metadata'].get('name')}: {msg}")
    have = {(d["kind"], d["metadata"]["name"]) for d in docs}
    pods = []
    for obj in docs:
        api, kind = obj.get("apiVersion", ""), obj.get("kind", "")
        if api.split("/")[0] in crd_groups:
            schema = crds.get((api, kind))
            if schema is None:
                fail(obj, f"{api} {kind} is not served by the CRDs in k8s/crds")
                continue
            try:
                jsonschema.validate(obj, schema)
            except jsonschema.ValidationError as e:
                fail(obj, f"{e.message} at {list(e.path)}")
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            fail(obj, f"{e.message} at {'.'.join(str(p) for p in e.path)}")
        except kubernetes_validate.SchemaNotFoundError as e:
            fail(obj, e.message)
        template = pod_spec(obj)
        if template is not None:
            pods.append((obj, template))

    tags = {c["image"].rsplit(":", 1)[-1] for _, t in pods for c in t["spec"].get("containers", []) + t["spec"].get("initContainers", []) if c.get("image", "").startswith(OURS)}
    if len(tags) > 1:
        failures.append(f"overlay {name}: our images carry different tags {sorted(tags)} (an overlay `images:` entry without newTag?)")

    for obj, template in pods:
        spec = template["spec"]
        labels = template.get("metadata", {}).get("labels", {})
        sa = spec.get("serviceAccountName")
        if sa and ("ServiceAccount", sa) not in have:
            fail(obj, f"service account {sa} is not in the render")
        for vol in spec.get("volumes", []):
            for key, kind in (("configMap", "ConfigMap"), ("secret", "Secret")):
                if key in vol:
                    ref = vol[key].get("name") or vol[key].get("secretName")
                    if (kind, ref) not in have and not vol[key].get("optional"):
                        fail(obj, f"volume {vol['name']}: {kind} {ref} is not in the render")
        psc = spec.get("securityContext", {})
        if psc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            fail(obj, "pod securityContext.seccompProfile.type is not RuntimeDefault")
        volumes = {v["name"] for v in spec.get("volumes", [])}
        containers = spec.get("containers", []) + spec.get("initContainers", [])
        for c in containers:
            where = f"container {c['name']}"
            image = c.get("image", "")
            if not image.startswith(OURS + THIRD_PARTY):
                fail(obj, f"{where}: image {image} is not ours (an overlay `images:` entry is missing)")
            last = image.rsplit("/", 1)[-1]
            if ":" not in last or last.endswith(":latest"):
                fail(obj, f"{where}: image {image} has no fixed tag (kind-loaded images need one)")
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                fail(obj, f"{where}: allowPrivilegeEscalation is not false")
            if sc.get("readOnlyRootFilesystem") is not True:
                fail(obj, f"{where}: readOnlyRootFilesystem is not true")
            if [x.upper() for x in sc.get("capabilities", {}).get("drop", [])] != ["ALL"]:
                fail(obj, f"{where}: capabilities.drop is not [ALL]")
            if sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is not True:
                fail(obj, f"{where}: runAsNonRoot is not true")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            if not isinstance(uid, int) or uid == 0:
                fail(obj, f"{where}: runAsUser is not a numeric non-root UID")
            res = c.get("resources", {})
            if not res.get("requests") or not res.get("limits", {}).get("memory"):
                fail(obj, f"{where}: needs resource requests and a memory limit")
            ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
            numbers = set(ports.values())
            for probe_kind in ("startupProbe", "readinessProbe", "livenessProbe"):
                probe = c.get(probe_kind)
                if not probe:
                    continue
                action = probe.get("httpGet") or probe.get("tcpSocket") or {}
                port = action.get("port")
                if isinstance(port, str) and port not in ports:
                    fail(obj, f"{where}: {probe_kind} uses port {port}, not a port of this container")
                if isinstance(port, int) and port not in numbers:
                    fail(obj, f"{where}: {probe_kind} uses port {port}, not declared by this container")
            for m in c.get("volumeMounts", []):
                if m["name"] not in volumes:
                    fail(obj, f"{where}: volume mount {m['name']} has no volume")
            for e in c.get("env", []):
                ref = e.get("valueFrom", {})
                for key, kind in (("secretKeyRef", "Secret"), ("configMapKeyRef", "ConfigMap")):
                    if key in ref and (kind, ref[key]["name"]) not in have and not ref[key].get("optional"):
                        fail(obj, f"{where}: env {e['name']}: {kind} {ref[key]['name']} is not in the render")
        if obj["kind"] == "Deployment":
            selector = obj["spec"]["selector"].get("matchLabels", {})
            if any(labels.get(k) != v for k, v in selector.items()):
                fail(obj, "selector does not match the pod template's labels")

    for svc in (d for d in docs if d["kind"] == "Service"):
        selector = svc["spec"].get("selector") or {}
        matched = [(o, t) for o, t in pods if all(t.get("metadata", {}).get("labels", {}).get(k) == v for k, v in selector.items())]
        if selector and not matched:
            fail(svc, f"selector {selector} matches no pod in the render")
        for port in svc["spec"].get("ports", []):
            target = port.get("targetPort", port["port"])
            for o, t in matched:
                cs = t["spec"].get("containers", []) + t["spec"].get("initContainers", [])
                declared = [p for c in cs for p in c.get("ports", [])]
                if not any(p.get("name") == target or p["containerPort"] == target for p in declared):
                    fail(svc, f"port {port.get('name')}: target {target} is not a port of {o['kind']}/{o['metadata']['name']}")
    return len(docs)


counts = []
for overlay in overlays:
    counts.append(f"{overlay} {check_overlay(overlay, load(f'{render_dir}/{overlay}.yaml'))}")
if failures:
    for f in failures:
        print(f"k8s-test: FAIL: {f}", file=sys.stderr)
    sys.exit(1)
print(f"k8s-test: valid against Kubernetes {version} and k8s/crds ({len(crds)} Istio kind versions); objects per overlay: {', '.join(counts)}", file=sys.stderr)
PY
