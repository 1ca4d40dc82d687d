//! Health, metrics, the dashboard, describe, unknown paths.

use reqwest::StatusCode;

use crate::support::start;

#[tokio::test]
async fn health_dashboard_and_unknown_paths() {
    let server = start().await;
    let (status, _, body) = server.get_text("/healthz").await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "ok"));
    let (status, content_type, body) = server.get_text("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(body.contains("<title>Bookinfo-RS mesh control plane</title>"));
    assert!(
        !body.contains("https://"),
        "the page must not load anything remote"
    );
    let (status, body) = server.get("/api/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
}

#[tokio::test]
async fn metrics_count_pushes_and_show_state() {
    let server = start().await;
    server.register("reviews-v1", "reviews", "v1", 15206).await;
    server.get("/api/v1/proxy-config?workload=reviews-v1").await;
    server.post("/api/v1/apply?file=bad.yaml", "kind: [").await;
    let (status, content_type, text) = server.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("application/openmetrics-text"));
    for line in [
        "mesh_control_pushes_total 1",
        "mesh_control_push_duration_seconds_count 1",
        "mesh_control_connected_proxies 1",
        &format!("mesh_control_config_version {}", server.version()),
        "mesh_control_active_faults 0",
        "mesh_control_config_errors_total 1",
    ] {
        assert!(text.contains(line), "{line} missing:\n{text}");
    }
}

#[tokio::test]
async fn describe_shows_routes_endpoints_and_policies() {
    let server = start().await;
    server.apply("destination-rule-all.yaml").await;
    server.apply("virtual-service-reviews-test-v2.yaml").await;
    server.register("reviews-v2", "reviews", "v2", 15306).await;
    let policies = "apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: default, namespace: istio-system}
spec: {mtls: {mode: STRICT}}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-viewer}
spec:
  selector: {matchLabels: {app: reviews}}
  action: ALLOW
  rules:
  - from:
    - source: {principals: [cluster.local/ns/default/sa/bookinfo-productpage]}
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: ratings-viewer}
spec:
  selector: {matchLabels: {app: ratings}}
";
    let (status, body) = server
        .post("/api/v1/apply?file=policies.yaml", policies)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, d) = server.get("/api/v1/describe/reviews").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(d["host"], "reviews.default.svc.cluster.local");
    let routes = d["routes"].as_array().unwrap();
    assert_eq!(routes.len(), 2);
    assert_eq!(
        routes[0]["matches"][0]["headers"]["end-user"]["exact"],
        "jason"
    );
    assert!(d["subsets"]["v3"].is_object());
    assert!(d["policy"].is_object());
    assert_eq!(d["endpoints"][0]["address"], "127.0.0.1:15306");
    assert_eq!(d["authorization"].as_array().unwrap().len(), 1);
    assert_eq!(d["authorization"][0]["metadata"]["name"], "reviews-viewer");
    assert_eq!(d["peer_authentication"].as_array().unwrap().len(), 1);
    assert!(d["faults"].as_array().unwrap().is_empty());

    let (status, body) = server.get("/api/v1/describe/reveiws").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("reveiws.default.svc.cluster.local")
    );

    let (_, overview) = server.get("/api/v1/overview").await;
    let reviews = overview["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["host"] == "reviews.default.svc.cluster.local")
        .unwrap();
    assert_eq!(reviews["routes"][0]["match"], "end-user = jason");
    assert_eq!(reviews["routes"][0]["to"], "reviews v2 100%");
}

/// Deeply nested bodies (the fuzzer's slow-input class for YAML) are refused with the
/// reason: JSON bodies by their typed decoding (a mismatch at the first bracket, or
/// serde_json's nesting limit of 128 inside free-form fields), YAML ones before parsing.
#[tokio::test]
async fn deeply_nested_bodies_are_refused_with_the_reason() {
    let server = start().await;
    let deep_json = format!("{}1{}", "[".repeat(20_000), "]".repeat(20_000));
    for (path, what) in [
        ("/api/v1/faults", "invalid fault"),
        ("/api/v1/workloads", "invalid workload"),
        ("/api/v1/certificates", "invalid certificate request"),
    ] {
        let (status, body) = server.post(path, deep_json.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let error = body["error"].as_str().unwrap();
        assert!(error.starts_with(what), "{path}: {error}");
    }
    let deep_yaml = format!("spec: {}1{}\n", "{e: ".repeat(20_000), "}".repeat(20_000));
    for path in [
        "/api/v1/apply?file=deep.yaml",
        "/api/v1/delete?file=deep.yaml",
    ] {
        let (status, body) = server.post(path, deep_yaml.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert!(
            body.to_string().contains("brackets nested 20000 deep"),
            "{path}: {body}"
        );
    }
}
