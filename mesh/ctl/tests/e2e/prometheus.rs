//! The shipped dashboards against a live mesh: a real Prometheus (Debian's `prometheus`)
//! scrapes a running `meshctl up` under traffic with the shipped local scrape config
//! (only its addresses and intervals changed), and every query of every panel of every
//! dashboard, with its variables set to real Bookinfo values, returns at least one series.
//! Each query variable's `label_values` must also offer the value the test picked.
//!
//! Without a `prometheus` binary the test says so and passes, unless
//! `BOOKINFO_REQUIRE_PROMETHEUS=1` (which `scripts/test.sh` sets after installing it).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

use super::dashboards::{self, PanelQuery, label_values, substitute, variables};
use super::support::*;

/// What the variables of the dashboards are set to: one service, its callers and
/// workloads, as Bookinfo's traffic produces them.
const VALUES: [(&str, &str); 10] = [
    ("datasource", "prometheus"),
    ("service", "reviews.default.svc.cluster.local"),
    ("qrep", "destination"),
    ("srcns", "default"),
    ("srcwl", "productpage-v1"),
    ("dstns", "default"),
    ("dstwl", "reviews-v2"),
    ("namespace", "default"),
    ("workload", "reviews-v2"),
    ("dstsvc", "ratings.default.svc.cluster.local"),
];

/// How long the queries may take to all have data once every target is up.
const DATA_WITHIN: Duration = Duration::from_secs(40);

/// The `prometheus` binary: `$PROMETHEUS`, else the first on `PATH`.
fn prometheus_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PROMETHEUS") {
        return Some(PathBuf::from(p));
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join("prometheus"))
        .find(|p| p.is_file())
}

/// A Prometheus process, killed on drop.
struct Prometheus {
    child: Child,
    base: String,
    log: PathBuf,
}

impl Prometheus {
    fn start(bin: &Path, dir: &Path, control: &str) -> Self {
        let shipped =
            std::fs::read_to_string(dashboards::component_dir().join("prometheus/local.yml"))
                .unwrap();
        // Only addresses and intervals change; each must be in the shipped file.
        let mut config = shipped.clone();
        for (from, to) in [
            ("127.0.0.1:15010", control),
            ("scrape_interval: 5s", "scrape_interval: 1s"),
            ("evaluation_interval: 5s", "evaluation_interval: 1s"),
            ("refresh_interval: 5s", "refresh_interval: 1s"),
        ] {
            assert!(
                config.contains(from),
                "prometheus/local.yml no longer says {from:?}"
            );
            config = config.replace(from, to);
        }
        let config_path = dir.join("prometheus.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = dir.join("prometheus.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        }
    }

    /// Waits for `/-/ready`; fails with Prometheus's log if it exits or takes over 20 s.
    async fn ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = format!("{}/-/ready", self.base);
        loop {
            if let Ok(r) = http().get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            let exited = self.child.try_wait().ok().flatten();
            assert!(
                exited.is_none(),
                "prometheus exited ({exited:?}):\n{}",
                self.log()
            );
            assert!(
                Instant::now() < deadline,
                "prometheus not ready within 20 s:\n{}",
                self.log()
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Value {
        let url = reqwest::Url::parse_with_params(&format!("{}{path}", self.base), query).unwrap();
        let r = http()
            .get(url)
            .send()
            .await
            .unwrap_or_else(|e| panic!("prometheus {path}: {e}\n{}", self.log()));
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(
            status.is_success(),
            "prometheus {path} {query:?}: {status} {body}"
        );
        body
    }

    /// The result of an instant query.
    async fn query(&self, expr: &str) -> Vec<Value> {
        let body = self.get("/api/v1/query", &[("query", expr)]).await;
        body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Product pages through the gateway (and a few 404s) until `until`.
async fn traffic(page: String, until: Instant) -> usize {
    let http = http();
    let missing = page.replace("/productpage", "/no-such-page");
    let mut sent = 0;
    while Instant::now() < until {
        let url = if sent % 10 == 9 { &missing } else { &page };
        if let Ok(r) = http.get(url).send().await {
            let _ = r.bytes().await;
        }
        sent += 1;
        sleep(Duration::from_millis(40)).await;
    }
    sent
}

/// One HTTP/1.1 GET inside a `CONNECT` tunnel opened through a sidecar's outbound
/// listener: the TCP traffic the dashboards' TCP panels count.
async fn tunnel_get(outbound: u16, authority: &str, path: &str) -> String {
    let work = async {
        let mut s = TcpStream::connect(("127.0.0.1", outbound)).await.unwrap();
        s.write_all(
            format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            assert_eq!(
                s.read(&mut byte).await.unwrap(),
                1,
                "tunnel closed: {head:?}"
            );
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        assert!(
            head.starts_with("HTTP/1.1 200"),
            "CONNECT {authority}: {head}"
        );
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut body = Vec::new();
        s.read_to_end(&mut body).await.unwrap();
        String::from_utf8_lossy(&body).into_owned()
    };
    timeout(Duration::from_secs(10), work)
        .await
        .unwrap_or_else(|_| panic!("tunnel to {authority}{path} took over 10 s"))
}

/// TCP streams between the workloads the dashboards' variables name: productpage → reviews
/// (until one lands on reviews-v2) and reviews-v2 → ratings.
async fn tcp_traffic(up: &Up) {
    let productpage = up.port("productpage-v1-proxy", "outbound");
    let mut landed = false;
    for _ in 0..40 {
        let reply = tunnel_get(productpage, "reviews:9080", "/reviews/0").await;
        assert!(
            reply.starts_with("HTTP/1.1 200"),
            "reviews through a tunnel: {reply}"
        );
        if reply.contains("reviews-v2") {
            landed = true;
            break;
        }
    }
    assert!(landed, "40 tunnels to reviews and none reached reviews-v2");
    let reviews_v2 = up.port("reviews-v2-proxy", "outbound");
    let reply = tunnel_get(reviews_v2, "ratings:9080", "/ratings/0").await;
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "ratings through a tunnel: {reply}"
    );
}

/// Waits until Prometheus scrapes every target the control plane lists, plus the control
/// plane itself, and all are up.
async fn targets_up(prom: &Prometheus, control: &str) -> usize {
    let listed: Vec<Value> = get_json(format!("{control}/api/v1/prometheus/targets")).await;
    // The gateway and six sidecars.
    assert_eq!(listed.len(), 7, "service discovery lists {listed:?}");
    let want = listed.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let body = prom.get("/api/v1/targets", &[("state", "active")]).await;
        let active = body["data"]["activeTargets"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let up = active.iter().filter(|t| t["health"] == "up").count();
        if active.len() == want && up == want {
            return want;
        }
        assert!(
            Instant::now() < deadline,
            "targets not all up within 30 s ({up} of {} up, {want} wanted): {active:#?}\n{}",
            active.len(),
            prom.log()
        );
        sleep(Duration::from_millis(250)).await;
    }
}

/// Why a query without data may have none today: destination-reported series without
/// real `source_*` labels (peer metadata) when it filters on a client.
fn needs_peer_metadata(expr: &str) -> bool {
    let destination =
        expr.contains("reporter=\"destination\"") || expr.contains("reporter=~\"destination\"");
    destination && expr.contains("source_workload=~\"productpage-v1\"")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_dashboard_panel_returns_data_from_a_live_mesh() {
    let Some(bin) = prometheus_binary() else {
        let msg = "no `prometheus` binary on PATH (apt-get install prometheus, or set PROMETHEUS)";
        if std::env::var("BOOKINFO_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
            panic!("BOOKINFO_REQUIRE_PROMETHEUS=1 but {msg}");
        }
        eprintln!("SKIPPED every_dashboard_panel_returns_data_from_a_live_mesh: {msg}");
        return;
    };
    let began = Instant::now();
    let mut up = Up::start("prometheus", 29400, 29480, 29490, &[]);
    up.ready().await;
    page_with(&up.page_url(), "reviews-v2-", Duration::from_secs(20)).await;
    let control = up.control_url();
    let control_addr = control.trim_start_matches("http://").to_owned();
    let load = tokio::spawn(traffic(
        up.page_url(),
        Instant::now() + Duration::from_secs(75),
    ));
    tcp_traffic(&up).await;

    let mut prom = Prometheus::start(&bin, &up.run_dir, &control_addr);
    prom.ready().await;
    let scraped = targets_up(&prom, &control).await;
    eprintln!(
        "prometheus scrapes {scraped} targets, {:?} after start",
        began.elapsed()
    );

    let values: BTreeMap<&str, &str> = VALUES.into_iter().collect();
    let mut checks: Vec<PanelQuery> = Vec::new();
    // (dashboard file, variable, label_values selector, label, the value the test uses)
    let mut choices: Vec<(String, String, String, String, String)> = Vec::new();
    for (file, d) in dashboards::dashboards() {
        for q in dashboards::queries(&file, &d) {
            let expr = substitute(&q.expr, &values)
                .unwrap_or_else(|e| panic!("{}: {}: {e}", q.dashboard, q.panel));
            checks.push(PanelQuery { expr, ..q });
        }
        for (name, v) in variables(&d) {
            if let Some((selector, label)) = label_values(&v) {
                let selector = substitute(&selector, &values).unwrap();
                let want = values
                    .get(name.as_str())
                    .unwrap_or_else(|| panic!("{file}: no test value for ${name}"));
                choices.push((file.clone(), name, selector, label, (*want).to_owned()));
            }
        }
    }

    // Rate windows fill as samples arrive: retry the ones without data until the deadline.
    let deadline = Instant::now() + DATA_WITHIN;
    let mut failing: Vec<&PanelQuery> = checks.iter().collect();
    let mut missing_choices = choices.clone();
    loop {
        let mut still = Vec::new();
        for q in failing {
            if prom.query(&q.expr).await.is_empty() {
                still.push(q);
            }
        }
        failing = still;
        let mut still = Vec::new();
        for c in missing_choices {
            let body = prom
                .get(
                    &format!("/api/v1/label/{}/values", c.3),
                    &[("match[]", &c.2)],
                )
                .await;
            let offered = body["data"].as_array().cloned().unwrap_or_default();
            if !offered.contains(&Value::from(c.4.as_str())) {
                still.push(c);
            }
        }
        missing_choices = still;
        if (failing.is_empty() && missing_choices.is_empty()) || Instant::now() >= deadline {
            break;
        }
        sleep(Duration::from_secs(1)).await;
    }
    load.abort();

    if !failing.is_empty() || !missing_choices.is_empty() {
        let labelled = prom
            .query(r#"count(istio_requests_total{reporter="destination", source_workload!="unknown"})"#)
            .await;
        let peer_note = if labelled.is_empty() {
            "destination-reported metrics carry no source_* labels yet (every source_workload is \
             \"unknown\" on reporter=\"destination\"): the panels marked [peer metadata] need the \
             proxies' peer metadata"
        } else {
            "destination-reported metrics do carry source_* labels"
        };
        let mut report = format!(
            "{} of {} panel queries returned no series within {DATA_WITHIN:?}; {peer_note}\n",
            failing.len(),
            checks.len()
        );
        for q in &failing {
            let mark = if needs_peer_metadata(&q.expr) {
                " [peer metadata]"
            } else {
                ""
            };
            report.push_str(&format!(
                "  {} / {} ({}){mark}:\n    {}\n",
                q.dashboard, q.panel, q.ref_id, q.expr
            ));
        }
        for (file, name, selector, label, want) in &missing_choices {
            let mark = if needs_peer_metadata(selector) {
                " [peer metadata]"
            } else {
                ""
            };
            report.push_str(&format!(
                "  {file}: variable ${name} does not offer {want:?}{mark}: label_values({selector}, {label})\n"
            ));
        }
        panic!("{report}");
    }
    eprintln!(
        "all {} panel queries and {} variables have data, {:?} after start",
        checks.len(),
        choices.len(),
        began.elapsed()
    );
    drop(prom);
    up.stop().await;
}
