//! The proxy in control-plane mode against a small fake control plane speaking the
//! watch API of `docs/control-plane-api.md`.

//! The proxy in control-plane mode against the real control plane (`mesh-control`'s API
//! on 127.0.0.1:0): registration, pushes, a control plane that forgets us, and a start
//! that waits for the first configuration.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use mesh_api::wire::WorkloadSpec as Registration;
use mesh_control::{Control, Settings};
use mesh_proxy::config::{Env, Source, WorkloadSpec};
use mesh_proxy::run::start;

/// A control plane on 127.0.0.1:0; returns it and its address.
async fn control_plane() -> (Arc<Control>, SocketAddr) {
    let control = Control::new(Settings::default()).unwrap();
    control.start_background();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = mesh_control::api::router(control.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (control, addr)
}

/// The service `svc` with one instance outside the mesh, at `address`.
fn svc_at(address: SocketAddr) -> Registration {
    serde_json::from_value(serde_json::json!({
        "name": "svc-v1", "service": "svc", "labels": {"app": "svc"},
        "address": address, "sidecar": false, "ports": [80],
    }))
    .unwrap()
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
            token: None,
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
    let (control, addr) = control_plane().await;
    let first = upstream("first").await;
    control.register(svc_at(first)).unwrap();
    let proxy = start(&control_env(format!("http://{addr}"))).await.unwrap();

    // Registered with the inbound address and labels; ready; routes with the pushed registry.
    let registered = |name: &str| {
        control
            .workloads()
            .into_iter()
            .find(|w| w.spec.name == name)
            .map(|w| w.spec)
    };
    let reg = registered("client-v1").expect("the proxy registered");
    assert_eq!(reg.service_account, "client");
    assert_eq!(reg.address, proxy.inbound);
    assert_eq!(reg.labels["app"], "client");
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
    let get = || async {
        client
            .get("http://svc/")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(get().await, "first");

    // A push: the endpoint moves; the proxy follows within a long poll.
    let second = upstream("second").await;
    control.register(svc_at(second)).unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        body = get().await;
        if body == "second" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(body, "second");
    assert_eq!(
        proxy.state.store.load().version,
        control.version().to_string()
    );

    // The control plane forgets us (as after a restart): the proxy's next poll is
    // answered 404, it registers again and keeps serving throughout.
    control.deregister("client-v1").unwrap();
    for _ in 0..200 {
        if registered("client-v1").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(registered("client-v1").is_some(), "registered again");
    assert_eq!(get().await, "second", "served throughout");
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

/// Proves itself with the token of its file, read again for each request: a token rotated
/// in place (as Kubernetes rotates projected tokens) is the one sent from then on.
#[tokio::test]
async fn joins_a_control_plane_that_checks_identities_with_its_token_file() {
    use mesh_control::auth::{Auth, WorkloadTokens};
    bookinfo_common::client::install_crypto_provider();
    let (first, second) = (
        "client-token-first-0123456789",
        "client-token-second-0123456789",
    );
    let tokens = WorkloadTokens::parse(&format!(
        "- token: {first}\n  serviceAccount: client\n  workload: client-v1\n\
         - token: {second}\n  serviceAccount: client\n  workload: client-v1\n"
    ))
    .unwrap();
    let control = Control::new(Settings::default()).unwrap();
    control.start_background();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let auth = Arc::new(Auth::open().with_tokens(tokens));
    let router = mesh_control::api::secured(control.clone(), auth);
    tokio::spawn(async move { axum::serve(listener, router).await });

    // Without a token the proxy never joins.
    let env = control_env(format!("http://{addr}"));
    let anonymous = tokio::spawn(async move { start(&env).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !anonymous.is_finished(),
        "refused: no configuration, not ready"
    );
    anonymous.abort();
    assert!(control.workloads().is_empty());

    let file = std::env::temp_dir().join(format!("mesh-proxy-token-{}", std::process::id()));
    std::fs::write(&file, format!("{first}\n")).unwrap();
    let mut env = control_env(format!("http://{addr}"));
    if let Source::Control { token, .. } = &mut env.source {
        *token = Some(mesh_client::Credential::File(file.clone()));
    }
    let proxy = start(&env).await.unwrap();
    let identity = proxy
        .state
        .mtls()
        .expect("a certificate was issued")
        .identity();
    assert_eq!(
        identity.spiffe_id().as_str(),
        "spiffe://cluster.local/ns/default/sa/client"
    );

    // Rotated in place: each registration reads the file again. An unknown token there
    // keeps the proxy out; the rotated valid one lets it back in.
    let registered = || {
        control
            .workloads()
            .iter()
            .any(|w| w.spec.name == "client-v1")
    };
    std::fs::write(&file, "not-a-known-token-0123456789\n").unwrap();
    control.deregister("client-v1").unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !registered(),
        "the unknown token in the file was sent, and refused"
    );
    std::fs::write(&file, format!("{second}\n")).unwrap();
    let mut back = false;
    for _ in 0..250 {
        if registered() {
            back = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(back, "registered again with the rotated token");
    std::fs::remove_file(&file).unwrap();
}
