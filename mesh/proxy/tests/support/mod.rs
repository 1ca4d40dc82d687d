//! A sidecar configured by file, as the proxy tests start it: the registry has one
//! service `svc` (port 80) with the given endpoints, plus Istio resources (YAML).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mesh_proxy::config::Env;
use mesh_proxy::run::{Running, start};

static DIRS: AtomicU32 = AtomicU32::new(0);

/// One endpoint of `svc`: its address, `version` label and whether a sidecar of ours
/// fronts it.
pub(crate) struct Ep<'a>(pub(crate) SocketAddr, pub(crate) &'a str, pub(crate) bool);

/// Starts a sidecar (every listener on a free loopback port) in front of `app`.
pub(crate) async fn file_sidecar(endpoints: &[Ep<'_>], rules: &str, app: SocketAddr) -> Running {
    bookinfo_common::client::install_crypto_provider();
    // Under the target folder, not /tmp: the sidecar reads these files for as long as it
    // runs, so they outlive the test function, and `cargo clean` is what removes them.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mesh-proxy-test-{}-{}",
        std::process::id(),
        DIRS.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let eps: String = endpoints
        .iter()
        .map(|Ep(a, v, sidecar)| format!("    - address: {a}\n      labels: {{app: svc, version: {v}}}\n      workload: svc-{v}\n      sidecar: {sidecar}\n"))
        .collect();
    std::fs::write(dir.join("rules.yaml"), rules).unwrap();
    std::fs::write(
        dir.join("proxy.yaml"),
        format!("workload:\n  name: client-v1\n  labels: {{app: client, version: v1}}\nregistry:\n  services:\n  - name: svc\n    ports: [80]\n    endpoints:\n{eps}resources: [rules.yaml]\n"),
    )
    .unwrap();
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    let env = Env {
        outbound: lo,
        inbound: lo,
        app,
        admin: lo,
        access_log: false,
        drain: Duration::from_millis(50),
        ..Env::with_file(dir.join("proxy.yaml"))
    };
    start(&env).await.unwrap()
}

/// A client sending every request through the sidecar's outbound listener.
pub(crate) fn client_via(proxy: &Running) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::http(format!("http://{}", proxy.outbound.unwrap())).unwrap())
        .build()
        .unwrap()
}

/// The sidecar's Prometheus text.
pub(crate) async fn stats(proxy: &Running) -> String {
    let url = format!("http://{}/stats/prometheus", proxy.admin);
    reqwest::get(url).await.unwrap().text().await.unwrap()
}
