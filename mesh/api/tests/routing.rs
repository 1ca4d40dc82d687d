//! Route matching (first match wins) and compiled tables.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use http::{HeaderMap, HeaderName, HeaderValue};
use mesh_api::compile::RouteAction;
use mesh_api::{
    MeshConfig, ProxyScope, RequestInfo, RouteTable, WeightedDestination, WeightedDestinations,
    compile,
};

fn table(yaml: &str, scope: &ProxyScope) -> RouteTable {
    let outcome = MeshConfig::load([("t.yaml", yaml)]).unwrap();
    compile(&outcome.config, scope)
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// Name of the route chosen for a request, or "none".
fn chosen(
    table: &RouteTable,
    method: &str,
    authority: &str,
    path: &str,
    hdrs: &[(&str, &str)],
) -> String {
    let headers = headers(hdrs);
    let req = RequestInfo {
        method,
        scheme: "http",
        authority,
        path,
        port: None,
        headers: &headers,
    };
    let service = table.lookup(authority).unwrap();
    service
        .select_route(&req)
        .map_or_else(|| "none".to_owned(), |r| r.name.clone().unwrap_or_default())
}

const RULES: &str = r#"
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: [shop]
  http:
  - name: jason
    match:
    - headers: {end-user: {exact: jason}}
  - name: beta-prefix
    match:
    - headers: {x-group: {prefix: beta-}}
  - name: canary-regex
    match:
    - headers: {x-canary: {regex: "on|yes"}}
  - name: debug-presence
    match:
    - headers: {x-debug: {}}
      withoutHeaders: {x-debug-off: {}}
  - name: query
    match:
    - queryParams: {version: {exact: "2"}, flag: {exact: ""}}
  - name: uri-exact
    match:
    - uri: {exact: /exact}
  - name: uri-prefix-nocase
    match:
    - uri: {prefix: /API/}
      ignoreUriCase: true
  - name: uri-regex
    match:
    - uri: {regex: "/books/[0-9]+"}
  - name: method-and-port
    match:
    - method: {exact: POST}
      port: 9443
  - name: authority
    match:
    - authority: {prefix: shop.default}
  - name: catch-all
"#;

fn with_routes(rules: &str) -> String {
    // Give every rule the same destination so the file validates.
    rules.replace(
        "\n  - name: ",
        "\n  - route: [{destination: {host: shop}}]\n    name: ",
    )
}

/// `(method, authority, path, headers, expected route name)`.
type Case<'a> = (&'a str, &'a str, &'a str, &'a [(&'a str, &'a str)], &'a str);

#[test]
fn route_matching_table() {
    let table = table(&with_routes(RULES), &ProxyScope::sidecar("default", &[]));
    let cases: [Case<'_>; 21] = [
        ("GET", "shop", "/", &[("end-user", "jason")], "jason"),
        ("GET", "shop", "/", &[("end-user", "Jason")], "catch-all"),
        // First match wins: jason beats the later prefix rule.
        (
            "GET",
            "shop",
            "/",
            &[("end-user", "jason"), ("x-group", "beta-1")],
            "jason",
        ),
        ("GET", "shop", "/", &[("x-group", "beta-1")], "beta-prefix"),
        ("GET", "shop", "/", &[("x-group", "alpha")], "catch-all"),
        ("GET", "shop", "/", &[("x-canary", "yes")], "canary-regex"),
        // Regex must match the whole value.
        ("GET", "shop", "/", &[("x-canary", "yesno")], "catch-all"),
        ("GET", "shop", "/", &[("x-debug", "")], "debug-presence"),
        (
            "GET",
            "shop",
            "/",
            &[("x-debug", "1"), ("x-debug-off", "1")],
            "catch-all",
        ),
        ("GET", "shop", "/?version=2&flag", &[], "query"),
        ("GET", "shop", "/?version=2", &[], "catch-all"),
        ("GET", "shop", "/?version=22&flag", &[], "catch-all"),
        ("GET", "shop", "/exact", &[], "uri-exact"),
        // The query string is not part of the uri match.
        ("GET", "shop", "/exact?x=1", &[], "uri-exact"),
        ("GET", "shop", "/exact/more", &[], "catch-all"),
        ("GET", "shop", "/api/v1", &[], "uri-prefix-nocase"),
        ("GET", "shop", "/books/42", &[], "uri-regex"),
        ("GET", "shop", "/books/42/reviews", &[], "catch-all"),
        ("POST", "shop:9443", "/", &[], "method-and-port"),
        ("POST", "shop:9080", "/", &[], "catch-all"),
        ("GET", "shop.default:9080", "/", &[], "authority"),
    ];
    for (method, authority, path, hdrs, expected) in cases {
        assert_eq!(
            chosen(&table, method, authority, path, hdrs),
            expected,
            "{method} {authority}{path} {hdrs:?}"
        );
    }
}

#[test]
fn no_match_means_no_route() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop}\nspec:\n  hosts: [shop]\n  http:\n  - name: only-api\n    match: [{uri: {prefix: /api}}]\n    route: [{destination: {host: shop}}]\n";
    let table = table(yaml, &ProxyScope::sidecar("default", &[]));
    assert_eq!(chosen(&table, "GET", "shop", "/api/x", &[]), "only-api");
    assert_eq!(chosen(&table, "GET", "shop", "/other", &[]), "none");
}

#[test]
fn uncompiled_virtual_service_matching() {
    let outcome = MeshConfig::load([("t.yaml", with_routes(RULES).as_str())]).unwrap();
    let vs = outcome.config.virtual_services().next().unwrap();
    let hdrs = headers(&[("x-group", "beta-2")]);
    let req = RequestInfo {
        method: "GET",
        scheme: "http",
        authority: "shop",
        path: "/",
        port: None,
        headers: &hdrs,
    };
    let (index, route) = mesh_api::matching::select_http_route(vs, &req).unwrap();
    assert_eq!(index, 1);
    assert_eq!(route.name.as_deref(), Some("beta-prefix"));
}

#[test]
fn repeated_headers_are_joined_with_commas() {
    let hdrs = headers(&[("x-tag", "a"), ("x-tag", "b")]);
    let req = RequestInfo {
        method: "GET",
        scheme: "http",
        authority: "shop",
        path: "/",
        port: None,
        headers: &hdrs,
    };
    assert_eq!(req.header("x-tag").as_deref(), Some("a,b"));
    assert_eq!(req.header("x-missing"), None);
}

#[test]
fn weights_are_relative() {
    let dest = |subset: &str, weight: u32| WeightedDestination {
        host: "reviews.default.svc.cluster.local".to_owned(),
        subset: Some(subset.to_owned()),
        port: None,
        weight,
        headers: None,
    };
    // A single destination gets everything whatever its weight.
    let single = WeightedDestinations::new(vec![dest("v1", 0)]);
    assert_eq!(single.total_weight, 100);
    assert_eq!(single.percent(0), 100.0);
    // 1:3 is 25 % / 75 %, no need to sum to 100.
    let split = WeightedDestinations::new(vec![dest("v1", 1), dest("v2", 3)]);
    assert_eq!(split.total_weight, 4);
    assert_eq!(split.percent(0), 25.0);
    assert_eq!(split.percent(1), 75.0);
    let picks: Vec<_> = (0..8)
        .map(|roll| split.pick(roll).unwrap().subset.clone().unwrap())
        .collect();
    assert_eq!(picks, ["v1", "v2", "v2", "v2", "v1", "v2", "v2", "v2"]);
    // Weight 0 gets no traffic.
    let zero = WeightedDestinations::new(vec![dest("v1", 0), dest("v2", 5)]);
    assert!((0..20).all(|roll| zero.pick(roll).unwrap().subset.as_deref() == Some("v2")));
    assert_eq!(WeightedDestinations::new(vec![]).pick(3), None);
}

#[test]
fn relative_weights_load_from_yaml() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - {destination: {host: r, subset: a}, weight: 1}\n    - {destination: {host: r, subset: b}, weight: 2}\n    - {destination: {host: r, subset: c}}\n";
    let table = table(yaml, &ProxyScope::sidecar("default", &[]));
    let RouteAction::Forward(w) = &table.lookup("r").unwrap().routes[0].action else {
        panic!("expected forward");
    };
    let weights: Vec<u32> = w.destinations.iter().map(|d| d.weight).collect();
    assert_eq!(weights, [1, 2, 0]);
    assert_eq!(w.total_weight, 3);
}

#[test]
fn short_names_follow_the_rule_namespace() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, namespace: shop}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews, subset: v2}}]\n";
    let table = table(yaml, &ProxyScope::sidecar("shop", &[]));
    assert!(
        table
            .services
            .contains_key("reviews.shop.svc.cluster.local")
    );
    let service = table.lookup("reviews:9080").unwrap();
    let RouteAction::Forward(w) = &service.routes[0].action else {
        panic!("expected forward");
    };
    assert_eq!(w.destinations[0].host, "reviews.shop.svc.cluster.local");
    // From another namespace, the short name means another service.
    let other = compile(
        &MeshConfig::load([("t.yaml", yaml)]).unwrap().config,
        &ProxyScope::sidecar("default", &[]),
    );
    assert!(other.lookup("reviews").is_none());
    assert!(other.lookup("reviews.shop:9080").is_some());
}

#[test]
fn source_labels_select_client_proxies() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [ratings]\n  http:\n  - name: from-reviews-v2\n    match: [{sourceLabels: {app: reviews, version: v2}}]\n    route: [{destination: {host: ratings, subset: v2}}]\n  - name: rest\n    route: [{destination: {host: ratings, subset: v1}}]\n";
    let v2 = table(
        yaml,
        &ProxyScope::sidecar("default", &[("app", "reviews"), ("version", "v2")]),
    );
    assert_eq!(chosen(&v2, "GET", "ratings", "/", &[]), "from-reviews-v2");
    let v1 = table(
        yaml,
        &ProxyScope::sidecar("default", &[("app", "reviews"), ("version", "v1")]),
    );
    assert_eq!(v1.lookup("ratings").unwrap().routes.len(), 1);
    assert_eq!(chosen(&v1, "GET", "ratings", "/", &[]), "rest");
}

#[test]
fn hosts_without_virtual_service_get_the_default_route() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: details}\nspec:\n  host: details\n  subsets: [{name: v1, labels: {version: v1}}]\n";
    let table = table(yaml, &ProxyScope::sidecar("default", &[]));
    let service = table.lookup("details:9080").unwrap();
    assert!(service.virtual_services.is_empty());
    assert_eq!(
        service.routes,
        [mesh_api::CompiledRoute::default_to(
            "details.default.svc.cluster.local"
        )]
    );
    assert!(table.lookup("unknown:9080").is_none());
}

#[test]
fn wildcard_hosts_most_specific_first() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {name: gw}\nspec:\n  selector: {istio: ingressgateway}\n  servers: [{port: {number: 80, name: http, protocol: HTTP}, hosts: ['*']}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: all}\nspec:\n  hosts: ['*']\n  gateways: [gw]\n  http: [{name: any, route: [{destination: {host: a}}]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: shop}\nspec:\n  hosts: ['*.shop.example.com']\n  gateways: [default/gw]\n  http: [{name: shop, route: [{destination: {host: b}}]}]\n";
    let table = table(
        yaml,
        &ProxyScope::gateway("istio-system", &[("istio", "ingressgateway")]),
    );
    assert_eq!(
        chosen(&table, "GET", "www.shop.example.com", "/", &[]),
        "shop"
    );
    assert_eq!(chosen(&table, "GET", "example.com:80", "/", &[]), "any");
}

#[test]
fn sidecars_use_the_first_virtual_service_for_a_host() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: first}\nspec:\n  hosts: [reviews]\n  http: [{name: first, route: [{destination: {host: reviews}}]}]\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: second}\nspec:\n  hosts: [reviews.default.svc.cluster.local]\n  http: [{name: second, route: [{destination: {host: reviews}}]}]\n";
    let outcome = MeshConfig::load([("two.yaml", yaml)]).unwrap();
    let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "two.yaml: document 2: VirtualService default/second: spec.hosts[0]: host reviews.default.svc.cluster.local is already routed by VirtualService default/first; sidecars do not merge VirtualServices, this one is ignored for that host"
        ]
    );
    let table = compile(&outcome.config, &ProxyScope::sidecar("default", &[]));
    assert_eq!(chosen(&table, "GET", "reviews", "/", &[]), "first");
    assert_eq!(
        table.lookup("reviews").unwrap().virtual_services,
        ["default/first"]
    );
}

#[test]
fn a_second_destination_rule_for_a_host_is_reported() {
    let yaml = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets: [{name: v1, labels: {version: v1}}]\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews-h2}\nspec:\n  host: reviews.default.svc.cluster.local\n  trafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: ratings}\nspec:\n  host: ratings\n";
    let outcome = MeshConfig::load([("two.yaml", yaml)]).unwrap();
    let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "two.yaml: document 2: DestinationRule default/reviews-h2: spec.host: host reviews.default.svc.cluster.local already has DestinationRule default/reviews; only one DestinationRule applies per host (its policy and subsets), so this one is ignored: edit that one instead"
        ],
        "one warning, for the second rule of reviews only"
    );
}
