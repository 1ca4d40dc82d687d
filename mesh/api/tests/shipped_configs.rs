//! The routing files we ship in `mesh/config/` load, validate and mean what the labs say.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use mesh_api::compile::RouteAction;
use mesh_api::defaults::{AbortStatus, LoadBalancer, UpstreamTls};
use mesh_api::networking::destination_rule::TlsMode;
use mesh_api::networking::service_entry::Resolution;
use mesh_api::{MeshConfig, ProxyScope, Resource, compile};

/// Files we ship, same names as Istio's `samples/bookinfo/networking`.
const EXPECTED_FILES: usize = 21;

fn config_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(config_dir().join(name)).unwrap()
}

fn load(name: &str) -> MeshConfig {
    let text = read(name);
    let outcome = MeshConfig::load([(name, text.as_str())]).unwrap();
    assert!(
        outcome.warnings.is_empty(),
        "{name}: {:?}",
        outcome.warnings
    );
    outcome.config
}

#[test]
fn every_shipped_file_parses_and_validates() {
    let mut names: Vec<String> = std::fs::read_dir(config_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), EXPECTED_FILES, "{names:?}");
    for name in &names {
        let config = load(name);
        assert!(!config.is_empty(), "{name} has no resources");
    }
}

#[test]
fn reviews_test_v2_matches_jason_first() {
    let config = load("virtual-service-reviews-test-v2.yaml");
    let vs = config.virtual_services().next().unwrap();
    assert_eq!(vs.key(), "default/reviews");
    let first = &vs.spec.http[0];
    let header = &first.matches[0].headers["end-user"];
    assert_eq!(header.exact.as_deref(), Some("jason"));
    assert_eq!(first.route[0].destination.subset.as_deref(), Some("v2"));
    let second = &vs.spec.http[1];
    assert!(second.matches.is_empty());
    assert_eq!(second.route[0].destination.subset.as_deref(), Some("v1"));
}

#[test]
fn ratings_test_delay_is_7s_for_everyone_named_jason() {
    let config = load("virtual-service-ratings-test-delay.yaml");
    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    let ratings = table.lookup("ratings:9080").unwrap();
    let fault = ratings.routes[0].fault.as_ref().unwrap();
    let delay = fault.delay.as_ref().unwrap();
    assert_eq!(delay.fixed_delay, Duration::from_secs(7));
    assert_eq!(delay.percent, 100.0);
    assert!(fault.abort.is_none());
    assert!(ratings.routes[1].fault.is_none());
}

#[test]
fn ratings_test_abort_is_500() {
    let config = load("virtual-service-ratings-test-abort.yaml");
    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    let abort = table.lookup("ratings").unwrap().routes[0]
        .fault
        .as_ref()
        .unwrap()
        .abort
        .clone()
        .unwrap();
    assert_eq!(abort.status, AbortStatus::Http(500));
    assert_eq!(abort.percent, 100.0);
}

#[test]
fn fifty_fifty_weights() {
    let config = load("virtual-service-reviews-50-v3.yaml");
    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    let RouteAction::Forward(weighted) = &table.lookup("reviews").unwrap().routes[0].action else {
        panic!("expected a forward route");
    };
    let subsets: Vec<_> = weighted
        .destinations
        .iter()
        .map(|d| d.subset.as_deref().unwrap())
        .collect();
    assert_eq!(subsets, ["v1", "v3"]);
    assert_eq!(weighted.total_weight, 100);
    assert_eq!(weighted.percent(0), 50.0);
    assert_eq!(weighted.percent(1), 50.0);
}

#[test]
fn destination_rule_all_subsets() {
    let config = load("destination-rule-all.yaml");
    let subsets: Vec<(String, Vec<String>)> = config
        .destination_rules()
        .map(|dr| {
            (
                dr.spec.host.clone(),
                dr.spec.subsets.iter().map(|s| s.name.clone()).collect(),
            )
        })
        .collect();
    let expected = [
        ("productpage", vec!["v1"]),
        ("reviews", vec!["v1", "v2", "v3"]),
        ("ratings", vec!["v1", "v2", "v2-mysql", "v2-mysql-vm"]),
        ("details", vec!["v1", "v2"]),
    ];
    assert_eq!(subsets.len(), expected.len());
    for ((host, names), (want_host, want_names)) in subsets.iter().zip(expected) {
        assert_eq!(host, want_host);
        assert_eq!(names, &want_names);
    }
    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    let reviews = table
        .destination("reviews.default.svc.cluster.local")
        .unwrap();
    assert_eq!(reviews.subsets["v2"].labels["version"], "v2");
    assert_eq!(reviews.subsets["v2"].policy.tls, UpstreamTls::Auto);
}

#[test]
fn destination_rule_all_mtls_uses_istio_mutual() {
    let config = load("destination-rule-all-mtls.yaml");
    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    for host in ["productpage", "reviews", "ratings", "details"] {
        let service = table.lookup(host).unwrap();
        let UpstreamTls::Explicit(tls) = &service.policy_for(Some("v1"), None).tls else {
            panic!("{host}: expected explicit TLS");
        };
        assert_eq!(tls.mode, TlsMode::IstioMutual, "{host}");
    }
}

#[test]
fn gateway_listens_on_8080_with_five_paths() {
    let config = load("bookinfo-gateway.yaml");
    let table = compile(
        &config,
        &ProxyScope::gateway("default", &[("istio", "ingressgateway")]),
    );
    assert_eq!(table.listeners.len(), 1);
    assert_eq!(table.listeners[0].port, 8080);
    assert_eq!(table.listeners[0].protocol, "HTTP");
    assert_eq!(table.listeners[0].gateway, "default/bookinfo-gateway");
    let service = table.lookup("localhost:8080").unwrap();
    assert_eq!(service.host, "*");
    let matches: Vec<String> = service.routes[0]
        .matches
        .iter()
        .map(|m| {
            let uri = m.uri.as_ref().unwrap();
            match (&uri.exact, &uri.prefix) {
                (Some(e), _) => format!("exact {e}"),
                (_, Some(p)) => format!("prefix {p}"),
                _ => "other".to_owned(),
            }
        })
        .collect();
    assert_eq!(
        matches,
        [
            "exact /productpage",
            "prefix /static",
            "exact /login",
            "exact /logout",
            "prefix /api/v1/products"
        ]
    );
    let RouteAction::Forward(weighted) = &service.routes[0].action else {
        panic!("expected forward");
    };
    assert_eq!(
        weighted.destinations[0].host,
        "productpage.default.svc.cluster.local"
    );
    assert_eq!(weighted.destinations[0].port, Some(9080));

    // A sidecar does not get gateway-bound routes, and a gateway with other labels gets nothing.
    let sidecar = compile(&config, &ProxyScope::sidecar("default", &[]));
    assert!(sidecar.services.is_empty() && sidecar.listeners.is_empty());
    let other = compile(
        &config,
        &ProxyScope::gateway("default", &[("istio", "egressgateway")]),
    );
    assert!(other.services.is_empty() && other.listeners.is_empty());
}

#[test]
fn egress_rule_registers_host_and_originates_tls_on_443() {
    let config = load("egress-rule-google-apis.yaml");
    let se = config.service_entries().next().unwrap();
    assert_eq!(se.spec.hosts, ["www.googleapis.com"]);
    assert_eq!(se.spec.resolution, Some(Resolution::Dns));
    let ports: Vec<_> = se
        .spec
        .ports
        .iter()
        .map(|p| (p.number, p.protocol.as_deref().unwrap()))
        .collect();
    assert_eq!(ports, [(80, "HTTP"), (443, "HTTPS")]);

    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    let service = table.lookup("www.googleapis.com:80").unwrap();
    assert_eq!(service.policy.load_balancer, LoadBalancer::RoundRobin);
    let port_443 = service.policy_for(None, Some(443));
    let UpstreamTls::Explicit(tls) = &port_443.tls else {
        panic!("expected TLS on 443");
    };
    assert_eq!(tls.mode, TlsMode::Simple);
    // Port-level settings do not inherit the rule-level ROUND_ROBIN.
    assert_eq!(port_443.load_balancer, LoadBalancer::LeastRequest);
    assert_eq!(service.policy_for(None, Some(80)).tls, UpstreamTls::Auto);
    let RouteAction::Forward(weighted) = &service.routes[0].action else {
        panic!("expected forward");
    };
    assert_eq!(service.routes[0].matches[0].port, Some(80));
    assert_eq!(weighted.destinations[0].port, Some(443));
}

#[test]
fn all_shipped_files_load_together_and_compile() {
    let names = [
        "destination-rule-all.yaml",
        "virtual-service-all-v1.yaml",
        "virtual-service-reviews-test-v2.yaml",
    ];
    let texts: Vec<(String, String)> = names.iter().map(|n| ((*n).to_owned(), read(n))).collect();
    let outcome = MeshConfig::load(texts.iter().map(|(n, t)| (n.as_str(), t.as_str()))).unwrap();
    // The reviews VirtualService of the second file is replaced by the third: one warning.
    assert_eq!(outcome.warnings.len(), 1, "{:?}", outcome.warnings);
    assert!(
        outcome.warnings[0]
            .to_string()
            .contains("replaces the definition from virtual-service-all-v1.yaml: document 2")
    );
    let table = compile(
        &outcome.config,
        &ProxyScope::sidecar("default", &[("app", "productpage")]),
    );
    let hosts: Vec<&str> = table.services.keys().map(String::as_str).collect();
    assert_eq!(
        hosts,
        [
            "details.default.svc.cluster.local",
            "productpage.default.svc.cluster.local",
            "ratings.default.svc.cluster.local",
            "reviews.default.svc.cluster.local"
        ]
    );
    let reviews = table.lookup("reviews:9080").unwrap();
    assert_eq!(reviews.routes.len(), 2);
    assert_eq!(reviews.virtual_services, ["default/reviews"]);
    assert_eq!(reviews.destination_rule.as_deref(), Some("default/reviews"));
    // The table is plain data: it survives a JSON round trip unchanged.
    let json = serde_json::to_string(&table).unwrap();
    let back: mesh_api::RouteTable = serde_json::from_str(&json).unwrap();
    assert_eq!(back, table);
    let kinds: Vec<_> = outcome
        .config
        .resources()
        .iter()
        .map(|l| l.resource.kind())
        .collect();
    assert_eq!(kinds.len(), 8);
    assert!(matches!(
        outcome.config.resources()[0].resource,
        Resource::DestinationRule(_)
    ));
}

/// Files we ship in `gateway-api/`: the six of Istio's `samples/bookinfo/gateway-api`
/// (same names), and `route-reviews-test-v2.yaml`, the request-routing task's HTTPRoute.
const EXPECTED_GATEWAY_API_FILES: usize = 7;

#[test]
fn every_shipped_gateway_api_file_parses_validates_and_compiles() {
    let dir = config_dir().join("gateway-api");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    names.sort();
    assert_eq!(names.len(), EXPECTED_GATEWAY_API_FILES, "{names:?}");
    for name in &names {
        let config = load(&format!("gateway-api/{name}"));
        assert!(
            config.http_routes().next().is_some(),
            "{name} has no HTTPRoute"
        );
        let sidecar = compile(&config, &ProxyScope::sidecar("default", &[]));
        let gateway = compile(&config, &ProxyScope::gateway("default", &[]));
        let routed = sidecar
            .services
            .values()
            .chain(gateway.services.values())
            .filter(|s| {
                s.virtual_services
                    .iter()
                    .any(|v| v.starts_with("HTTPRoute "))
            })
            .count();
        assert!(routed > 0, "{name}: no host is routed by its HTTPRoutes");
    }
}

#[test]
fn gateway_api_90_10_splits_reviews_between_per_version_services() {
    let config = load("gateway-api/route-reviews-90-10.yaml");
    let table = compile(&config, &ProxyScope::sidecar("default", &[]));
    let reviews = table.lookup("reviews:9080").unwrap();
    assert_eq!(reviews.routes.len(), 1);
    let RouteAction::Forward(weighted) = &reviews.routes[0].action else {
        panic!("forwards");
    };
    let split: Vec<(&str, u32)> = weighted
        .destinations
        .iter()
        .map(|d| (d.host.as_str(), d.weight))
        .collect();
    assert_eq!(
        split,
        [
            ("reviews-v1.default.svc.cluster.local", 90),
            ("reviews-v2.default.svc.cluster.local", 10)
        ]
    );
    assert_eq!(weighted.destinations[0].port, Some(9080));
    // Mesh routes are for sidecars: the gateway does not get them.
    let gateway = compile(&config, &ProxyScope::gateway("default", &[]));
    assert!(gateway.lookup("reviews:9080").is_none());
}

#[test]
fn gateway_api_bookinfo_gateway_exposes_five_paths_on_port_80() {
    let config = load("gateway-api/bookinfo-gateway.yaml");
    let table = compile(&config, &ProxyScope::gateway("istio-system", &[]));
    assert_eq!(table.listeners.len(), 1);
    assert_eq!(table.listeners[0].port, 80);
    assert_eq!(table.listeners[0].gateway, "default/bookinfo-gateway");
    let service = table.lookup("bookinfo.example.com").unwrap();
    // Exact paths first, then the longest prefix (the spec's precedence, not file order).
    let first_uris: Vec<String> = service
        .routes
        .iter()
        .map(|r| format!("{:?}", r.matches[0].uri.as_ref().unwrap()))
        .collect();
    assert_eq!(service.routes.len(), 5, "{first_uris:?}");
    let info = |path: &'static str, headers: &'static http::HeaderMap| mesh_api::RequestInfo {
        method: "GET",
        scheme: "http",
        authority: "bookinfo.example.com",
        path,
        port: Some(80),
        headers,
    };
    let headers = Box::leak(Box::new(http::HeaderMap::new()));
    for (path, routed) in [
        ("/productpage", true),
        ("/productpage/x", false),
        ("/static/css/site.css", true),
        ("/static", true),
        ("/staticfoo", false),
        ("/api/v1/products/0/reviews", true),
        ("/login", true),
        ("/", false),
    ] {
        assert_eq!(
            service.select_route(&info(path, headers)).is_some(),
            routed,
            "{path}"
        );
    }
    // Sidecars get nothing from a Gateway-bound route.
    let sidecar = compile(&config, &ProxyScope::sidecar("default", &[]));
    assert!(sidecar.services.is_empty());
}
