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
use mesh_proxy::config::Source;
use mesh_proxy::run::start;

mod control_plane;

use control_plane::{control_env, control_plane, svc_at};

async fn upstream(text: &'static str) -> SocketAddr {
    let app = Router::new().fallback(move || async move { text });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
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

/// A control plane in a runtime of its own, as a separate process would be: killing it
/// drops the runtime, and with it the listener, every connection and every long poll.
struct ControlProcess {
    control: Arc<Control>,
    addr: SocketAddr,
    kill: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ControlProcess {
    /// Starts one on `port` (0: any), retrying the bind while a killed predecessor's
    /// listener is being closed.
    fn start(port: u16, settings: Settings) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let control = Control::new(settings).unwrap();
                control.start_background();
                let mut bound = None;
                for _ in 0..100 {
                    match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                        Ok(listener) => {
                            bound = Some(listener);
                            break;
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                    }
                }
                let listener = bound.expect("the control plane's port is free again");
                let addr = listener.local_addr().unwrap();
                let router = mesh_control::api::router(control.clone());
                tokio::spawn(async move { axum::serve(listener, router).await });
                ready_tx.send((control, addr)).unwrap();
                let _ = killed.await;
            });
            // Dropping the runtime ends every task it holds, closing their sockets.
            runtime.shutdown_timeout(Duration::from_secs(1));
        });
        let (control, addr) = ready_rx.recv().unwrap();
        Self {
            control,
            addr,
            kill: Some(kill),
            thread: Some(thread),
        }
    }

    /// SIGKILL, as far as the proxy can tell; returns once the port is closed.
    async fn kill(mut self) {
        let _ = self.kill.take().unwrap().send(());
        let thread = self.thread.take().unwrap();
        tokio::task::spawn_blocking(move || thread.join().unwrap())
            .await
            .unwrap();
    }
}

/// What the soak found: after a restart, the first proxies back used to get a registry
/// missing the workloads not registered again yet, and answered 503 (`UH`) until they
/// were. Now a restart is invisible to traffic, and a workload that did not come back
/// still leaves the proxy's configuration once the registry has refilled.
#[tokio::test]
async fn traffic_keeps_flowing_through_a_control_plane_restart() {
    bookinfo_common::client::install_crypto_provider();
    let settings = || Settings {
        registration_grace: Duration::from_millis(2500),
        ..Settings::default()
    };
    let first = ControlProcess::start(0, settings());
    let svc = upstream("ok").await;
    first.control.register(svc_at(svc)).unwrap();
    let gone: Registration = serde_json::from_value(serde_json::json!({
        "name": "gone-v1", "service": "gone", "address": "127.0.0.1:9", "sidecar": false,
    }))
    .unwrap();
    first.control.register(gone).unwrap();
    let proxy = start(&control_env(format!("http://{}", first.addr)))
        .await
        .unwrap();
    let outbound = proxy.outbound.unwrap();
    let has_gone = |proxy: &mesh_proxy::run::Running| {
        proxy
            .state
            .store
            .load()
            .registry
            .service("gone.default.svc.cluster.local")
            .is_some()
    };
    assert!(has_gone(&proxy));

    // Requests through the proxy all along, one after the other.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let traffic = tokio::spawn({
        let stop = Arc::clone(&stop);
        async move {
            let client = reqwest::Client::builder()
                .no_proxy()
                .proxy(reqwest::Proxy::http(format!("http://{outbound}")).unwrap())
                .build()
                .unwrap();
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match client.get("http://svc/").send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(format!(
                        "{} {:?}",
                        r.status(),
                        r.headers().get("x-envoy-response-flags")
                    )),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Killed and started again on the same port. The proxy's poll fails, it polls
    // again, is told it is unknown and registers; svc's own proxy is slower to come
    // back (1.5 s), and gone's never does.
    let port = first.addr.port();
    first.kill().await;
    let second = ControlProcess::start(port, settings());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    second.control.register(svc_at(svc)).unwrap();

    // Once the grace is over, the proxy holds this run's configuration, without gone.
    let mut resynced = false;
    for _ in 0..200 {
        if proxy.state.store.load().version == second.control.version().to_string() {
            resynced = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(resynced, "the proxy follows the new control plane");
    assert!(!has_gone(&proxy), "a workload that went away leaves");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = traffic.await.unwrap();
    assert!(
        failed.is_empty(),
        "{} failed of {}: {failed:?}",
        failed.len(),
        ok as usize + failed.len()
    );
    assert!(ok >= 20, "traffic flowed: {ok} requests");
    second.kill().await;
}
