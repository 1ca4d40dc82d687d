//! meshctl's control-plane subcommands against a fake control plane: the requests it
//! sends (method, path, query, body) and what it prints.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One request the fake received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    uri: String,
    body: String,
    content_type: Option<String>,
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn reply(status: StatusCode, v: Value) -> Response {
    (
        status,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Istio's default retry policy, as the control plane's compiled routes carry it.
fn retry() -> Value {
    json!({"attempts": 2, "retry_on": ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"],
           "retriable_status_codes": [503], "per_try_timeout": null, "backoff": {"secs": 0, "nanos": 25000000},
           "retry_ignore_previous_hosts": true, "retry_remote_localities": false})
}

/// A route to one subset of reviews, as `describe` lists it.
fn reviews_route(matches: Value, subset: &str) -> Value {
    json!({"name": null, "matches": matches,
           "action": {"forward": {"destinations": [{"host": "reviews.default.svc.cluster.local", "subset": subset, "port": null, "weight": 100, "headers": null}], "total_weight": 100}},
           "timeout": null, "retry": retry(), "fault": null, "mirrors": [], "rewrite": null, "headers": null, "cors": null})
}

/// A subset with the default policy, as `describe` lists it.
fn subset(version: &str) -> Value {
    json!({"labels": {"version": version}, "port_policies": {},
           "policy": {"load_balancer": "leastRequest",
                      "connection_pool": {"max_connections": 4294967295u64, "connect_timeout": {"secs": 10, "nanos": 0},
                                          "idle_timeout": {"secs": 3600, "nanos": 0}, "max_connection_duration": null,
                                          "http1_max_pending_requests": 4294967295u64, "http2_max_requests": 4294967295u64,
                                          "max_requests_per_connection": 0, "max_retries": 4294967295u64,
                                          "h2_upgrade": false, "use_client_protocol": false},
                      "outlier_detection": null, "tls": "auto"}})
}

/// The lease `POST /api/v1/faults` creates from `request`, as the control plane answers.
fn lease(request: &Value) -> Value {
    let service = request["service"].as_str().unwrap_or("?");
    let mut lease = json!({"id": "f-1", "service": service, "namespace": "default",
                           "host": format!("{service}.default.svc.cluster.local")});
    for key in ["subset", "delay", "abort"] {
        if let Some(v) = request.get(key) {
            lease[key] = v.clone();
        }
    }
    lease["headers"] = request.get("headers").cloned().unwrap_or(json!({}));
    lease["ttl_seconds"] = request["ttl_seconds"].clone();
    lease["created_at_ms"] = json!(1_000);
    lease["expires_at_ms"] = json!(121_000);
    lease["remaining_ms"] = json!(120_000);
    lease["warnings"] = json!([]);
    lease
}

/// Answers like docs/control-plane-api.md says.
fn answer(method: &Method, uri: &Uri, body: &str) -> Response {
    let ok = |v| reply(StatusCode::OK, v);
    let query = uri.query().unwrap_or("");
    match (method.as_str(), uri.path()) {
        ("POST", "/api/v1/apply") if body.contains("BROKEN") => reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid configuration: 1 error",
                   "errors": ["broken.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].weight: must be 0 to 100"]}),
        ),
        ("POST", "/api/v1/apply") => ok(
            json!({"applied": ["VirtualService default/reviews", "DestinationRule default/reviews"], "warnings": ["subset v9 is not defined"], "version": 7}),
        ),
        ("POST", "/api/v1/delete") => ok(
            json!({"deleted": ["VirtualService default/reviews"], "missing": ["VirtualService default/ratings"], "version": 8}),
        ),
        ("GET", "/api/v1/resources") if query == "kind=VirtualService" => ok(json!([
            {"kind": "VirtualService", "namespace": "default", "name": "bookinfo", "source": "bookinfo-gateway.yaml", "file": "bookinfo-gateway.yaml",
             "resource": {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "bookinfo"},
                          "spec": {"hosts": ["*"], "gateways": ["bookinfo-gateway"]}}},
            {"kind": "VirtualService", "namespace": "default", "name": "reviews", "source": "api", "file": "vs-reviews.yaml",
             "resource": {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService", "metadata": {"name": "reviews"},
                          "spec": {"hosts": ["reviews"]}}}
        ])),
        ("GET", "/api/v1/resources") => ok(json!([])),
        ("GET", "/api/v1/describe/reviews") => ok(json!({
            "host": "reviews.default.svc.cluster.local",
            "routes": [reviews_route(json!([{"headers": {"end-user": {"exact": "jason"}}}]), "v2"),
                       reviews_route(json!([]), "v1")],
            "subsets": {"v1": subset("v1"), "v2": subset("v2")},
            "policy": null,
            "endpoints": [{"address": "127.0.0.1:15122", "labels": {"app": "reviews", "version": "v1"}, "workload": "reviews-v1", "sidecar": true, "serviceAccount": "bookinfo-reviews"}],
            "faults": [], "authorization": [], "peer_authentication": [],
            "virtual_services": ["default/reviews"], "destination_rule": "default/reviews", "version": "7"
        })),
        ("GET", p) if p.starts_with("/api/v1/describe/") => reply(
            StatusCode::NOT_FOUND,
            json!({"error": "no service named nope"}),
        ),
        ("GET", "/api/v1/proxy-status") => ok(json!([
            {"workload": "reviews-v2", "mode": "sidecar", "version": "7", "latest": "7", "status": "SYNCED", "last_seen_ms": 1200},
            {"workload": "istio-ingressgateway", "mode": "gateway", "version": "6", "latest": "7", "status": "STALE", "last_seen_ms": 300}
        ])),
        ("POST", "/api/v1/faults") => {
            let request: Value = serde_json::from_str(body).unwrap_or(json!({}));
            reply(StatusCode::CREATED, lease(&request))
        }
        ("GET", "/api/v1/faults") => ok(json!([
            {"id": "f-1", "service": "ratings", "namespace": "default", "host": "ratings.default.svc.cluster.local",
             "delay": {"fixed_delay": "7s", "percentage": 100.0}, "headers": {"end-user": "jason"}, "ttl_seconds": 120,
             "created_at_ms": 1_000, "expires_at_ms": 121_000, "remaining_ms": 95_000},
            {"id": "f-2", "service": "ratings", "namespace": "default", "host": "ratings.default.svc.cluster.local", "subset": "v1",
             "abort": {"http_status": 500, "percentage": 50.0}, "headers": {}, "ttl_seconds": 60,
             "created_at_ms": 1_000, "expires_at_ms": 61_000, "remaining_ms": 4_000}
        ])),
        ("DELETE", "/api/v1/faults/f-1") => ok(json!({"deleted": "f-1"})),
        ("DELETE", "/api/v1/faults") => ok(json!({"deleted": ["f-1", "f-2"]})),
        ("DELETE", _) => reply(StatusCode::NOT_FOUND, json!({"error": "no such fault"})),
        ("GET", "/api/v1/workloads") => ok(json!([
            {"name": "reviews-v2", "namespace": "default", "service": "reviews", "serviceAccount": "bookinfo-reviews",
             "labels": {"app": "reviews", "version": "v2"}, "address": "127.0.0.1:15132", "sidecar": true, "mode": "sidecar", "ports": [9080],
             "last_seen_ms": 500, "age_ms": 500, "registered_at_ms": 1_000}
        ])),
        _ => reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}

/// Starts the fake on 127.0.0.1:0; returns its URL and the request log.
async fn fake_control() -> (String, Log) {
    let log: Log = Arc::default();
    let rec = log.clone();
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: axum::http::HeaderMap, body: Bytes| {
            let rec = rec.clone();
            async move {
                let body = String::from_utf8_lossy(&body).into_owned();
                rec.lock().unwrap().push(Seen {
                    method: method.to_string(),
                    uri: uri.to_string(),
                    body: body.clone(),
                    content_type: headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned),
                });
                answer(&method, &uri, &body)
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

/// Runs meshctl with `--control url` and a run dir without a state file.
async fn meshctl(url: &str, args: &[&str]) -> Run {
    let run_dir = std::env::temp_dir().join(format!("meshctl-cli-test-{}", std::process::id()));
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .args(args)
        .arg("--control")
        .arg(url)
        .arg("--run-dir")
        .arg(&run_dir)
        .env_remove("MESHCTL_CONTROL")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .output()
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Writes `text` to `name` in a directory of this test's own (removed by the test).
fn yaml_file(test: &str, name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("meshctl-cli-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[tokio::test]
async fn apply_posts_the_yaml_and_reports_each_resource() {
    let (url, log) = fake_control().await;
    let yaml =
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\n";
    let file = yaml_file("apply", "vs-reviews.yaml", yaml);
    let r = meshctl(&url, &["apply", "-f", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "VirtualService default/reviews configured\nDestinationRule default/reviews configured\n"
    );
    assert!(r.stderr.contains("warning: ") && r.stderr.contains("subset v9 is not defined"));
    let seen = log.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert!(
        seen[0].uri.starts_with("/api/v1/apply?file="),
        "{}",
        seen[0].uri
    );
    assert!(seen[0].uri.ends_with("vs-reviews.yaml"), "{}", seen[0].uri);
    assert_eq!(seen[0].body, yaml);
    assert_eq!(seen[0].content_type.as_deref(), Some("application/yaml"));
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn apply_of_a_directory_sends_each_yaml_file_in_order_and_fails_on_errors() {
    let (url, log) = fake_control().await;
    let dir = std::env::temp_dir().join(format!("meshctl-cli-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b-broken.yaml"), "BROKEN: true\n").unwrap();
    std::fs::write(dir.join("a-ok.yaml"), "kind: VirtualService\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "not yaml").unwrap();
    let r = meshctl(&url, &["apply", "-f", dir.to_str().unwrap()]).await;
    assert_eq!(r.code, 1, "a rejected file makes the command fail");
    assert!(
        r.stdout
            .contains("VirtualService default/reviews configured")
    );
    assert!(
        r.stderr
            .contains("b-broken.yaml: invalid configuration: 1 error"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("  broken.yaml: document 1: VirtualService default/reviews: spec.http[0].route[0].weight"),
        "{}",
        r.stderr
    );
    let uris: Vec<String> = log.lock().unwrap().iter().map(|s| s.uri.clone()).collect();
    assert_eq!(uris.len(), 2);
    assert!(
        uris[0].ends_with("a-ok.yaml") && uris[1].ends_with("b-broken.yaml"),
        "{uris:?}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn delete_reports_deleted_and_missing() {
    let (url, log) = fake_control().await;
    let file = yaml_file("delete", "del.yaml", "kind: VirtualService\n");
    let r = meshctl(&url, &["delete", "-f", file.to_str().unwrap()]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "VirtualService default/reviews deleted\nVirtualService default/ratings not found\n"
    );
    assert!(
        log.lock().unwrap()[0]
            .uri
            .starts_with("/api/v1/delete?file=")
    );
    std::fs::remove_dir_all(file.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn get_virtualservices_as_table_yaml_and_json() {
    let (url, log) = fake_control().await;
    let r = meshctl(&url, &["get", "vs"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "NAMESPACE   NAME       GATEWAYS           HOSTS     SOURCE\n\
         default     bookinfo   bookinfo-gateway   *         bookinfo-gateway.yaml\n\
         default     reviews    -                  reviews   api\n"
    );
    assert_eq!(
        log.lock().unwrap()[0].uri,
        "/api/v1/resources?kind=VirtualService"
    );

    let r = meshctl(&url, &["get", "virtualservices", "-o", "yaml"]).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("apiVersion: networking.istio.io/v1\n"),
        "{}",
        r.stdout
    );
    assert_eq!(r.stdout.matches("\n---\n").count(), 1, "{}", r.stdout);

    let r = meshctl(&url, &["get", "vs", "-o", "json"]).await;
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v[1]["name"], "reviews");

    let r = meshctl(&url, &["get", "pa"]).await;
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, "");
    assert!(
        r.stderr.contains("No peerauthentications found."),
        "{}",
        r.stderr
    );
    assert!(
        log.lock()
            .unwrap()
            .last()
            .unwrap()
            .uri
            .ends_with("kind=PeerAuthentication")
    );

    let r = meshctl(&url, &["get", "pods"]).await;
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("unknown kind \"pods\""), "{}", r.stderr);
}

#[tokio::test]
async fn get_workloads_and_faults() {
    let (url, _log) = fake_control().await;
    let r = meshctl(&url, &["get", "workloads"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert!(
        lines[0].starts_with("NAME         NAMESPACE   SERVICE   MODE      ADDRESS"),
        "{}",
        r.stdout
    );
    assert!(lines[1].contains("127.0.0.1:15132") && lines[1].contains("app=reviews,version=v2"));
    assert!(lines[1].ends_with("500ms ago"), "{}", lines[1]);

    let r = meshctl(&url, &["get", "faults"]).await;
    assert!(
        r.stdout
            .contains("f-1   ratings   -        delay 7s (100%)   end-user=jason   1m 35s"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("f-2   ratings   v1       abort 500 (50%)   *                4.0s"),
        "{}",
        r.stdout
    );
}

#[tokio::test]
async fn describe_summarises_and_unknown_services_fail_with_the_api_error() {
    let (url, log) = fake_control().await;
    let r = meshctl(&url, &["describe", "reviews"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout
            .contains("1. when end-user=jason -> reviews v2 100%"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("2. every request -> reviews v1 100%"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("v1       version=v1               1 endpoint\n"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("v2       version=v2               0 endpoints\n"),
        "{}",
        r.stdout
    );
    assert_eq!(
        log.lock().unwrap()[0].uri,
        "/api/v1/describe/reviews?namespace=default"
    );

    let r = meshctl(&url, &["describe", "nope"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "meshctl: no service named nope\n");

    let r = meshctl(&url, &["describe", "../faults"]).await;
    assert_eq!(r.code, 64, "a name that would change the path is refused");
}

#[tokio::test]
async fn proxy_status_table() {
    let (url, _log) = fake_control().await;
    let r = meshctl(&url, &["proxy-status"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "NAME                   MODE      VERSION   LATEST   STATUS   LAST SEEN\n\
         reviews-v2             sidecar   7         7        SYNCED   1.2s ago\n\
         istio-ingressgateway   gateway   6         7        STALE    300ms ago\n"
    );
}

#[tokio::test]
async fn fault_add_list_and_clear() {
    let (url, log) = fake_control().await;
    let r = meshctl(
        &url,
        &[
            "fault",
            "add",
            "ratings",
            "--delay",
            "7s",
            "--header",
            "end-user=jason",
            "--ttl",
            "2m",
        ],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "fault f-1 added: delay 7s (100%) on ratings for requests with end-user=jason; expires in 2m 0s\n"
    );
    let sent = log.lock().unwrap()[0].clone();
    assert_eq!(
        (sent.method.as_str(), sent.uri.as_str()),
        ("POST", "/api/v1/faults")
    );
    assert_eq!(sent.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body,
        json!({"service": "ratings", "delay": {"fixed_delay": "7s", "percentage": 100.0},
               "headers": {"end-user": "jason"}, "ttl_seconds": 120})
    );

    let r = meshctl(&url, &["fault", "list"]).await;
    assert_eq!(r.stdout.lines().count(), 3, "{}", r.stdout);

    let r = meshctl(&url, &["fault", "clear", "f-1"]).await;
    assert_eq!((r.code, r.stdout.as_str()), (0, "fault f-1 deleted\n"));
    let r = meshctl(&url, &["fault", "clear", "f-9"]).await;
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no fault f-9"), "{}", r.stderr);
    let r = meshctl(&url, &["fault", "clear"]).await;
    assert_eq!(r.stdout, "deleted 2 fault(s): f-1, f-2\n");
    let methods: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s.method, s.uri))
        .collect();
    assert_eq!(
        methods[2..],
        [
            "DELETE /api/v1/faults/f-1",
            "DELETE /api/v1/faults/f-9",
            "DELETE /api/v1/faults"
        ]
    );
}

#[tokio::test]
async fn bad_fault_flags_never_reach_the_control_plane() {
    let (url, log) = fake_control().await;
    let r = meshctl(
        &url,
        &["fault", "add", "ratings", "--delay", "7", "--ttl", "2m"],
    )
    .await;
    assert_eq!(r.code, 64);
    assert_eq!(
        r.stderr,
        "meshctl: --delay: invalid duration \"7\": expected a number with a unit, such as 7s, 500ms, 2m or 1h\n"
    );
    let r = meshctl(
        &url,
        &[
            "fault", "add", "ratings", "--abort", "500", "--header", "jason", "--ttl", "1m",
        ],
    )
    .await;
    assert_eq!(r.code, 64);
    assert!(r.stderr.contains("expected NAME=VALUE"), "{}", r.stderr);
    assert!(log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn an_unreachable_control_plane_is_one_clear_line() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let r = meshctl(&url, &["proxy-status"]).await;
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr.lines().count(), 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains(&format!("cannot reach the control plane at {url}")),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("meshctl up"), "{}", r.stderr);
}

#[tokio::test]
async fn explain_known_and_unknown_flags() {
    let r = meshctl("http://127.0.0.1:1", &["explain", "uo"]).await;
    assert_eq!(r.code, 0);
    assert!(
        r.stdout.starts_with("UO (UpstreamOverflow)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("circuit-breaking"), "{}", r.stdout);
    let r = meshctl("http://127.0.0.1:1", &["explain", "XYZ"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("unknown response flag \"XYZ\"; known flags: UH, UF, UO, NR, URX"),
        "{}",
        r.stderr
    );
}

#[tokio::test]
async fn usage_errors_exit_64() {
    let r = meshctl("http://127.0.0.1:1", &["get"]).await;
    assert_eq!(r.code, 64, "{}", r.stderr);
    let r = meshctl("not a url", &["proxy-status"]).await;
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("invalid control plane URL \"not a url\""),
        "{}",
        r.stderr
    );
}
