//! Kubernetes Gateway API routes executed by real proxies on loopback sockets: an
//! ingress gateway serving a `Gateway` + `HTTPRoute`, and a sidecar serving a mesh
//! (GAMMA) `HTTPRoute` attached to a Service, both sending to per-version Services
//! (`reviews-v1`, `reviews-v2`) in front of fake upstreams.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mesh_proxy::config::{Env, Mode};
use mesh_proxy::run::{Running, start};

/// A fake reviews instance answering `<version> <path>` and echoing `x-tag`.
async fn upstream(version: &'static str) -> SocketAddr {
    let router = axum::Router::new().fallback(
        move |uri: axum::http::Uri, headers: axum::http::HeaderMap| async move {
            let tag = headers
                .get("x-tag")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            format!(
                "{version} {} {tag}",
                uri.path_and_query().map_or("/", |p| p.as_str())
            )
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Writes a proxy file: the registry has `reviews` (both instances) and the
/// per-version Services `reviews-v1` and `reviews-v2` of `bookinfo-versions.yaml`.
fn proxy_file(name: &str, labels: &str, v1: SocketAddr, v2: SocketAddr, rules: &str) -> PathBuf {
    static DIRS: AtomicU32 = AtomicU32::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mesh-proxy-gwapi-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ep = |a: SocketAddr, v: &str| {
        format!(
            "    - address: {a}\n      labels: {{app: reviews, version: {v}}}\n      workload: reviews-{v}\n"
        )
    };
    let registry = format!(
        "registry:\n  services:\n  - name: reviews\n    ports: [9080]\n    endpoints:\n{}{}  - name: reviews-v1\n    ports: [9080]\n    endpoints:\n{}  - name: reviews-v2\n    ports: [9080]\n    endpoints:\n{}",
        ep(v1, "v1"),
        ep(v2, "v2"),
        ep(v1, "v1"),
        ep(v2, "v2")
    );
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    let file = dir.join("proxy.yaml");
    std::fs::write(
        &file,
        format!(
            "workload:\n  name: {name}\n  labels: {{{labels}}}\n{registry}resources: [rules.yaml]\n"
        ),
    )
    .unwrap();
    file
}

fn env(file: PathBuf, mode: Mode) -> Env {
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    Env {
        mode,
        outbound: lo,
        inbound: lo,
        app: lo,
        admin: lo,
        gateway_address: [127, 0, 0, 1].into(),
        // The Gateway's port 80, bound on a free port.
        gateway_ports: [(80, 0)].into_iter().collect(),
        access_log: false,
        drain: Duration::from_millis(50),
        ..Env::with_file(file)
    }
}

/// One rule for jason (to v2, tagged, path rewritten), then 90/10 between v1 and v2.
fn rules(parent: &str) -> String {
    format!(
        "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {{name: reviews}}
spec:
  parentRefs: [{parent}]
  rules:
  - matches:
    - path: {{type: PathPrefix, value: /reviews}}
      headers: [{{name: end-user, value: jason}}]
    filters:
    - type: RequestHeaderModifier
      requestHeaderModifier: {{set: [{{name: x-tag, value: jason}}]}}
    - type: ResponseHeaderModifier
      responseHeaderModifier: {{add: [{{name: x-route, value: jason}}]}}
    - type: URLRewrite
      urlRewrite: {{path: {{type: ReplacePrefixMatch, replacePrefixMatch: /v2-reviews}}}}
    backendRefs: [{{name: reviews-v2, port: 9080}}]
  - matches: [{{path: {{type: PathPrefix, value: /reviews}}}}]
    backendRefs:
    - {{name: reviews-v1, port: 9080, weight: 90}}
    - {{name: reviews-v2, port: 9080, weight: 10}}
"
    )
}

const GATEWAY: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: bookinfo-gateway}
spec:
  gatewayClassName: istio
  listeners: [{name: http, port: 80, protocol: HTTP}]
---
";

/// Sends `n` requests for `/reviews/0` and counts the answers from v2; checks jason's
/// requests all reach v2, rewritten and tagged.
async fn check(client: &reqwest::Client, url: &str, n: usize) -> usize {
    let mut v2 = 0;
    for _ in 0..n {
        let resp = client.get(format!("{url}/reviews/0")).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("x-route").is_none());
        let body = resp.text().await.unwrap();
        match body.as_str() {
            "v1 /reviews/0 -" => {}
            "v2 /reviews/0 -" => v2 += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    for _ in 0..10 {
        let resp = client
            .get(format!("{url}/reviews/0?x=1"))
            .header("end-user", "jason")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-route"], "jason");
        assert_eq!(resp.text().await.unwrap(), "v2 /v2-reviews/0?x=1 jason");
    }
    // A path no rule matches: 404 (`NR`), not a default forward.
    let resp = client.get(format!("{url}/reviewsx")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    v2
}

#[tokio::test]
async fn gateway_httproute_splits_90_10_and_routes_jason() {
    bookinfo_common::client::install_crypto_provider();
    let (v1, v2) = (upstream("v1").await, upstream("v2").await);
    let file = proxy_file(
        "bookinfo-gateway-istio",
        "istio: ingressgateway",
        v1,
        v2,
        &format!("{GATEWAY}{}", rules("{name: bookinfo-gateway}")),
    );
    let gateway: Running = start(&env(file, Mode::Gateway)).await.unwrap();
    assert_eq!(
        gateway.gateways.len(),
        1,
        "one listener for the Gateway's port 80"
    );
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("http://{}", gateway.gateways[0]);
    let v2 = check(&client, &url, 400).await;
    // 10 % of 400 is 40; the bounds are over 5 standard deviations wide.
    assert!((15..=70).contains(&v2), "{v2} of 400 went to v2");
}

#[tokio::test]
async fn mesh_httproute_on_a_service_splits_90_10_and_routes_jason() {
    bookinfo_common::client::install_crypto_provider();
    let (v1, v2) = (upstream("v1").await, upstream("v2").await);
    let file = proxy_file(
        "productpage-v1",
        "app: productpage, version: v1",
        v1,
        v2,
        &rules("{group: '', kind: Service, name: reviews, port: 9080}"),
    );
    let sidecar: Running = start(&env(file, Mode::Sidecar)).await.unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::http(format!("http://{}", sidecar.outbound.unwrap())).unwrap())
        .build()
        .unwrap();
    let v2 = check(&client, "http://reviews:9080", 400).await;
    assert!((15..=70).contains(&v2), "{v2} of 400 went to v2");
    // Without a route, a per-version Service is reachable like any other.
    let direct = client.get("http://reviews-v1:9080/x").send().await.unwrap();
    assert_eq!(direct.text().await.unwrap(), "v1 /x -");
}
