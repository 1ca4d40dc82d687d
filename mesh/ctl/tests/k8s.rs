//! Cross-checks of the Kubernetes manifests under `k8s/` against the code they deploy:
//! every environment variable a manifest sets is one the program reads (each name is
//! asserted to appear in the source that reads it), container ports are the ports the
//! programs listen on, probes and scrape annotations hit routes that exist, pod
//! `version` labels are subsets of `destination-rule-all.yaml`, service accounts are
//! `bookinfo-<service>`, and the copies kustomize needs equal their originals.
//!
//! The YAML is parsed directly (no kubectl): the sidecar and proxy-env patches of
//! `components/mesh` are read as what they add to every Bookinfo pod. Rendering and
//! schema validation are `scripts/k8s-test.sh`'s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod manifests;

use std::collections::{BTreeMap, BTreeSet};

use manifests::{arr, env_of, env_value, file, name, port_of, s};
use serde::Deserialize;
use serde_json::Value;

// The sources that read the variables and serve the routes.
const COMMON_CONFIG: &str = include_str!("../../../services/common/src/config.rs");
const COMMON_CLIENT: &str = include_str!("../../../services/common/src/client.rs");
const COMMON_METRICS: &str = include_str!("../../../services/common/src/metrics.rs");
const PRODUCTPAGE_CONFIG: &str = include_str!("../../../services/productpage/src/config.rs");
const PRODUCTPAGE_ROUTES: &str = include_str!("../../../services/productpage/src/routes.rs");
const DETAILS_CONFIG: &str = include_str!("../../../services/details/src/config.rs");
const DETAILS_ROUTES: &str = include_str!("../../../services/details/src/routes.rs");
const REVIEWS_CONFIG: &str = include_str!("../../../services/reviews/src/config.rs");
const REVIEWS_ROUTES: &str = include_str!("../../../services/reviews/src/routes.rs");
const RATINGS_CONFIG: &str = include_str!("../../../services/ratings/src/config.rs");
const RATINGS_ROUTES: &str = include_str!("../../../services/ratings/src/routes.rs");
const PROXY_CONFIG: &str = include_str!("../../proxy/src/config.rs");
const PROXY_ADMIN: &str = include_str!("../../proxy/src/admin.rs");
const CONTROL_MAIN: &str = include_str!("../../control/src/main.rs");
const CONTROL_API: &str = include_str!("../../control/src/api.rs");
/// `meshctl up` gives the same binaries NO_COLOR, which tracing-subscriber reads.
const UP_PLAN: &str = include_str!("../src/up/plan.rs");

// The copies under k8s/ and their originals.
const GATEWAY_YAML: &str = include_str!("../../config/bookinfo-gateway.yaml");
const GATEWAY_COPY: &str =
    include_str!("../../../k8s/components/istio-routing/config/bookinfo-gateway.yaml");
const DR_YAML: &str = include_str!("../../config/destination-rule-all.yaml");
const DR_COPY: &str =
    include_str!("../../../k8s/components/istio-routing/config/destination-rule-all.yaml");
const INIT_SQL: &str = include_str!("../../../scripts/mariadb-init.sql");
const INIT_SQL_COPY: &str = include_str!("../../../k8s/components/ratings-mysql/mysqldb-init.sql");

/// The Bookinfo services, as `app` labels.
const SERVICES: [&str; 4] = ["productpage", "details", "reviews", "ratings"];

/// Who reads a variable: the source text and a string of it that proves the read.
type Reader = (&'static str, &'static str);

/// What each kind of container reads: variable name → where it is read.
fn readers(program: &str) -> BTreeMap<&'static str, Reader> {
    let mut m: BTreeMap<&'static str, Reader> = BTreeMap::new();
    let logging = [
        ("NO_COLOR", (UP_PLAN, "\"NO_COLOR\"")),
        (
            "RUST_LOG",
            (
                include_str!("../../../services/common/src/telemetry.rs"),
                "\"RUST_LOG\"",
            ),
        ),
    ];
    match program {
        "productpage" | "details" | "reviews" | "ratings" => {
            m.extend(logging);
            m.insert("PORT", (COMMON_CONFIG, "\"PORT\""));
            m.insert("BIND_ADDRESS", (COMMON_CONFIG, "\"BIND_ADDRESS\""));
            m.insert("SERVICES_DOMAIN", (COMMON_CONFIG, "\"SERVICES_DOMAIN\""));
            // reqwest reads both spellings; the lowercase one is also curl's (kubectl exec).
            m.insert("HTTP_PROXY", (COMMON_CLIENT, "HTTP_PROXY"));
            m.insert("http_proxy", (PRODUCTPAGE_CONFIG, "\"http_proxy\""));
        }
        _ => {}
    }
    match program {
        "productpage" => {
            for (name, prefix) in [
                ("DETAILS_HOSTNAME", "\"DETAILS\""),
                ("DETAILS_SERVICE_PORT", "\"DETAILS\""),
                ("REVIEWS_HOSTNAME", "\"REVIEWS\""),
                ("REVIEWS_SERVICE_PORT", "\"REVIEWS\""),
                ("RATINGS_HOSTNAME", "\"RATINGS\""),
                ("RATINGS_SERVICE_PORT", "\"RATINGS\""),
            ] {
                m.insert(name, (PRODUCTPAGE_CONFIG, prefix));
            }
            for name in [
                "FLOOD_FACTOR",
                "PRODUCTPAGE_KEEPALIVE",
                "PRODUCTPAGE_SESSION_SECRET",
            ] {
                m.insert(name, (PRODUCTPAGE_CONFIG, name));
            }
        }
        "details" => {
            for name in [
                "ENABLE_EXTERNAL_BOOK_SERVICE",
                "DO_NOT_ENCRYPT",
                "BOOKS_API_URL",
            ] {
                m.insert(name, (DETAILS_CONFIG, name));
            }
        }
        "reviews" => {
            for name in [
                "SERVICE_VERSION",
                "ENABLE_RATINGS",
                "STAR_COLOR",
                "HOSTNAME",
                "CLUSTER_NAME",
            ] {
                m.insert(name, (REVIEWS_CONFIG, name));
            }
            m.insert("RATINGS_HOSTNAME", (REVIEWS_CONFIG, "\"RATINGS\""));
            m.insert("RATINGS_SERVICE_PORT", (REVIEWS_CONFIG, "\"RATINGS\""));
        }
        "ratings" => {
            for name in [
                "SERVICE_VERSION",
                "DB_TYPE",
                "MYSQL_DB_HOST",
                "MYSQL_DB_PORT",
                "MYSQL_DB_USER",
                "MYSQL_DB_PASSWORD",
                "RATINGS_SEED",
            ] {
                m.insert(name, (RATINGS_CONFIG, name));
            }
        }
        "mesh-proxy" => {
            m.extend(logging);
            for name in [
                "MESH_PROXY_MODE",
                "MESH_PROXY_CONTROL",
                "MESH_PROXY_CONFIG",
                "MESH_PROXY_WORKLOAD",
                "MESH_PROXY_NAMESPACE",
                "MESH_PROXY_SERVICE",
                "MESH_PROXY_SERVICE_ACCOUNT",
                "MESH_PROXY_LABELS",
                "MESH_PROXY_OUTBOUND",
                "MESH_PROXY_INBOUND",
                "MESH_PROXY_APP",
                "MESH_PROXY_ADMIN",
                "MESH_PROXY_GATEWAY_ADDRESS",
                "MESH_PROXY_GATEWAY_PORTS",
                "MESH_PROXY_ACCESS_LOG",
                "MESH_PROXY_DRAIN",
                "MESH_PROXY_TOKEN_FILE",
            ] {
                m.insert(name, (PROXY_CONFIG, name));
            }
            m.insert(
                "MESH_PROXY_WORKERS",
                (
                    include_str!("../../proxy/src/main.rs"),
                    "\"MESH_PROXY_WORKERS\"",
                ),
            );
        }
        "mesh-control" => {
            m.extend(logging);
            for name in [
                "MESH_CONTROL_LISTEN",
                "MESH_CONTROL_CONFIG_DIR",
                "MESH_CONTROL_KUBERNETES",
                "MESH_CONTROL_CA_DIR",
                "MESH_CONTROL_CA_SECRET",
                "MESH_CONTROL_CA_CERT",
                "MESH_CONTROL_CA_KEY",
                "MESH_CONTROL_CERT_TTL",
                "MESH_CONTROL_TRUST_DOMAIN",
                "MESH_CONTROL_TOKEN_REVIEW",
                "MESH_CONTROL_TOKEN_AUDIENCE",
                "MESH_CONTROL_API_TOKEN_FILE",
                "MESH_CONTROL_WORKLOAD_TOKENS",
            ] {
                m.insert(name, (CONTROL_MAIN, name));
            }
        }
        "loadgen" => {
            m.extend(logging);
        }
        other => panic!("no reader list for {other}"),
    }
    m
}

/// The workload Deployments of the base and the components (not the patches).
fn deployments() -> Vec<(String, Value)> {
    let files = [
        "base/details.yaml",
        "base/ratings.yaml",
        "base/reviews.yaml",
        "base/productpage.yaml",
        "components/ratings-mysql/ratings-v2-mysql.yaml",
        "components/ratings-mysql/mysqldb.yaml",
        "components/mesh/control-plane.yaml",
        "components/mesh/gateway.yaml",
        "components/loadgen/job.yaml",
    ];
    files
        .iter()
        .flat_map(|f| file(f).into_iter().map(move |d| ((*f).to_owned(), d)))
        .filter(|(_, d)| matches!(d["kind"].as_str(), Some("Deployment" | "Job")))
        .collect()
}

/// The program a container runs, from its image.
fn program(image: &str) -> Option<&'static str> {
    let known = [
        (
            "docker.io/istio/examples-bookinfo-productpage-",
            "productpage",
        ),
        ("docker.io/istio/examples-bookinfo-details-", "details"),
        ("docker.io/istio/examples-bookinfo-reviews-", "reviews"),
        ("docker.io/istio/examples-bookinfo-ratings-", "ratings"),
        ("bookinfo-rs/mesh-proxy", "mesh-proxy"),
        ("bookinfo-rs/mesh-control", "mesh-control"),
        ("bookinfo-rs/loadtest", "loadgen"),
    ];
    if image.starts_with("docker.io/library/mariadb:") {
        return None; // the image's own variables (MARIADB_*), documented by it
    }
    Some(
        known
            .iter()
            .find(|(prefix, _)| image.starts_with(prefix))
            .unwrap_or_else(|| panic!("unknown image {image}"))
            .1,
    )
}

/// The sidecar container the mesh component adds to every Bookinfo pod.
fn sidecar() -> Value {
    let patch = file("components/mesh/sidecar.yaml");
    let c = arr(&patch[0], "/spec/template/spec/initContainers");
    assert_eq!(c.len(), 1, "one sidecar container");
    c[0].clone()
}

/// What the mesh component adds to the app container's env.
fn app_proxy_env() -> Vec<Value> {
    file("components/mesh/app-proxy-env.yaml")[0]
        .as_array()
        .expect("a JSON patch")
        .iter()
        .map(|op| {
            assert_eq!(s(op, "/path"), "/spec/template/spec/containers/0/env/-");
            op["value"].clone()
        })
        .collect()
}

fn container_ports(c: &Value) -> BTreeMap<String, u64> {
    arr(c, "/ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap_or("").to_owned(),
                p["containerPort"].as_u64().expect("containerPort"),
            )
        })
        .collect()
}

/// Checks one container's env: known to its program, proved by the source, and helper
/// variables (downward API values such as POD_IP) used by another value as $(NAME).
fn check_env(what: &str, prog: &str, env: &[(String, Option<String>)], problems: &mut Vec<String>) {
    let known = readers(prog);
    for (key, _) in env {
        match known.get(key.as_str()) {
            Some((source, needle)) => assert!(
                source.contains(needle),
                "{what}: {key}: the reader's source no longer contains {needle}"
            ),
            None => {
                let used = env.iter().any(|(_, v)| {
                    v.as_deref()
                        .is_some_and(|v| v.contains(&format!("$({key})")))
                });
                if !(key.starts_with("POD_") && used) {
                    problems.push(format!("{what}: {key} is not read by {prog}"));
                }
            }
        }
    }
}

#[test]
fn every_env_var_is_one_the_program_reads() {
    let mut problems = Vec::new();
    for (f, d) in deployments() {
        for c in arr(&d, "/spec/template/spec/containers") {
            let Some(prog) = program(s(c, "/image")) else {
                continue;
            };
            let what = format!("{f}: {}/{}", name(&d), s(c, "/name"));
            let mut env = env_of(c);
            if SERVICES.contains(&prog) {
                // In the mesh overlays the app also gets the proxy variables.
                env.extend(app_proxy_env().iter().map(|e| {
                    (
                        s(e, "/name").to_owned(),
                        e["value"].as_str().map(str::to_owned),
                    )
                }));
            }
            check_env(&what, prog, &env, &mut problems);
        }
    }
    let side = sidecar();
    check_env(
        "components/mesh/sidecar.yaml",
        program(s(&side, "/image")).unwrap(),
        &env_of(&side),
        &mut problems,
    );
    assert!(problems.is_empty(), "{problems:#?}");
}

#[test]
fn bookinfo_deployments_match_names_labels_accounts_and_variants() {
    let dr: Vec<Value> = serde_norway::Deserializer::from_str(DR_YAML)
        .map(|d| Value::deserialize(d).unwrap())
        .collect();
    let subsets: BTreeMap<&str, BTreeSet<&str>> = dr
        .iter()
        .map(|r| {
            let labels = arr(r, "/spec/subsets")
                .iter()
                .map(|sub| s(sub, "/labels/version"))
                .collect();
            (s(r, "/spec/host"), labels)
        })
        .collect();
    let mut seen = BTreeSet::new();
    for (f, d) in deployments() {
        let Some(app) = d.pointer("/metadata/labels/app").and_then(Value::as_str) else {
            continue;
        };
        if !SERVICES.contains(&app) {
            continue;
        }
        let version = s(&d, "/metadata/labels/version");
        let n = name(&d);
        assert_eq!(n, format!("{app}-{version}"), "{f}: Deployment name");
        for labels in [
            "/spec/selector/matchLabels",
            "/spec/template/metadata/labels",
        ] {
            assert_eq!(s(&d, &format!("{labels}/app")), app, "{f}: {n} {labels}");
            assert_eq!(
                s(&d, &format!("{labels}/version")),
                version,
                "{f}: {n} {labels}"
            );
        }
        assert!(
            subsets[app].contains(version),
            "{f}: {n}: version {version} is not a subset of {app} in destination-rule-all.yaml"
        );
        assert_eq!(
            s(&d, "/spec/template/spec/serviceAccountName"),
            format!("bookinfo-{app}"),
            "{f}: {n}"
        );
        let containers = arr(&d, "/spec/template/spec/containers");
        assert_eq!(
            containers.len(),
            1,
            "{f}: {n}: one app container (the sidecar is added)"
        );
        let c = &containers[0];
        assert_eq!(
            s(c, "/name"),
            app,
            "{f}: {n}: container named as the service"
        );
        let env = env_of(c);
        match app {
            "reviews" => {
                let (ratings, colour) = match version {
                    "v1" => ("false", "black"),
                    "v2" => ("true", "black"),
                    "v3" => ("true", "red"),
                    other => panic!("reviews {other}"),
                };
                assert_eq!(env_value(&env, "SERVICE_VERSION"), version);
                assert_eq!(env_value(&env, "ENABLE_RATINGS"), ratings, "{n}");
                assert_eq!(env_value(&env, "STAR_COLOR"), colour, "{n}");
            }
            "ratings" => {
                let v = env_value(&env, "SERVICE_VERSION");
                assert!(RATINGS_CONFIG.contains(&format!("\"{v}\"")), "{n}: {v}");
                assert!(
                    version.starts_with(v),
                    "{n}: SERVICE_VERSION {v} for version {version}"
                );
                if v == "v2" {
                    assert_eq!(env_value(&env, "DB_TYPE"), "mysql", "{n}");
                }
            }
            _ => {}
        }
        seen.insert(n.to_owned());
    }
    let expected = [
        "details-v1",
        "productpage-v1",
        "ratings-v1",
        "ratings-v2-mysql",
        "reviews-v1",
        "reviews-v2",
        "reviews-v3",
    ];
    assert_eq!(seen, expected.iter().map(|s| (*s).to_owned()).collect());

    for svc in SERVICES {
        let docs = file(&format!("base/{svc}.yaml"));
        let service = docs
            .iter()
            .find(|d| d["kind"] == "Service")
            .expect("a Service");
        assert_eq!(name(service), svc);
        assert_eq!(s(service, "/metadata/labels/app"), svc);
        assert_eq!(s(service, "/metadata/labels/service"), svc);
        assert_eq!(s(service, "/spec/selector/app"), svc);
        let ports = arr(service, "/spec/ports");
        assert_eq!(ports.len(), 1, "{svc}");
        assert_eq!(ports[0]["port"], 9080, "{svc}");
        assert_eq!(ports[0]["name"], "http", "{svc}");
        let sa = docs
            .iter()
            .find(|d| d["kind"] == "ServiceAccount")
            .expect("a ServiceAccount");
        assert_eq!(name(sa), format!("bookinfo-{svc}"));
        assert_eq!(s(sa, "/metadata/labels/account"), svc);
    }
}

#[test]
fn ports_probes_and_scrapes_are_what_the_programs_serve() {
    // The services listen on 9080 unless PORT says otherwise, and no manifest says so.
    assert!(COMMON_CONFIG.contains("\"PORT\", 9080"));
    let routes = |app: &str| match app {
        "productpage" => PRODUCTPAGE_ROUTES,
        "details" => DETAILS_ROUTES,
        "reviews" => REVIEWS_ROUTES,
        "ratings" => RATINGS_ROUTES,
        other => panic!("{other}"),
    };
    let side = sidecar();
    let side_env = env_of(&side);
    let side_ports = container_ports(&side);
    for (f, d) in deployments() {
        let template = &d["spec"]["template"];
        let n = name(&d);
        for c in arr(template, "/spec/containers") {
            let ports = container_ports(c);
            let prog = program(s(c, "/image"));
            if let Some(app) = prog.filter(|p| SERVICES.contains(p)) {
                assert_eq!(ports.get("http"), Some(&9080), "{f}: {n}: containerPort");
                assert!(
                    !env_of(c)
                        .iter()
                        .any(|(k, _)| k == "PORT" || k == "BIND_ADDRESS")
                );
                for probe in ["/readinessProbe", "/livenessProbe"] {
                    let path = s(c, &format!("{probe}/httpGet/path"));
                    assert_eq!(s(c, &format!("{probe}/httpGet/port")), "http", "{n}");
                    assert!(
                        routes(app).contains(&format!(".route(\"{path}\"")),
                        "{f}: {n}: {probe} path {path} is not a route of {app}"
                    );
                }
                // The sidecar forwards to this port.
                assert_eq!(port_of(env_value(&side_env, "MESH_PROXY_APP")), 9080);
            }
            if prog == Some("mesh-control") {
                let env = env_of(c);
                let listen = port_of(env_value(&env, "MESH_CONTROL_LISTEN"));
                assert_eq!(ports.get("api"), Some(&listen), "{n}");
                assert!(CONTROL_API.contains(".route(\"/healthz\""));
                assert!(CONTROL_API.contains(".route(\"/metrics\""));
                assert_eq!(s(c, "/readinessProbe/httpGet/path"), "/healthz");
                // The proxies' control URL names this port.
                assert_eq!(port_of(env_value(&side_env, "MESH_PROXY_CONTROL")), listen);
                let control = file("components/mesh/control-plane.yaml");
                let svc = control.iter().find(|d| d["kind"] == "Service").unwrap();
                assert_eq!(svc["spec"]["ports"][0]["port"].as_u64(), Some(listen));
                assert!(
                    env_value(&side_env, "MESH_PROXY_CONTROL")
                        .starts_with(&format!("http://{}:", name(svc))),
                    "the proxies' control URL names the mesh-control Service"
                );
            }
            if n == "istio-ingressgateway" {
                let env = env_of(c);
                assert_eq!(env_value(&env, "MESH_PROXY_MODE"), "gateway");
                assert_eq!(
                    env_value(&env, "MESH_PROXY_CONTROL"),
                    env_value(&side_env, "MESH_PROXY_CONTROL")
                );
                // The Gateway's server port is what the gateway binds (no remapping).
                assert!(!env.iter().any(|(k, _)| k == "MESH_PROXY_GATEWAY_PORTS"));
                let gw: Vec<Value> = serde_norway::Deserializer::from_str(GATEWAY_YAML)
                    .map(|d| Value::deserialize(d).unwrap())
                    .collect();
                let gateway = gw.iter().find(|d| d["kind"] == "Gateway").unwrap();
                assert_eq!(
                    ports.get("http"),
                    gateway["spec"]["servers"][0]["port"]["number"]
                        .as_u64()
                        .as_ref()
                );
                for (k, v) in [("istio", "ingressgateway"), ("app", "istio-ingressgateway")] {
                    assert_eq!(s(template, &format!("/metadata/labels/{k}")), v);
                    assert!(env_value(&env, "MESH_PROXY_LABELS").contains(&format!("{k}={v}")));
                }
                assert_eq!(
                    s(gateway, "/spec/selector/istio"),
                    s(template, "/metadata/labels/istio")
                );
                assert_eq!(
                    ports.get("mesh-admin").copied(),
                    Some(port_of(env_value(&env, "MESH_PROXY_ADMIN")))
                );
            }
            // Scrape annotations name a port of the pod and a route it serves.
            if let Some(port) = template.pointer("/metadata/annotations/prometheus.io~1port") {
                let port: u64 = port.as_str().unwrap().parse().unwrap();
                let path = s(template, "/metadata/annotations/prometheus.io~1path");
                let all: Vec<u64> = arr(template, "/spec/containers")
                    .iter()
                    .flat_map(|c| container_ports(c).into_values())
                    .collect();
                assert!(all.contains(&port), "{f}: {n}: scrape port {port}");
                let served = match path {
                    "/metrics" => {
                        COMMON_METRICS.contains(".route(\"/metrics\"")
                            || CONTROL_API.contains(".route(\"/metrics\"")
                    }
                    "/stats/prometheus" => PROXY_ADMIN.contains("\"/stats/prometheus\""),
                    _ => false,
                };
                assert!(served, "{f}: {n}: scrape path {path}");
            }
        }
    }

    // The sidecar: its ports are the ones its variables bind, the app's HTTP_PROXY is its
    // outbound listener, and its probes are admin routes.
    assert_eq!(
        side_ports.get("mesh-inbound").copied(),
        Some(port_of(env_value(&side_env, "MESH_PROXY_INBOUND")))
    );
    assert_eq!(
        side_ports.get("mesh-admin").copied(),
        Some(port_of(env_value(&side_env, "MESH_PROXY_ADMIN")))
    );
    assert!(env_value(&side_env, "MESH_PROXY_INBOUND").starts_with("$(POD_IP):"));
    assert_eq!(env_value(&side_env, "MESH_PROXY_MODE"), "sidecar");
    for e in app_proxy_env() {
        assert_eq!(
            e["value"].as_str().map(port_of),
            Some(port_of(env_value(&side_env, "MESH_PROXY_OUTBOUND"))),
            "{e}"
        );
        assert!(
            e["value"]
                .as_str()
                .unwrap()
                .starts_with("http://127.0.0.1:")
        );
    }
    for probe in ["/startupProbe", "/readinessProbe", "/livenessProbe"] {
        let path = s(&side, &format!("{probe}/httpGet/path"));
        assert!(
            PROXY_ADMIN.contains(&format!("\"{path}\"")),
            "sidecar {probe} {path}"
        );
        assert_eq!(s(&side, &format!("{probe}/httpGet/port")), "mesh-admin");
    }
    assert_eq!(s(&side, "/restartPolicy"), "Always", "a native sidecar");
}

#[test]
fn the_mesh_patches_reach_every_bookinfo_workload() {
    let k = &file("components/mesh/kustomization.yaml")[0];
    let patches = arr(k, "/patches");
    assert_eq!(patches.len(), 2);
    for p in patches {
        let selector = s(p, "/target/labelSelector");
        let inside = selector
            .strip_prefix("app in (")
            .and_then(|r| r.strip_suffix(')'))
            .expect("app in (...)");
        let apps: BTreeSet<&str> = inside.split(',').collect();
        assert_eq!(apps, SERVICES.into_iter().collect(), "{selector}");
    }
    // Components apply in order: whatever adds workloads comes before `mesh`, and every
    // overlay with our mesh has the routing its control plane starts with.
    for overlay in ["mesh", "full"] {
        let o = &file(&format!("overlays/{overlay}/kustomization.yaml"))[0];
        let comps: Vec<&str> = arr(o, "/components")
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let at = |c: &str| comps.iter().position(|x| x.ends_with(c));
        let mesh = at("/mesh").expect("mesh component");
        assert!(at("/istio-routing").is_some(), "{overlay}: istio-routing");
        if let Some(r) = at("/ratings-mysql") {
            assert!(r < mesh, "{overlay}: ratings-mysql must come before mesh");
        }
    }
}

#[test]
fn every_overlay_maps_every_image_to_ours() {
    let mut used = BTreeSet::new();
    for (_, d) in deployments() {
        for c in arr(&d, "/spec/template/spec/containers") {
            used.insert(s(c, "/image").split(':').next().unwrap().to_owned());
        }
    }
    used.insert(s(&sidecar(), "/image").to_owned());
    used.retain(|i| !i.starts_with("docker.io/library/"));
    let mut first: Option<Vec<Value>> = None;
    for overlay in ["plain", "mesh", "istio", "full"] {
        let o = &file(&format!("overlays/{overlay}/kustomization.yaml"))[0];
        let images = arr(o, "/images").to_vec();
        let names: BTreeSet<String> = images.iter().map(|i| s(i, "/name").to_owned()).collect();
        assert_eq!(names, used, "overlays/{overlay}: images");
        for i in &images {
            assert_eq!(s(i, "/newTag"), "dev", "{overlay}: {i}");
            let to = i["newName"].as_str().unwrap_or_else(|| s(i, "/name"));
            assert!(to.starts_with("bookinfo-rs/"), "{overlay}: {i}");
            if let Some(svc) = s(i, "/name").strip_prefix("docker.io/istio/examples-bookinfo-") {
                assert!(
                    svc.starts_with(&to["bookinfo-rs/".len()..]),
                    "{overlay}: {i}"
                );
            }
        }
        match &first {
            None => first = Some(images),
            Some(f) => assert_eq!(f, &images, "overlays/{overlay}: the same images as plain"),
        }
    }
    let istio = &file("overlays/istio/namespace.yaml")[0];
    assert_eq!(s(istio, "/metadata/labels/istio-injection"), "enabled");
}

#[test]
fn copies_under_k8s_equal_their_originals() {
    // kustomize reads only files under a kustomization: k8s/sync.sh refreshes these.
    assert!(
        GATEWAY_COPY == GATEWAY_YAML,
        "run k8s/sync.sh: bookinfo-gateway.yaml"
    );
    assert!(
        DR_COPY == DR_YAML,
        "run k8s/sync.sh: destination-rule-all.yaml"
    );
    assert!(
        INIT_SQL_COPY == INIT_SQL,
        "run k8s/sync.sh: mariadb-init.sql"
    );
}

#[test]
fn the_crds_cover_the_kinds_the_mesh_reads() {
    let crds = file("crds/istio-crds.yaml");
    let kinds: BTreeSet<String> = crds
        .iter()
        .map(|c| format!("{}/{}", s(c, "/spec/group"), s(c, "/spec/names/kind")))
        .collect();
    let expected = [
        "networking.istio.io/DestinationRule",
        "networking.istio.io/EnvoyFilter",
        "networking.istio.io/Gateway",
        "networking.istio.io/ServiceEntry",
        "networking.istio.io/VirtualService",
        "security.istio.io/AuthorizationPolicy",
        "security.istio.io/PeerAuthentication",
    ];
    assert_eq!(kinds, expected.iter().map(|s| (*s).to_owned()).collect());
    for c in &crds {
        let plural = s(c, "/spec/names/plural");
        assert_eq!(name(c), format!("{plural}.{}", s(c, "/spec/group")));
        let versions = arr(c, "/spec/versions");
        // Istio serves EnvoyFilter only as v1alpha3; every other kind is stored as v1.
        let stored = if plural == "envoyfilters" {
            "v1alpha3"
        } else {
            "v1"
        };
        assert!(
            versions
                .iter()
                .any(|v| v["name"] == stored && v["storage"] == true),
            "{plural}"
        );
        assert_eq!(
            versions.iter().filter(|v| v["storage"] == true).count(),
            1,
            "{plural}"
        );
        // The files under mesh/config use these API versions.
        for text in [GATEWAY_YAML, DR_YAML] {
            for doc in serde_norway::Deserializer::from_str(text) {
                let d = Value::deserialize(doc).unwrap();
                if d["kind"] == c["spec"]["names"]["kind"] {
                    let v = s(&d, "/apiVersion").rsplit('/').next().unwrap().to_owned();
                    assert!(
                        versions.iter().any(|x| x["name"] == v.as_str()),
                        "{plural} {v}"
                    );
                }
            }
        }
    }
}

/// The projected token a proxy container reads: its file's directory is a mounted
/// volume whose serviceAccountToken source has the control plane's audience.
fn check_projected_token(what: &str, pod: &Value, container: &Value, audience: &str) {
    let env = env_of(container);
    let file = env_value(&env, "MESH_PROXY_TOKEN_FILE");
    let (dir, leaf) = file.rsplit_once('/').unwrap();
    let mount = arr(container, "/volumeMounts")
        .iter()
        .find(|m| s(m, "/mountPath") == dir)
        .unwrap_or_else(|| panic!("{what}: nothing mounted at {dir}"));
    let volume = arr(pod, "/volumes")
        .iter()
        .find(|v| name_of(v) == s(mount, "/name"))
        .unwrap_or_else(|| panic!("{what}: no volume {}", s(mount, "/name")));
    let source = arr(volume, "/projected/sources")
        .iter()
        .find_map(|src| src.get("serviceAccountToken"))
        .unwrap_or_else(|| panic!("{what}: {dir} is not a projected service-account token"));
    assert_eq!(s(source, "/audience"), audience, "{what}");
    assert_eq!(s(source, "/path"), leaf, "{what}");
}

fn name_of(v: &Value) -> &str {
    v["name"].as_str().unwrap_or_default()
}

#[test]
fn proxies_prove_their_identity_with_a_projected_token_the_control_plane_reviews() {
    let control = file("components/mesh/control-plane.yaml");
    let deployment = control.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let container = &arr(deployment, "/spec/template/spec/containers")[0];
    let env = env_of(container);
    assert_eq!(env_value(&env, "MESH_CONTROL_TOKEN_REVIEW"), "true");
    let audience = env_value(&env, "MESH_CONTROL_TOKEN_AUDIENCE");
    // TokenReview is allowed through system:auth-delegator.
    assert!(control.iter().any(|d| {
        d["kind"] == "ClusterRoleBinding"
            && s(d, "/roleRef/name") == "system:auth-delegator"
            && arr(d, "/subjects")
                .iter()
                .any(|sub| name_of(sub) == "mesh-control")
    }));
    // The admin token file comes from a Secret the component ships.
    let api_file = env_value(&env, "MESH_CONTROL_API_TOKEN_FILE");
    let (dir, key) = api_file.rsplit_once('/').unwrap();
    let mount = arr(container, "/volumeMounts")
        .iter()
        .find(|m| s(m, "/mountPath") == dir)
        .unwrap();
    let pod = deployment.pointer("/spec/template/spec").unwrap();
    let volume = arr(pod, "/volumes")
        .iter()
        .find(|v| name_of(v) == s(mount, "/name"))
        .unwrap();
    let secret = control
        .iter()
        .find(|d| d["kind"] == "Secret" && name(d) == s(volume, "/secret/secretName"))
        .unwrap();
    assert!(secret.pointer(&format!("/stringData/{key}")).is_some());

    let patch = file("components/mesh/sidecar.yaml");
    let side_pod = patch[0].pointer("/spec/template/spec").unwrap();
    check_projected_token("sidecar", side_pod, &sidecar(), audience);
    let gateway = file("components/mesh/gateway.yaml");
    let gw = gateway.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let gw_pod = gw.pointer("/spec/template/spec").unwrap();
    check_projected_token("gateway", gw_pod, &arr(gw_pod, "/containers")[0], audience);
}
