//! The shipped observability files, checked offline: the Grafana dashboards are well
//! formed (every panel has a query, every variable a query uses is defined), the
//! Kubernetes component ships every dashboard, the compose overlay mounts files that
//! exist and makes every proxy scrapable, the compose scrape config names every proxy,
//! and the local scrape config points at the control plane's service discovery route on
//! `meshctl up`'s default port. That the queries return data from a live mesh is
//! `tests/e2e/prometheus.rs`'s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

mod dashboards;
mod manifests;

use std::collections::BTreeSet;

use dashboards::{BUILTINS, component_dir, label_values, queries, referenced, variables};
use manifests::{docs, repo_dir, s};

const CONTROL_API: &str = include_str!("../../control/src/api.rs");
const CLI: &str = include_str!("../src/cli.rs");

#[test]
fn every_panel_has_a_query_and_every_variable_it_uses_is_defined() {
    let all = dashboards::dashboards();
    let names: Vec<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(names, ["mesh.json", "service.json", "workload.json"]);
    let mut uids = BTreeSet::new();
    for (file, d) in &all {
        assert!(uids.insert(s(d, "/uid").to_owned()), "{file}: uid reused");
        let vars = variables(d);
        let defined: BTreeSet<&str> = vars
            .keys()
            .map(String::as_str)
            .chain(BUILTINS.iter().map(|(n, _)| *n))
            .collect();
        let mut ids = BTreeSet::new();
        for p in dashboards::panels(d) {
            let title = p["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel without a title");
            assert!(
                ids.insert(p["id"].as_u64().unwrap()),
                "{file}: {title}: id reused"
            );
            assert!(
                p["gridPos"]["w"].as_u64().is_some(),
                "{file}: {title}: gridPos"
            );
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: {title}: the data source variable"
            );
        }
        let qs = queries(file, d);
        assert!(qs.len() >= 10, "{file}: only {} queries", qs.len());
        for q in &qs {
            assert!(
                !q.expr.trim().is_empty(),
                "{file}: {}: empty query",
                q.panel
            );
            for name in referenced(&q.expr) {
                assert!(
                    defined.contains(name.as_str()),
                    "{file}: {} ({}): ${name} is not a variable of the dashboard",
                    q.panel,
                    q.ref_id
                );
            }
            // Istio's metric names only, as our proxies export them.
            assert!(
                q.expr.contains("istio_") || q.expr.contains("mesh_control_"),
                "{file}: {}: {}",
                q.panel,
                q.expr
            );
        }
        for (name, v) in &vars {
            if v["type"] == "query" {
                let (selector, label) = label_values(v).unwrap_or_else(|| {
                    panic!("{file}: ${name}: not label_values(selector, label)")
                });
                assert!(
                    !label.is_empty() && selector.starts_with("istio_"),
                    "{file}: ${name}"
                );
                for used in referenced(&selector) {
                    assert!(
                        defined.contains(used.as_str()),
                        "{file}: ${name} uses ${used}"
                    );
                }
            }
        }
    }
}

#[test]
fn the_kubernetes_component_ships_every_dashboard_and_config() {
    let k = &docs(&component_dir().join("kustomization.yaml"))[0];
    let generated: Vec<(String, Vec<String>)> = k["configMapGenerator"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let files = g["files"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().rsplit('=').next().unwrap().to_owned())
                .collect();
            (s(g, "/name").to_owned(), files)
        })
        .collect();
    for (_, files) in &generated {
        for f in files {
            assert!(
                component_dir().join(f).is_file(),
                "configMapGenerator: {f} missing"
            );
        }
    }
    let shipped: BTreeSet<String> = dashboards::dashboards()
        .into_iter()
        .map(|(f, _)| format!("dashboards/{f}"))
        .collect();
    let in_map: BTreeSet<String> = generated
        .iter()
        .find(|(n, _)| n == "grafana-dashboards")
        .unwrap()
        .1
        .iter()
        .cloned()
        .collect();
    assert_eq!(in_map, shipped, "grafana-dashboards ConfigMap");
    // Grafana reads the data source URL from PROMETHEUS_URL, which names the Service.
    let grafana = docs(&component_dir().join("grafana.yaml"));
    let deploy = grafana.iter().find(|d| d["kind"] == "Deployment").unwrap();
    let env = manifests::env_of(&deploy["spec"]["template"]["spec"]["containers"][0]);
    let url = manifests::env_value(&env, "PROMETHEUS_URL");
    let prometheus = docs(&component_dir().join("prometheus.yaml"));
    let svc = prometheus.iter().find(|d| d["kind"] == "Service").unwrap();
    assert_eq!(
        url,
        format!(
            "http://{}:{}",
            manifests::name(svc),
            svc["spec"]["ports"][0]["port"]
        )
    );
    let datasource =
        std::fs::read_to_string(component_dir().join("grafana/datasource.yaml")).unwrap();
    assert!(datasource.contains("url: ${PROMETHEUS_URL}"));
    // The full overlay deploys it.
    let full = &manifests::file("overlays/full/kustomization.yaml")[0];
    assert!(
        manifests::arr(full, "/components")
            .iter()
            .any(|c| c.as_str().unwrap().ends_with("/observability")),
        "overlays/full: the observability component"
    );
}

/// The proxies of docker-compose.yml: service name → MESH_PROXY_WORKLOAD.
fn compose_proxies() -> Vec<(String, String)> {
    let base = &docs(&repo_dir().join("docker-compose.yml"))[0];
    base["services"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, def)| def["environment"].get("MESH_PROXY_ADMIN").is_some())
        .map(|(name, def)| {
            (
                name.clone(),
                s(def, "/environment/MESH_PROXY_WORKLOAD").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_compose_overlay_mounts_the_shipped_files_and_scrapes_every_proxy() {
    let overlay = &docs(&repo_dir().join("compose/observability.yaml"))[0];
    let services = overlay["services"].as_object().unwrap();
    for svc in ["prometheus", "grafana"] {
        let def = &services[svc];
        for v in def["volumes"].as_array().unwrap() {
            let from = v.as_str().unwrap().split(':').next().unwrap();
            assert!(
                from.starts_with("./k8s/components/observability/"),
                "{svc}: {from}: the files the Kubernetes component ships"
            );
            assert!(
                repo_dir().join(from).exists(),
                "{svc}: {from} does not exist"
            );
        }
        assert!(def["mem_limit"].is_string(), "{svc}: mem_limit");
    }
    assert_eq!(
        s(&services["grafana"], "/environment/PROMETHEUS_URL"),
        "http://prometheus:9090"
    );
    let proxies = compose_proxies();
    assert_eq!(
        proxies.len(),
        7,
        "the gateway and six sidecars: {proxies:?}"
    );
    let scrape = &docs(&component_dir().join("prometheus/compose.yml"))[0];
    let job = scrape["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["job_name"] == "mesh-proxies")
        .unwrap();
    assert_eq!(s(job, "/metrics_path"), "/stats/prometheus");
    let groups = job["static_configs"].as_array().unwrap();
    for (svc, workload) in &proxies {
        // Reachable from the Prometheus container, on the admin port.
        assert_eq!(
            s(&services[svc.as_str()], "/environment/MESH_PROXY_ADMIN"),
            "0.0.0.0:15000",
            "{svc}"
        );
        let group = groups
            .iter()
            .find(|g| g["targets"][0] == format!("{svc}:15000"))
            .unwrap_or_else(|| panic!("prometheus/compose.yml: no target {svc}:15000"));
        assert_eq!(s(group, "/labels/workload"), workload, "{svc}");
    }
    assert_eq!(groups.len(), proxies.len(), "a target per proxy, no more");
}

#[test]
fn the_local_scrape_config_uses_the_control_planes_service_discovery() {
    let local = &docs(&component_dir().join("prometheus/local.yml"))[0];
    let jobs = local["scrape_configs"].as_array().unwrap();
    let proxies = jobs
        .iter()
        .find(|j| j["job_name"] == "mesh-proxies")
        .unwrap();
    let url = s(proxies, "/http_sd_configs/0/url");
    let path = "/api/v1/prometheus/targets";
    assert!(CONTROL_API.contains(&format!(".route(\"{path}\"")));
    // meshctl up's default control port.
    let default_port = CLI
        .split("control_port")
        .next()
        .and_then(|before| before.rsplit("default_value_t = ").next())
        .and_then(|t| t.split(',').next())
        .unwrap()
        .trim()
        .to_owned();
    assert_eq!(url, format!("http://127.0.0.1:{default_port}{path}"));
    let control = jobs
        .iter()
        .find(|j| j["job_name"] == "mesh-control")
        .unwrap();
    assert_eq!(
        s(control, "/static_configs/0/targets/0"),
        format!("127.0.0.1:{default_port}")
    );
}
