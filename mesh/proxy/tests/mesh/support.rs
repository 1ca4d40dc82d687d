//! A whole Bookinfo mesh in one test process: the real services (productpage v1,
//! details v1, reviews v1/v2/v3, ratings v1), each behind its own sidecar, on
//! 127.0.0.1 ports, with routing from our shipped YAML files.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use bookinfo_common::client::{self, ClientOptions, Proxy};
use mesh_proxy::config::Env;
use mesh_proxy::run::{Running, start};

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The shipped routing file `name` under `mesh/config/`.
pub(crate) fn shipped(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name)
}

/// A fresh scratch directory for this test.
pub(crate) fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    // Under the target folder, not /tmp: the sidecars read these files for as long as
    // they run, so they outlive the test function, and `cargo clean` removes them.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "mesh-proxy-test-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// One workload: its app port and its sidecar's ports.
#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub(crate) name: &'static str,
    pub(crate) app: &'static str,
    pub(crate) version: &'static str,
    pub(crate) app_port: u16,
    pub(crate) outbound: u16,
    pub(crate) inbound: u16,
    pub(crate) admin: u16,
}

impl Workload {
    fn new(name: &'static str, app: &'static str, version: &'static str) -> Self {
        Self {
            name,
            app,
            version,
            app_port: 0,
            outbound: 0,
            inbound: 0,
            admin: 0,
        }
    }
}

/// The running mesh.
pub(crate) struct Mesh {
    pub(crate) dir: PathBuf,
    pub(crate) workloads: Vec<Workload>,
    pub(crate) sidecars: HashMap<&'static str, Running>,
    /// A client that talks to productpage's sidecar like an ingress would.
    pub(crate) http: reqwest::Client,
}

/// Registry YAML: every service with its workloads' sidecar inbound ports as endpoints.
fn registry_yaml(workloads: &[Workload]) -> String {
    let mut out = String::from("  services:\n");
    for app in ["productpage", "details", "reviews", "ratings"] {
        out.push_str(&format!(
            "  - name: {app}\n    ports: [9080]\n    endpoints:\n"
        ));
        for w in workloads.iter().filter(|w| w.app == app) {
            out.push_str(&format!(
                "    - address: 127.0.0.1:{}\n      labels: {{app: {app}, version: {}}}\n      workload: {}\n      sidecar: true\n",
                w.inbound, w.version, w.name
            ));
        }
    }
    out
}

/// Writes each workload's proxy file with the given routing files.
pub(crate) fn write_configs(dir: &std::path::Path, workloads: &[Workload], resources: &[PathBuf]) {
    let registry = registry_yaml(workloads);
    let resources: String = resources
        .iter()
        .map(|r| format!("  - {}\n", r.display()))
        .collect();
    for w in workloads {
        let text = format!(
            "workload:\n  name: {}\n  serviceAccount: bookinfo-{}\n  labels: {{app: {}, version: {}}}\nregistry:\n{registry}resources:\n{resources}",
            w.name, w.app, w.app, w.version
        );
        std::fs::write(dir.join(format!("{}.yaml", w.name)), text).unwrap();
    }
}

fn via(w: &Workload) -> ClientOptions {
    ClientOptions {
        keep_alive: true,
        proxy: Proxy::Via(format!("http://127.0.0.1:{}", w.outbound)),
    }
}

/// Serves `router` on a fresh loopback port and returns the port.
async fn serve(addr: SocketAddr, router: axum::Router) -> u16 {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    port
}

fn env_map(pairs: &[(&str, String)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Starts the app of `w`, calling upstreams through its sidecar (whose outbound port
/// must be known already); returns the app's port.
async fn start_app_on(w: &Workload, addr: SocketAddr) -> u16 {
    match w.app {
        "productpage" => {
            let env = env_map(&[("PRODUCTPAGE_KEEPALIVE", "true".into())]);
            let config = bookinfo_productpage::Config::from_lookup(&env, None).unwrap();
            let state = bookinfo_productpage::AppState::new(&config, via(w).proxy).unwrap();
            serve(addr, bookinfo_productpage::app(state)).await
        }
        "details" => {
            let config = bookinfo_details::Config::from_lookup(&env_map(&[]), None).unwrap();
            let client = client::build(via(w)).unwrap();
            let state = Arc::new(bookinfo_details::routes::AppState { config, client });
            serve(addr, bookinfo_details::app(state)).await
        }
        "reviews" => {
            let env = env_map(&[
                ("SERVICE_VERSION", w.version.into()),
                ("HOSTNAME", format!("{}-pod", w.name)),
            ]);
            let config = bookinfo_reviews::Config::from_lookup(&env, None).unwrap();
            let client = client::build(via(w)).unwrap();
            let state = Arc::new(bookinfo_reviews::routes::AppState { config, client });
            serve(addr, bookinfo_reviews::app(state)).await
        }
        "ratings" => {
            let state =
                bookinfo_ratings::AppState::new(bookinfo_ratings::config::Version::V1, Some(1));
            serve(addr, bookinfo_ratings::app(state)).await
        }
        other => panic!("unknown app {other}"),
    }
}

/// The standard Bookinfo workloads.
pub(crate) fn bookinfo_workloads() -> Vec<Workload> {
    vec![
        Workload::new("productpage-v1", "productpage", "v1"),
        Workload::new("details-v1", "details", "v1"),
        Workload::new("reviews-v1", "reviews", "v1"),
        Workload::new("reviews-v2", "reviews", "v2"),
        Workload::new("reviews-v3", "reviews", "v3"),
        Workload::new("ratings-v1", "ratings", "v1"),
    ]
}

impl Mesh {
    /// Starts Bookinfo with `resources` (shipped file names, or absolute paths).
    ///
    /// Everything binds port 0, so parallel tests never collide: each sidecar starts
    /// with an empty registry, and once every port is known the full registry is written
    /// and picked up by the proxies' configuration reload.
    pub(crate) async fn start(resources: &[&str]) -> Self {
        Self::start_traced(resources, None).await
    }

    /// Starts Bookinfo as [`Mesh::start`] does, every sidecar tracing with `trace`.
    pub(crate) async fn start_traced(
        resources: &[&str],
        trace: Option<mesh_proxy::telemetry::trace::Settings>,
    ) -> Self {
        let dir = scratch();
        let mut workloads = bookinfo_workloads();
        write_configs(&dir, &[], &[]);
        let mut sidecars = HashMap::new();
        for w in &mut workloads {
            let config = dir.join(format!("{}.yaml", w.name));
            std::fs::write(
                &config,
                format!(
                    "workload:\n  name: {}\n  labels: {{app: {}, version: {}}}\n",
                    w.name, w.app, w.version
                ),
            )
            .unwrap();
            // The outbound port must exist before the app's client is built: start the
            // sidecar first, with the app address filled in once the app listens.
            let app_listener = std::net::TcpListener::bind(loopback(0)).unwrap();
            let app_addr = app_listener.local_addr().unwrap();
            let env = Env {
                outbound: loopback(0),
                inbound: loopback(0),
                app: app_addr,
                admin: loopback(0),
                access_log: false,
                drain: Duration::from_millis(100),
                trace: trace.clone(),
                ..Env::with_file(config)
            };
            let running = start(&env).await.unwrap();
            w.outbound = running.outbound.unwrap().port();
            w.inbound = running.inbound.unwrap().port();
            w.admin = running.admin.port();
            drop(app_listener);
            w.app_port = start_app_on(w, app_addr).await;
            sidecars.insert(w.name, running);
        }
        let http = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mesh = Self {
            dir,
            workloads,
            sidecars,
            http,
        };
        mesh.apply(resources).await;
        mesh
    }

    pub(crate) fn workload(&self, name: &str) -> &Workload {
        self.workloads.iter().find(|w| w.name == name).unwrap()
    }

    /// The product page as an anonymous user, through productpage's sidecar.
    pub(crate) async fn page(&self) -> String {
        self.page_as(None).await
    }

    /// The product page, signed in as `user` when given.
    pub(crate) async fn page_as(&self, user: Option<&str>) -> String {
        let base = format!(
            "http://127.0.0.1:{}",
            self.workload("productpage-v1").inbound
        );
        let mut req = self.http.get(format!("{base}/productpage"));
        if let Some(user) = user {
            let login = self
                .http
                .post(format!("{base}/login"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(format!("username={user}&passwd=password"))
                .send()
                .await
                .unwrap();
            assert_eq!(login.status(), 302);
            let cookie = login.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            req = req.header("cookie", cookie);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200, "productpage always answers 200");
        resp.text().await.unwrap()
    }

    /// Prometheus text of a sidecar's admin endpoint.
    pub(crate) async fn stats(&self, name: &str) -> String {
        let url = format!(
            "http://127.0.0.1:{}/stats/prometheus",
            self.workload(name).admin
        );
        self.http
            .get(url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Rewrites every proxy file to use `resources` and waits until the proxies run it.
    pub(crate) async fn apply(&self, resources: &[&str]) {
        let paths: Vec<PathBuf> = resources
            .iter()
            .map(|r| {
                if r.starts_with('/') {
                    PathBuf::from(r)
                } else {
                    shipped(r)
                }
            })
            .collect();
        let before: Vec<String> = self
            .sidecars
            .values()
            .map(|s| s.state.store.load().version.clone())
            .collect();
        // File modification times have a coarse resolution on some file systems.
        tokio::time::sleep(Duration::from_millis(20)).await;
        write_configs(&self.dir, &self.workloads, &paths);
        for _ in 0..200 {
            let now: Vec<String> = self
                .sidecars
                .values()
                .map(|s| s.state.store.load().version.clone())
                .collect();
            if now.iter().zip(&before).all(|(a, b)| a != b) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the proxies did not pick up the new configuration");
    }
}

/// Number of filled stars on a page.
pub(crate) fn stars(page: &str) -> usize {
    page.matches("glyphicon glyphicon-star").count()
}
