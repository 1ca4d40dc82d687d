//! The Kubernetes Gateway API (`Gateway`, `HTTPRoute`): parsing, validation with field
//! paths, and what the compiled table does with matches, filters, weights, timeouts and
//! precedence.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::time::Duration;

use http::HeaderMap;
use mesh_api::compile::RouteAction;
use mesh_api::{MeshConfig, ProxyScope, RequestInfo, RouteTable, compile};

const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: gw}
spec:
  gatewayClassName: istio
  listeners:
  - {name: http, port: 80, protocol: HTTP, hostname: '*.example.com'}
";

fn load(yaml: &str) -> MeshConfig {
    let outcome = MeshConfig::load([("t.yaml", yaml)]).unwrap();
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    outcome.config
}

/// The error lines of a file that must not load.
fn errors(yaml: &str) -> Vec<String> {
    match MeshConfig::load([("bad.yaml", yaml)]) {
        Ok(_) => panic!("loaded:\n{yaml}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn route(spec: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {{name: r}}\nspec:\n{spec}"
    )
}

const MESH_PARENT: &str = "  parentRefs: [{group: '', kind: Service, name: reviews, port: 9080}]\n";

fn sidecar(config: &MeshConfig) -> RouteTable {
    compile(config, &ProxyScope::sidecar("default", &[]))
}

fn get<'a>(path: &'a str, headers: &'a HeaderMap, authority: &'a str) -> RequestInfo<'a> {
    RequestInfo {
        method: "GET",
        scheme: "http",
        authority,
        path,
        port: None,
        headers,
    }
}

/// The name of the route taking `path` with `headers` for `authority`.
fn routed(
    table: &RouteTable,
    authority: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Option<String> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.insert(
            http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    let service = table.lookup(authority)?;
    let found = service.select_route(&get(path, &map, authority))?;
    Some(found.name.clone().unwrap_or_default())
}

#[test]
fn v1beta1_is_accepted_and_both_gateways_kinds_coexist() {
    let yaml = format!(
        "{GATEWAY}---\napiVersion: networking.istio.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n  selector: {{istio: ingressgateway}}\n  servers: [{{port: {{number: 8080, name: http, protocol: HTTP}}, hosts: ['*']}}]\n---\n{}",
        route("  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: productpage, port: 9080}]}]\n")
            .replace("/v1\n", "/v1beta1\n")
    );
    let config = load(&yaml);
    assert_eq!(config.len(), 3, "two Gateways of different APIs, one route");
    assert_eq!(config.kube_gateways().count(), 1);
    assert_eq!(config.gateways().count(), 1);
    let table = compile(
        &config,
        &ProxyScope::gateway("default", &[("istio", "ingressgateway")]),
    );
    let ports: Vec<u32> = table.listeners.iter().map(|l| l.port).collect();
    assert_eq!(ports, [8080, 80]);
    // The listener's hostname limits the route: *.example.com only.
    assert_eq!(
        routed(&table, "shop.example.com", "/", &[]).as_deref(),
        Some("r.0")
    );
    assert!(table.lookup("other.org").is_none());
}

#[test]
fn matches_headers_query_and_method() {
    let config = load(&route(&format!(
        "{MESH_PARENT}  rules:
  - name: jason
    matches:
    - headers: [{{name: End-User, value: jason}}]
    backendRefs: [{{name: reviews-v2, port: 9080}}]
  - name: regex
    matches:
    - path: {{type: RegularExpression, value: '/reviews/[0-9]+'}}
      queryParams: [{{name: debug, value: '1'}}]
      method: POST
    backendRefs: [{{name: reviews-v3, port: 9080}}]
  - backendRefs: [{{name: reviews-v1, port: 9080}}]
"
    )));
    let table = sidecar(&config);
    let at = |path, headers: &[(&str, &str)]| routed(&table, "reviews:9080", path, headers);
    assert_eq!(
        at("/reviews/0", &[("end-user", "jason")]).as_deref(),
        Some("r.jason")
    );
    assert_eq!(
        at("/reviews/0", &[("end-user", "alice")]).as_deref(),
        Some("r.2")
    );
    // GET is not POST: the regex rule does not take it.
    assert_eq!(at("/reviews/1?debug=1", &[]).as_deref(), Some("r.2"));
    let service = table.lookup("reviews:9080").unwrap();
    let regex_route = service
        .routes
        .iter()
        .find(|r| r.name.as_deref() == Some("r.regex"))
        .unwrap();
    let m = &regex_route.matches[0];
    assert_eq!(m.method.as_ref().unwrap().exact.as_deref(), Some("POST"));
    assert!(m.query_params.contains_key("debug"));
    // Precedence: the header match (more conditions) comes before the catch-all, and a
    // regular expression after every prefix, as istiod ranks them.
    let names: Vec<_> = service
        .routes
        .iter()
        .map(|r| r.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["r.jason", "r.2", "r.regex"]);
}

#[test]
fn precedence_follows_the_spec_not_the_file() {
    // Two routes for the same Gateway; the later file names the longer prefix and the
    // exact path, so it wins for them even though it comes second.
    let yaml = format!(
        "{GATEWAY}---\n{}---\n{}",
        route("  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{path: {value: /api}}]\n    backendRefs: [{name: a, port: 80}]\n  - backendRefs: [{name: root, port: 80}]\n"),
        route("  parentRefs: [{name: gw}]\n  rules:\n  - matches: [{path: {value: /api/v1}}, {path: {type: Exact, value: /api}}]\n    backendRefs: [{name: b, port: 80}]\n").replace("name: r}", "name: s}")
    );
    let config = load(&yaml);
    let table = compile(&config, &ProxyScope::gateway("default", &[]));
    let at = |path| routed(&table, "x.example.com", path, &[]);
    assert_eq!(at("/api").as_deref(), Some("s.0"), "exact beats prefix");
    assert_eq!(at("/api/v1/x").as_deref(), Some("s.0"), "longest prefix");
    assert_eq!(at("/api/v2").as_deref(), Some("r.0"));
    assert_eq!(
        at("/apix").as_deref(),
        Some("r.1"),
        "prefixes match whole segments"
    );
    assert_eq!(at("/").as_deref(), Some("r.1"));
}

#[test]
fn nothing_matches_means_404_and_no_backends_means_500() {
    let config = load(&route(&format!(
        "{MESH_PARENT}  rules:\n  - matches: [{{path: {{type: Exact, value: /only}}}}]\n    backendRefs: [{{name: reviews-v1, port: 9080, weight: 0}}]\n"
    )));
    let table = sidecar(&config);
    assert_eq!(
        routed(&table, "reviews:9080", "/other", &[]),
        None,
        "404 NR in the proxy"
    );
    let service = table.lookup("reviews:9080").unwrap();
    let RouteAction::DirectResponse(d) = &service.routes[0].action else {
        panic!("weights summing to 0 answer directly");
    };
    assert_eq!(d.status, 500);
}

#[test]
fn filters_become_headers_mirrors_rewrites_and_redirects() {
    let config = load(&route(&format!(
        "{MESH_PARENT}  rules:
  - matches: [{{path: {{value: /old}}}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier:
        set: [{{name: X-Env, value: test}}]
        add: [{{name: x-tag, value: a}}]
        remove: [X-Debug]
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{set: [{{name: x-served-by, value: mesh}}]}}
    - type: RequestMirror
      requestMirror: {{backendRef: {{name: reviews-v3, port: 9080}}, percent: 25}}
    - type: URLRewrite
      urlRewrite: {{hostname: reviews.internal, path: {{type: ReplacePrefixMatch, replacePrefixMatch: /new}}}}
    backendRefs:
    - name: reviews-v1
      port: 9080
      filters: [{{type: RequestHeaderModifier, requestHeaderModifier: {{set: [{{name: x-backend, value: v1}}]}}}}]
    timeouts: {{request: 10s, backendRequest: 2s}}
  - matches: [{{path: {{type: Exact, value: /moved}}}}]
    filters:
    - type: RequestRedirect
      requestRedirect: {{scheme: https, hostname: example.com, path: {{type: ReplaceFullPath, replaceFullPath: /here}}}}
"
    )));
    let table = sidecar(&config);
    let service = table.lookup("reviews:9080").unwrap();
    // ReplacePrefixMatch splits `/old` from the paths below `/old/`.
    let old: Vec<_> = service
        .routes
        .iter()
        .filter(|r| r.name.as_deref() == Some("r.0"))
        .collect();
    assert_eq!(old.len(), 2);
    assert_eq!(
        old[0].matches[0].uri.as_ref().unwrap().exact.as_deref(),
        Some("/old")
    );
    assert_eq!(
        old[0].rewrite.as_ref().unwrap().uri.as_deref(),
        Some("/new")
    );
    assert_eq!(
        old[1].matches[0].uri.as_ref().unwrap().prefix.as_deref(),
        Some("/old/")
    );
    assert_eq!(
        old[1].rewrite.as_ref().unwrap().uri.as_deref(),
        Some("/new/")
    );
    assert_eq!(
        old[0].rewrite.as_ref().unwrap().authority.as_deref(),
        Some("reviews.internal")
    );
    let headers = old[0].headers.as_ref().unwrap();
    let request = headers.request.as_ref().unwrap();
    assert_eq!(request.set["x-env"], "test");
    assert_eq!(request.add["x-tag"], "a");
    assert_eq!(request.remove, ["x-debug"]);
    assert_eq!(
        headers.response.as_ref().unwrap().set["x-served-by"],
        "mesh"
    );
    assert_eq!(old[0].mirrors.len(), 1);
    assert_eq!(
        old[0].mirrors[0].destination.host,
        "reviews-v3.default.svc.cluster.local"
    );
    assert_eq!(old[0].mirrors[0].percent, 25.0);
    let RouteAction::Forward(w) = &old[0].action else {
        panic!("forwards")
    };
    let backend = w.destinations[0]
        .headers
        .as_ref()
        .unwrap()
        .request
        .as_ref()
        .unwrap();
    assert_eq!(backend.set["x-backend"], "v1");

    let moved = service
        .routes
        .iter()
        .find(|r| r.name.as_deref() == Some("r.1"))
        .unwrap();
    let RouteAction::Redirect(redirect) = &moved.action else {
        panic!("redirects")
    };
    assert_eq!(
        redirect.redirect_code,
        Some(302),
        "the Gateway API's default"
    );
    assert_eq!(redirect.scheme.as_deref(), Some("https"));
    assert_eq!(
        redirect.port,
        Some(443),
        "a new scheme means its default port"
    );
    assert_eq!(redirect.uri.as_deref(), Some("/here"));
    assert_eq!(old[1].timeout, Some(Duration::from_secs(10)));
    assert_eq!(old[1].retry.per_try_timeout, Some(Duration::from_secs(2)));
    assert_eq!(
        old[1].retry.attempts, 2,
        "Istio's default retries, each bounded"
    );
    // JSON round trip: the proxies get the table as JSON.
    let json = serde_json::to_string(&table).unwrap();
    assert_eq!(serde_json::from_str::<RouteTable>(&json).unwrap(), table);
}

#[test]
fn consumer_routes_only_apply_in_their_namespace() {
    let yaml = route(
        "  parentRefs: [{group: '', kind: Service, name: reviews, namespace: default}]\n  rules: [{backendRefs: [{name: reviews-v3, port: 9080, namespace: default}]}]\n",
    )
    .replace("name: r}", "name: r, namespace: frontend}");
    let config = load(&yaml);
    let inside = compile(&config, &ProxyScope::sidecar("frontend", &[]));
    let host = "reviews.default.svc.cluster.local";
    assert!(inside.lookup(host).unwrap().virtual_services[0].starts_with("HTTPRoute frontend/r"));
    let elsewhere = compile(&config, &ProxyScope::sidecar("default", &[]));
    assert!(elsewhere.lookup(host).is_none());
}

#[test]
fn bad_routes_name_the_field_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "  rules: [{backendRefs: [{name: a, port: 80}]}]\n",
            "spec.parentRefs: at least one parent is required",
        ),
        (
            "  parentRefs: [{kind: ConfigMap, name: x}]\n",
            "spec.parentRefs[0]: parent group \"gateway.networking.k8s.io\" kind \"ConfigMap\" is not supported",
        ),
        (
            "  parentRefs: [{name: gw}]\n  hostnames: ['Shop.Example.com:80']\n",
            "spec.hostnames[0]: \"Shop.Example.com:80\" is not a valid host name",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: Exact, value: productpage}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].matches[0].path.value: must be an absolute path starting with /, got \"productpage\"",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: RegularExpression, value: '/(a'}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].matches[0].path.value: invalid regex \"/(a\"",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{matches: [{headers: [{name: 'bad header', value: x}]}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].matches[0].headers[0].name: \"bad header\" is not a valid header name",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: a}]}]\n",
            "spec.rules[0].backendRefs[0].port: is required for a Service backend",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: a, port: 80, weight: 2000000}]}]\n",
            "spec.rules[0].backendRefs[0].weight: must be between 0 and 1000000, got 2000000",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: a, port: 80, kind: Bucket, group: storage.example.com}]}]\n",
            "spec.rules[0].backendRefs[0]: backend group \"storage.example.com\" kind \"Bucket\" is not supported",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].backendRefs: must be empty with a RequestRedirect filter",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: RequestRedirect, requestRedirect: {statusCode: 304}}]}]\n",
            "spec.rules[0].filters[0].requestRedirect.statusCode: must be one of 301, 302, 303, 307, 308, got 304",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: RequestHeaderModifier}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].filters[0].requestHeaderModifier: is required for a filter of type RequestHeaderModifier",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: CORS, cors: {allowOrigins: ['*']}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].filters[0].type: CORS filters are not supported by our mesh",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}}}], backendRefs: [{name: a, port: 80, filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}}}]}]}]\n",
            "spec.rules[0].backendRefs[0].filters[0].type: RequestMirror filters are not supported by our mesh on a backendRef",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: Exact, value: /a}}], filters: [{type: URLRewrite, urlRewrite: {path: {type: ReplacePrefixMatch, replacePrefixMatch: /b}}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].filters: URLRewrite with ReplacePrefixMatch needs every match of the rule to be a PathPrefix path match",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: RequestHeaderModifier, requestHeaderModifier: {set: [{name: x, value: '1'}], remove: [X]}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].filters[0].requestHeaderModifier.remove[0]: header \"X\" has more than one action",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{filters: [{type: RequestMirror, requestMirror: {backendRef: {name: m, port: 80}, percent: 150}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].filters[0].requestMirror.percent: must be between 0 and 100, got 150",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{timeouts: {request: 1s, backendRequest: 2s}, backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].timeouts.backendRequest: must not be longer than timeouts.request (1s)",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{timeouts: {request: 1.5s}, backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].timeouts.request: invalid duration \"1.5s\"",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{matches: [{path: {type: Prefix, value: /a}}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].matches[0].path.type: unknown variant `Prefix`, expected one of `Exact`, `PathPrefix`, `RegularExpression`",
        ),
        (
            "  parentRefs: [{name: gw}]\n  rules: [{matches: [{method: FETCH}], backendRefs: [{name: a, port: 80}]}]\n",
            "spec.rules[0].matches[0].method: unknown variant `FETCH`",
        ),
    ];
    for (spec, expected) in cases {
        let found = errors(&route(spec));
        assert!(
            found.iter().any(|e| e.contains(expected)),
            "expected {expected:?} in {found:#?}"
        );
        assert!(
            found
                .iter()
                .all(|e| e.starts_with("bad.yaml: document 1: HTTPRoute default/r: ")),
            "{found:#?}"
        );
    }
}

#[test]
fn bad_gateways_name_the_field_and_the_problem() {
    let gateway = |spec: &str| {
        format!(
            "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {{name: gw}}\nspec:\n{spec}"
        )
    };
    let cases: &[(&str, &str)] = &[
        (
            "  listeners: [{name: http, port: 80, protocol: HTTP}]\n",
            "spec.gatewayClassName: is required",
        ),
        (
            "  gatewayClassName: istio\n",
            "spec.listeners: at least one listener is required",
        ),
        (
            "  gatewayClassName: istio\n  listeners: [{name: https, port: 443, protocol: HTTPS}]\n",
            "spec.listeners[0].protocol: HTTPS listeners are not supported: our ingress gateway serves HTTP only",
        ),
        (
            "  gatewayClassName: istio\n  listeners: [{name: a, port: 0, protocol: HTTP}, {name: a, port: 81, protocol: HTTP}]\n",
            "spec.listeners[1].name: duplicate listener name \"a\"",
        ),
        (
            "  gatewayClassName: istio\n  listeners: [{name: a, port: 80, protocol: HTTP, allowedRoutes: {namespaces: {from: Selector}}}]\n",
            "spec.listeners[0].allowedRoutes.namespaces.from: Selector is not supported",
        ),
    ];
    for (spec, expected) in cases {
        let found = errors(&gateway(spec));
        assert!(
            found.iter().any(|e| e.contains(expected)),
            "expected {expected:?} in {found:#?}"
        );
    }
    let wrong_version =
        errors(&gateway("  gatewayClassName: istio\n").replace("/v1\n", "/v1alpha2\n"));
    assert!(
        wrong_version[0].contains(
            "apiVersion: \"gateway.networking.k8s.io/v1alpha2\" is not supported for Gateway"
        ),
        "{wrong_version:?}"
    );
}

#[test]
fn unknown_fields_are_warnings_with_their_path() {
    let yaml = format!(
        "{GATEWAY}---\n{}",
        route(
            "  parentRefs: [{name: gw}]\n  rules: [{backendRefs: [{name: a, port: 80, colour: red}], sessionPersistence: {type: Cookie}}]\n",
        )
    );
    let outcome = MeshConfig::load([("u.yaml", yaml.as_str())]).unwrap();
    let paths: Vec<&str> = outcome.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.rules[0].backendRefs[0].colour",
            "spec.rules[0].sessionPersistence"
        ]
    );
}

#[test]
fn routes_that_serve_nothing_are_warned_about() {
    let yaml = format!(
        "{GATEWAY}---\n{}---\n{}---\n{}---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: reviews}}\nspec:\n  hosts: [reviews]\n  http: [{{route: [{{destination: {{host: reviews}}}}]}}]\n",
        route("  parentRefs: [{name: missing}]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n"),
        route("  parentRefs: [{name: gw}]\n  hostnames: [shop.example.org]\n  rules: [{backendRefs: [{name: a, port: 80}]}]\n").replace("name: r}", "name: s}"),
        route(&format!("{MESH_PARENT}  rules: [{{backendRefs: [{{name: reviews-v1, port: 9080}}]}}]\n")).replace("name: r}", "name: t}"),
    );
    let outcome = MeshConfig::load([("w.yaml", yaml.as_str())]).unwrap();
    let warnings: Vec<String> = outcome.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "w.yaml: document 2: HTTPRoute default/r: spec.parentRefs[0]: Gateway default/missing (gateway.networking.k8s.io) is not defined: the route serves nothing through it until it is",
            "w.yaml: document 3: HTTPRoute default/s: spec.parentRefs[0]: no listener of Gateway default/gw takes this route (sectionName, port, allowedRoutes.namespaces or hostnames do not fit): it serves nothing there",
            "w.yaml: document 4: HTTPRoute default/t: spec.parentRefs[0]: host reviews.default.svc.cluster.local is already routed by VirtualService default/reviews; sidecars use it and ignore this route",
        ]
    );
}
