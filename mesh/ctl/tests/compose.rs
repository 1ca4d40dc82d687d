//! docker compose and Kubernetes run the same suite: the same workloads with the same
//! images, service accounts, labels, settings and ports. A trainer who shows the compose
//! stack on a laptop and then the kind cluster must not find reviews v3 black in one of
//! them, or a sidecar registering under another name.
//!
//! Each side is read as its runtime sees it: for compose, the image stage's `ENV`
//! (from the `Dockerfile`, along its `FROM` chain) under the service's `environment:`,
//! with YAML merge keys resolved; for Kubernetes, the Deployment's containers with the
//! mesh component's patches and the downward-API values filled in. Every difference is
//! either a failure or listed below with the reason it is by design. That each variable
//! is one the program reads is `tests/k8s.rs`'s check; agreement carries it over to compose.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod manifests;

use std::collections::{BTreeMap, BTreeSet};

use manifests::{arr, docs, file, name, port_of, repo_dir, s};
use serde_json::Value;

type Env = BTreeMap<String, String>;

/// The images `scripts/images.sh` builds: the words of its `IMAGES=( ... )` list.
fn images_sh() -> BTreeSet<String> {
    let text = include_str!("../../../scripts/images.sh");
    let list = text.split_once("IMAGES=(").expect("IMAGES=(").1;
    let list = list.split_once(')').expect("IMAGES=( ... )").0;
    list.split_whitespace().map(str::to_owned).collect()
}

/// What a container in Kubernetes gets from a Secret, spelled the same in both readings.
const FROM_SECRET: &str = "<from a Secret>";

/// Variables only one side sets, and why.
const ONE_SIDED: [(&str, &str); 8] = [
    (
        "MESH_CONTROL_CA_DIR",
        "compose keeps the CA root on a named volume; Kubernetes in a Secret \
         (MESH_CONTROL_CA_SECRET), which outlives the pod",
    ),
    (
        "MESH_CONTROL_CA_SECRET",
        "Kubernetes only: the CA root in the Secret mesh-ca-secret; compose has no API \
         server and uses MESH_CONTROL_CA_DIR",
    ),
    (
        "BIND_ADDRESS",
        "compose: the app shares its sidecar's network namespace and listens on loopback \
         only; in a pod the kubelet probes the app on the pod's address",
    ),
    (
        "HOSTNAME",
        "compose names the container's host after the workload; Kubernetes sets the pod name",
    ),
    (
        "MESH_CONTROL_KUBERNETES",
        "in a cluster the routing is the Istio objects of the Kubernetes API, which \
         `kubectl apply` changes; compose has no API server and reads mesh/config files",
    ),
    (
        "MESH_CONTROL_WORKLOAD_TOKENS",
        "compose: the workload tokens are a file of compose secrets; Kubernetes proves \
         identities with the pods' own service-account tokens (TokenReview)",
    ),
    (
        "MESH_CONTROL_TOKEN_REVIEW",
        "Kubernetes only: the API server says whose a projected token is",
    ),
    (
        "MESH_CONTROL_TOKEN_AUDIENCE",
        "Kubernetes only: the audience of the projected tokens",
    ),
];

/// Variables both set to values that differ by design, and why.
const DIFFERING: [(&str, &str); 5] = [
    (
        "MESH_PROXY_ADMIN",
        "Kubernetes: every address, for the kubelet's probe and Prometheus; compose: \
         loopback, the healthcheck runs inside the pod's network namespace (same port)",
    ),
    (
        "MYSQL_DB_PASSWORD",
        "Kubernetes reads it from the mysql-credentials Secret",
    ),
    (
        "MESH_PROXY_TOKEN_FILE",
        "compose: one compose secret per proxy; Kubernetes: the pod's projected \
         service-account token",
    ),
    (
        "MESH_CONTROL_API_TOKEN_FILE",
        "compose: a compose secret; Kubernetes: the mesh-control-api-token Secret's volume",
    ),
    (
        "MESH_PROXY_NAMESPACE",
        "the gateway: compose registers it in istio-system, as Istio's (its token says so); \
         in Kubernetes its service-account token proves the namespace it runs in",
    ),
];

/// Defaults the programs apply when a variable is not set, so an explicit default on one
/// side equals its absence on the other.
const DEFAULTS: [(&str, &str); 2] = [
    ("PORT", "9080"),
    ("MESH_CONTROL_TRUST_DOMAIN", "cluster.local"),
];

// ----------------------------------------------------------------------------------------
// compose

/// The compose file and an overlay, as one model: services merged by name, their
/// `environment:` by key (how compose combines `-f` files).
fn compose(overlays: &[&str]) -> BTreeMap<String, Value> {
    let mut services: BTreeMap<String, Value> = BTreeMap::new();
    for rel in std::iter::once("docker-compose.yml").chain(overlays.iter().copied()) {
        let doc = docs(&repo_dir().join(rel)).remove(0);
        for (svc, def) in doc["services"].as_object().expect("services:") {
            let entry = services
                .entry(svc.clone())
                .or_insert_with(|| Value::Object(Default::default()));
            for (key, value) in def.as_object().expect("a service") {
                if key == "environment" {
                    let env = entry["environment"]
                        .as_object()
                        .cloned()
                        .unwrap_or_default();
                    let mut merged = env;
                    merged.extend(value.as_object().cloned().unwrap_or_default());
                    entry["environment"] = Value::Object(merged);
                } else {
                    entry[key.as_str()] = value.clone();
                }
            }
        }
    }
    services
}

/// `ENV` of every Dockerfile stage, inherited along `FROM <stage> AS <name>`.
fn dockerfile_env() -> BTreeMap<String, Env> {
    let text = std::fs::read_to_string(repo_dir().join("Dockerfile")).unwrap();
    let joined = text.replace("\\\n", " ");
    let mut stages: BTreeMap<String, Env> = BTreeMap::new();
    let mut current = String::new();
    for line in joined.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["FROM", base, "AS", stage] => {
                let inherited = stages.get(*base).cloned().unwrap_or_default();
                current = (*stage).to_owned();
                stages.insert(current.clone(), inherited);
            }
            ["ENV", pairs @ ..] => {
                let env = stages.get_mut(&current).expect("ENV after FROM");
                for pair in pairs {
                    let (k, v) = pair.split_once('=').expect("ENV key=value");
                    env.insert(k.to_owned(), v.trim_matches('"').to_owned());
                }
            }
            _ => {}
        }
    }
    stages
}

/// What a compose service's process sees: its image stage's `ENV`, then `environment:`,
/// then `KEY=VALUE` words its entrypoint sets (`probe exec ... KEY=VALUE -- program`).
fn compose_env(def: &Value) -> Env {
    let mut env = def
        .pointer("/build/target")
        .and_then(Value::as_str)
        .map(|target| dockerfile_env()[target].clone())
        .unwrap_or_default();
    for (k, v) in def["environment"].as_object().cloned().unwrap_or_default() {
        env.insert(
            k,
            v.as_str()
                .expect("environment values are strings")
                .to_owned(),
        );
    }
    for word in arr(def, "/entrypoint")
        .iter()
        .filter_map(Value::as_str)
        .take_while(|w| *w != "--")
    {
        if let Some((k, v)) = word.split_once('=')
            && k.chars().all(|c| c.is_ascii_uppercase() || c == '_')
        {
            env.insert(k.to_owned(), v.to_owned());
        }
    }
    // A blank value is how an overlay unsets a variable.
    env.retain(|_, v| !v.is_empty());
    env
}

/// The Bookinfo workloads of a compose model: app services whose network namespace is
/// their sidecar's (`<workload>-proxy`).
fn compose_workloads(services: &BTreeMap<String, Value>) -> BTreeSet<String> {
    services
        .iter()
        .filter(|(svc, def)| def["network_mode"].as_str() == Some(&format!("service:{svc}-proxy")))
        .map(|(svc, _)| svc.clone())
        .collect()
}

// ----------------------------------------------------------------------------------------
// Kubernetes

/// The Bookinfo Deployments of the base and the ratings-mysql component, by name.
fn k8s_workloads() -> BTreeMap<String, Value> {
    [
        "base/details.yaml",
        "base/ratings.yaml",
        "base/reviews.yaml",
        "base/productpage.yaml",
        "components/ratings-mysql/ratings-v2-mysql.yaml",
    ]
    .iter()
    .flat_map(|f| file(f))
    .filter(|d| d["kind"] == "Deployment")
    .map(|d| (name(&d).to_owned(), d))
    .collect()
}

/// The image a container runs in the overlays: Istio's names and ours mapped by the
/// `images:` of `overlays/mesh` (tests/k8s.rs checks every overlay maps them alike).
fn k8s_image(container: &Value) -> String {
    let image = s(container, "/image");
    let bare = image.split(':').next().unwrap_or(image);
    let overlay = file("overlays/mesh/kustomization.yaml").remove(0);
    let mapped = arr(&overlay, "/images")
        .iter()
        .find(|i| s(i, "/name") == bare)
        .unwrap_or_else(|| panic!("overlays/mesh: no image mapping for {bare}"));
    let to = mapped["newName"].as_str().unwrap_or(bare);
    format!("{to}:{}", s(mapped, "/newTag"))
}

/// The Dockerfile stage an image name is built from (`bookinfo-rs/reviews-v2:dev`, or
/// compose's `${BOOKINFO_REGISTRY:-...}/reviews-v2:${BOOKINFO_TAG:-dev}`).
fn stage_of(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split(':').next().unwrap_or(last)
}

/// A container's env in a pod of `deployment`: downward-API references filled in (the
/// pod address as compose's `{ip}` placeholder), `$(VAR)` expanded, the `POD_*` helper
/// variables dropped, Secret references marked.
fn k8s_env(container: &Value, deployment: &Value) -> Env {
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let field = |path: &str| -> String {
        match path {
            "status.podIP" => "{ip}".to_owned(),
            // The overlays' `namespace:`; tests/k8s.rs checks they all say default.
            "metadata.namespace" => "default".to_owned(),
            "spec.serviceAccountName" => {
                s(deployment, "/spec/template/spec/serviceAccountName").to_owned()
            }
            other => {
                let label = other
                    .strip_prefix("metadata.labels['")
                    .and_then(|l| l.strip_suffix("']"))
                    .unwrap_or_else(|| panic!("unknown fieldRef {other}"));
                labels[label].as_str().expect("label").to_owned()
            }
        }
    };
    // The image's own ENV first, as the runtime sets it.
    let mut env = dockerfile_env()
        .remove(stage_of(&k8s_image(container)))
        .unwrap_or_default();
    for e in arr(container, "/env") {
        let value = match (
            e["value"].as_str(),
            e.pointer("/valueFrom/fieldRef/fieldPath"),
        ) {
            (Some(v), _) => v.to_owned(),
            (None, Some(path)) => field(path.as_str().expect("fieldPath")),
            (None, None) if e.pointer("/valueFrom/secretKeyRef").is_some() => {
                FROM_SECRET.to_owned()
            }
            _ => panic!("unsupported env entry {e}"),
        };
        // Kubernetes expands $(VAR) from the variables defined before this one.
        let expanded = env
            .iter()
            .fold(value, |v, (k, val)| v.replace(&format!("$({k})"), val));
        env.insert(s(e, "/name").to_owned(), expanded);
    }
    env.retain(|k, _| !k.starts_with("POD_"));
    env
}

/// The app container's env with the mesh component's additions (`app-proxy-env.yaml`).
fn k8s_app_env(deployment: &Value, with_mesh: bool) -> Env {
    let app = &arr(deployment, "/spec/template/spec/containers")[0];
    let mut env = k8s_env(app, deployment);
    if with_mesh {
        for op in file("components/mesh/app-proxy-env.yaml")[0]
            .as_array()
            .expect("a JSON patch")
        {
            env.insert(
                s(op, "/value/name").to_owned(),
                s(op, "/value/value").to_owned(),
            );
        }
    }
    env
}

/// The sidecar the mesh component adds to `deployment`, with its env as in that pod.
fn k8s_sidecar_env(deployment: &Value) -> Env {
    let patch = file("components/mesh/sidecar.yaml").remove(0);
    let side = &arr(&patch, "/spec/template/spec/initContainers")[0];
    k8s_env(side, deployment)
}

/// The only container of a component's Deployment (the gateway, the control plane).
fn k8s_single(rel: &str) -> (Value, Env) {
    let d = file(rel)
        .into_iter()
        .find(|d| d["kind"] == "Deployment")
        .unwrap_or_else(|| panic!("{rel}: no Deployment"));
    let c = arr(&d, "/spec/template/spec/containers")[0].clone();
    let env = k8s_env(&c, &d);
    (c, env)
}

// ----------------------------------------------------------------------------------------
// Comparing

/// Every difference between the two environments that is not listed as by design.
fn differences(what: &str, compose: &Env, k8s: &Env, problems: &mut Vec<String>) {
    let with_defaults = |env: &Env| {
        let mut env = env.clone();
        for (k, v) in DEFAULTS {
            env.entry(k.to_owned()).or_insert_with(|| v.to_owned());
        }
        env
    };
    let (c, k) = (with_defaults(compose), with_defaults(k8s));
    let one_sided: BTreeSet<&str> = ONE_SIDED.iter().map(|(k, _)| *k).collect();
    let differing: BTreeSet<&str> = DIFFERING.iter().map(|(k, _)| *k).collect();
    for key in c.keys().chain(k.keys()).collect::<BTreeSet<_>>() {
        match (c.get(key), k.get(key)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) if differing.contains(key.as_str()) => {
                if key.ends_with("_ADMIN") {
                    assert_eq!(port_of(a), port_of(b), "{what}: {key}: same port");
                }
            }
            (Some(a), Some(b)) => {
                problems.push(format!("{what}: {key} is {a:?} in compose, {b:?} in k8s"))
            }
            (Some(_), None) | (None, Some(_)) if one_sided.contains(key.as_str()) => {}
            (Some(a), None) => problems.push(format!("{what}: {key}={a:?} is set in compose only")),
            (None, Some(b)) => problems.push(format!("{what}: {key}={b:?} is set in k8s only")),
            (None, None) => unreachable!(),
        }
    }
}

#[test]
fn the_same_workloads_run_from_the_same_images_as_the_same_identities() {
    let services = compose(&["compose/ratings-mysql.yaml"]);
    let k8s = k8s_workloads();
    assert_eq!(
        compose_workloads(&services),
        k8s.keys().cloned().collect::<BTreeSet<_>>(),
        "Bookinfo workloads in compose (app services beside a <name>-proxy) and Deployments in k8s"
    );
    for (workload, d) in &k8s {
        let def = &services[workload];
        let app = &arr(d, "/spec/template/spec/containers")[0];
        let image = k8s_image(app);
        assert_eq!(
            stage_of(s(def, "/image")),
            stage_of(&image),
            "{workload}: compose and Kubernetes run the same image"
        );
        assert_eq!(
            s(def, "/build/target"),
            stage_of(&image),
            "{workload}: its Dockerfile stage"
        );
        assert!(
            images_sh().contains(stage_of(&image)),
            "{workload}: scripts/images.sh builds {image}"
        );
        let side = compose_env(&services[&format!("{workload}-proxy")]);
        assert_eq!(
            side["MESH_PROXY_SERVICE_ACCOUNT"],
            s(d, "/spec/template/spec/serviceAccountName"),
            "{workload}: the identity in its certificate"
        );
        let labels = &d["spec"]["template"]["metadata"]["labels"];
        assert_eq!(
            side["MESH_PROXY_LABELS"],
            format!(
                "app={},version={}",
                s(labels, "/app"),
                s(labels, "/version")
            ),
            "{workload}: the labels its subset is chosen by"
        );
    }
}

#[test]
fn apps_and_sidecars_get_the_same_settings() {
    let services = compose(&["compose/ratings-mysql.yaml"]);
    let mut problems = Vec::new();
    for (workload, d) in k8s_workloads() {
        differences(
            &format!("{workload} app"),
            &compose_env(&services[&workload]),
            &k8s_app_env(&d, true),
            &mut problems,
        );
        differences(
            &format!("{workload} sidecar"),
            &compose_env(&services[&format!("{workload}-proxy")]),
            &k8s_sidecar_env(&d),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn without_the_mesh_the_apps_get_the_plain_settings() {
    let services = compose(&["compose/no-mesh.yaml"]);
    let mut problems = Vec::new();
    for (workload, d) in k8s_workloads() {
        if workload == "ratings-v2-mysql" {
            continue; // not part of the plain overlays
        }
        differences(
            &format!("{workload} without mesh"),
            &compose_env(&services[&workload]),
            &k8s_app_env(&d, false),
            &mut problems,
        );
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn gateway_and_control_plane_agree_on_settings_and_ports() {
    let services = compose(&[]);
    let mut problems = Vec::new();

    let (gateway, gateway_env) = k8s_single("components/mesh/gateway.yaml");
    let compose_gateway = &services["istio-ingressgateway"];
    differences(
        "gateway",
        &compose_env(compose_gateway),
        &gateway_env,
        &mut problems,
    );
    let (control, control_env) = k8s_single("components/mesh/control-plane.yaml");
    let compose_control = &services["mesh-control"];
    differences(
        "control plane",
        &compose_env(compose_control),
        &control_env,
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");

    // What compose publishes on the host is what the Kubernetes Services target.
    let published = |def: &Value| -> BTreeSet<u64> {
        arr(def, "/ports")
            .iter()
            .map(|p| port_of(p.as_str().expect("\"host:port:container\"")))
            .collect()
    };
    let target = |rel: &str, container: &Value| -> BTreeSet<u64> {
        let svc = file(rel)
            .into_iter()
            .find(|d| d["kind"] == "Service")
            .expect("a Service");
        arr(&svc, "/spec/ports")
            .iter()
            .map(|p| match &p["targetPort"] {
                Value::String(named) => arr(container, "/ports")
                    .iter()
                    .find(|cp| cp["name"] == named.as_str())
                    .and_then(|cp| cp["containerPort"].as_u64())
                    .unwrap_or_else(|| panic!("{rel}: no container port {named}")),
                other => other.as_u64().expect("a port"),
            })
            .collect()
    };
    assert_eq!(
        published(compose_gateway),
        target("components/mesh/gateway.yaml", &gateway),
        "the gateway's listener port"
    );
    assert_eq!(
        published(compose_control),
        target("components/mesh/control-plane.yaml", &control),
        "the control plane's API port"
    );
}

/// A restarted or re-created mesh-control container must issue from the same root, or the
/// sidecars holding certificates of the old one and those getting new ones stop trusting
/// each other. Compose keeps `MESH_CONTROL_CA_DIR` on a named volume (a bind mount or
/// none would be a new root per container), the image has that directory writable by
/// the UID the service runs as (a new named volume takes over its owner and mode; the
/// root filesystem is read-only). Kubernetes keeps it in a Secret instead, which outlives
/// the pod: the control plane's Role may read that one Secret and create it.
#[test]
fn the_control_planes_ca_root_survives_a_restart() {
    let text = std::fs::read_to_string(repo_dir().join("docker-compose.yml")).unwrap();
    let compose_doc = docs(&repo_dir().join("docker-compose.yml")).remove(0);
    let services = compose(&[]);
    let control = &services["mesh-control"];
    let env = compose_env(control);
    let dir = env
        .get("MESH_CONTROL_CA_DIR")
        .expect("compose's mesh-control keeps its CA root in MESH_CONTROL_CA_DIR");
    let mounts: Vec<&str> = arr(control, "/volumes")
        .iter()
        .map(|v| v.as_str().expect("\"volume:path\""))
        .collect();
    let volume = mounts
        .iter()
        .find_map(|m| m.strip_suffix(&format!(":{dir}")))
        .unwrap_or_else(|| panic!("no volume at {dir} in {mounts:?}"));
    assert!(
        !volume.starts_with(['.', '/', '~']),
        "{volume}: a named volume, not a bind mount (whose owner compose cannot set)"
    );
    assert!(
        compose_doc["volumes"].get(volume).is_some(),
        "{volume} is declared under the top-level volumes:\n{text}"
    );
    assert_eq!(
        control["read_only"], true,
        "the root filesystem stays read-only"
    );
    let user = s(control, "/user");
    let uid = user.split(':').next().unwrap();

    // The image: the directory comes from the binaries stage, owned by that UID.
    let dockerfile = std::fs::read_to_string(repo_dir().join("Dockerfile")).unwrap();
    let stage = dockerfile
        .split("FROM bare AS mesh-control")
        .nth(1)
        .expect("the mesh-control stage")
        .split("\nFROM ")
        .next()
        .unwrap();
    let copy = stage
        .lines()
        .find(|l| l.starts_with("COPY --from=binaries --chown="))
        .unwrap_or_else(|| panic!("the mesh-control stage copies no directory with an owner"));
    let words: Vec<&str> = copy.split_whitespace().collect();
    let owner = words[2].trim_start_matches("--chown=");
    assert_eq!(
        owner.split(':').next(),
        Some(uid),
        "{copy}: owned by the UID compose runs as"
    );
    let (from, to) = (words[3], words[4]);
    let leaf = dir.rsplit('/').next().unwrap();
    assert_eq!(
        format!("{}/{leaf}", to.trim_end_matches('/')),
        *dir,
        "{copy}: the copied folder holds {dir}"
    );
    // Both ways of filling the binaries stage make that empty folder, group-writable
    // (OpenShift's arbitrary UIDs run in group 0).
    let made = format!("{}/{leaf}", from.trim_end_matches('/'));
    assert!(
        dockerfile.contains(&format!("mkdir -m 0770 /out{made}")),
        "the Rust stage makes {made}"
    );
    let images = include_str!("../../../scripts/images.sh");
    assert!(
        images.contains(&format!("mkdir -m 0770 \"$stage{made}\"")),
        "scripts/images.sh makes {made}"
    );

    // Kubernetes: a Secret, which the control plane's Role lets it read and create.
    let (_, k8s_env) = k8s_single("components/mesh/control-plane.yaml");
    assert_eq!(k8s_env.get("MESH_CONTROL_CA_DIR"), None);
    let secret = k8s_env
        .get("MESH_CONTROL_CA_SECRET")
        .expect("the CA root in a Secret");
    let docs = file("components/mesh/control-plane.yaml");
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "mesh-control-ca")
        .expect("the Role of the CA Secret");
    let rules = arr(role, "/rules");
    let allows = |verb: &str, named: bool| {
        rules.iter().any(|r| {
            arr(r, "/resources").iter().any(|x| x == "secrets")
                && arr(r, "/verbs").iter().any(|v| v == verb)
                && (!named
                    || arr(r, "/resourceNames")
                        .iter()
                        .any(|n| n == secret.as_str()))
        })
    };
    assert!(allows("get", true), "get on Secret {secret}: {rules:?}");
    assert!(allows("create", false), "create secrets: {rules:?}");
    assert!(
        docs.iter().any(|d| d["kind"] == "RoleBinding"
            && d["roleRef"]["name"] == "mesh-control-ca"
            && arr(d, "/subjects")
                .iter()
                .any(|s| s["name"] == "mesh-control")),
        "the Role is bound to the control plane's service account"
    );
}

#[test]
fn the_load_generator_runs_the_same_mix() {
    let services = compose(&["compose/load.yaml"]);
    let job = file("components/loadgen/job.yaml")
        .into_iter()
        .find(|d| d["kind"] == "Job")
        .expect("a Job");
    let container = &arr(&job, "/spec/template/spec/containers")[0];
    // Flags as name → value (`--rate=10` and `--rate 10` alike), and the target URL.
    let parse = |words: Vec<String>| -> (BTreeMap<String, String>, String) {
        let mut flags = BTreeMap::new();
        let mut url = String::new();
        let mut words = words.into_iter().peekable();
        while let Some(w) = words.next() {
            if let Some(flag) = w.strip_prefix("--") {
                let (k, v) = match flag.split_once('=') {
                    Some((k, v)) => (k.to_owned(), v.to_owned()),
                    None if words
                        .peek()
                        .is_some_and(|n| !n.starts_with("--") && !n.contains("://")) =>
                    {
                        (flag.to_owned(), words.next().unwrap_or_default())
                    }
                    None => (flag.to_owned(), String::new()),
                };
                flags.insert(k, v);
            } else {
                url = w;
            }
        }
        (flags, url)
    };
    // Compose defaults of `${LOAD_RATE:-10}` are what a plain `up` runs.
    let resolve = |w: &str| match w.split_once(":-") {
        Some((_, default)) if w.starts_with("${") => default.trim_end_matches('}').to_owned(),
        _ => w.to_owned(),
    };
    let strings = |v: &[Value]| -> Vec<String> {
        v.iter()
            .map(|w| resolve(w.as_str().expect("a word")))
            .collect()
    };
    let (mut compose_flags, compose_url) = parse(strings(arr(&services["loadgen"], "/command")));
    let (k8s_flags, k8s_url) = parse(strings(arr(container, "/args")));
    // compose publishes the live window on the host (`--serve`); in a cluster the Job's
    // report is read from its log.
    compose_flags.remove("serve");
    assert_eq!(compose_flags, k8s_flags, "loadgen flags");
    // Both aim at the gateway: compose at its container port, Kubernetes at its Service.
    assert!(
        compose_url.starts_with("http://istio-ingressgateway:8080"),
        "{compose_url}"
    );
    assert!(
        k8s_url.starts_with("http://istio-ingressgateway:80"),
        "{k8s_url}"
    );
}
