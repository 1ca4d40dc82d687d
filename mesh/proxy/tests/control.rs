//! The proxy in control-plane mode against a small fake control plane speaking the
//! watch API of `docs/control-plane-api.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use mesh_api::{EndpointRecord, Registry, RouteTable, ServiceRecord};
use mesh_proxy::config::{Env, Source, WorkloadSpec};
use mesh_proxy::run::start;
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Default)]
struct Fake {
    version: u64,
    registered: Vec<Value>,
    upstream: Option<SocketAddr>,
}

type Shared = Arc<(Mutex<Fake>, Notify)>;

fn config_json(f: &Fake) -> Value {
    let registry = Registry {
        services: vec![ServiceRecord {
            name: "svc".into(),
            namespace: "default".into(),
            ports: vec![80],
            endpoints: f
                .upstream
                .map(|a| EndpointRecord {
                    address: a,
                    labels: Default::default(),
                    workload: Some("svc-v1".into()),
                    sidecar: false,
                    service_account: None,
                })
                .into_iter()
                .collect(),
        }],
    };
    json!({ "version": f.version.to_string(), "table": RouteTable { namespace: "default".into(), ..RouteTable::default() }, "registry": registry })
}

async fn fake_control(shared: Shared) -> SocketAddr {
    let app = Router::new()
        .route(
            "/api/v1/workloads",
            post(
                |State(s): State<Shared>, Json(body): Json<Value>| async move {
                    s.0.lock().unwrap().registered.push(body);
                    Json(json!({"registered": "client-v1"}))
                },
            ),
        )
        .route(
            "/api/v1/proxy-config",
            get(
                |State(s): State<Shared>,
                 Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    if s.0.lock().unwrap().registered.is_empty() {
                        return (
                            StatusCode::NOT_FOUND,
                            Json(json!({"error": "unknown workload"})),
                        );
                    }
                    let wait: u64 = q.get("wait").and_then(|w| w.parse().ok()).unwrap_or(30);
                    let current = s.0.lock().unwrap().version.to_string();
                    if q.get("version") == Some(&current) {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(wait), s.1.notified()).await;
                    }
                    let f = s.0.lock().unwrap();
                    (StatusCode::OK, Json(config_json(&f)))
                },
            ),
        )
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn upstream(text: &'static str) -> SocketAddr {
    let app = Router::new().fallback(move || async move { text });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn control_env(url: String) -> Env {
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    Env {
        source: Source::Control {
            url,
            workload: WorkloadSpec {
                name: "client-v1".into(),
                namespace: "default".into(),
                service_account: Some("client".into()),
                labels: [("app".to_owned(), "client".to_owned())].into(),
                service: None,
            },
        },
        outbound: lo,
        inbound: lo,
        app: lo,
        admin: lo,
        access_log: false,
        ..Env::with_file("unused".into())
    }
}

#[tokio::test]
async fn registers_follows_pushes_and_survives_the_control_plane() {
    bookinfo_common::client::install_crypto_provider();
    let shared: Shared = Arc::new((
        Mutex::new(Fake {
            version: 1,
            ..Fake::default()
        }),
        Notify::new(),
    ));
    let first = upstream("first").await;
    shared.0.lock().unwrap().upstream = Some(first);
    let control = fake_control(shared.clone()).await;
    let proxy = start(&control_env(format!("http://{control}")))
        .await
        .unwrap();

    // Registered with the inbound address and labels; ready; routes with the pushed registry.
    let reg = shared.0.lock().unwrap().registered[0].clone();
    assert_eq!(reg["name"], "client-v1");
    assert_eq!(reg["serviceAccount"], "client");
    assert_eq!(reg["address"], proxy.inbound.unwrap().to_string());
    assert_eq!(
        reqwest::get(format!("http://{}/ready", proxy.admin))
            .await
            .unwrap()
            .status(),
        200
    );
    let client = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::http(format!("http://{}", proxy.outbound.unwrap())).unwrap())
        .build()
        .unwrap();
    assert_eq!(
        client
            .get("http://svc/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "first"
    );

    // A push: the endpoint moves; the proxy follows within a long poll.
    let second = upstream("second").await;
    {
        let mut f = shared.0.lock().unwrap();
        f.version = 2;
        f.upstream = Some(second);
    }
    shared.1.notify_waiters();
    let mut body = String::new();
    for _ in 0..50 {
        body = client
            .get("http://svc/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if body == "second" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(body, "second");
    assert_eq!(proxy.state.store.load().version, "2");

    // The control plane forgets us (a restart): the proxy keeps serving and registers again.
    shared.0.lock().unwrap().registered.clear();
    {
        shared.0.lock().unwrap().version = 3;
    }
    shared.1.notify_waiters();
    for _ in 0..100 {
        if !shared.0.lock().unwrap().registered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !shared.0.lock().unwrap().registered.is_empty(),
        "registered again"
    );
    assert_eq!(
        client
            .get("http://svc/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "second",
        "served throughout"
    );
}

#[tokio::test]
async fn waits_for_the_control_plane_and_is_not_ready_before() {
    bookinfo_common::client::install_crypto_provider();
    // Nothing listens at this address yet.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let env = control_env(format!("http://127.0.0.1:{port}"));
    let starting = tokio::spawn(async move { start(&env).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !starting.is_finished(),
        "start waits for the first configuration"
    );
    starting.abort();
}
