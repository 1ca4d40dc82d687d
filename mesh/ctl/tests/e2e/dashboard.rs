//! The dashboard as a room sees it: a real headless Chromium loads it from a running
//! `meshctl up` while traffic flows, and what it renders is checked: every Bookinfo
//! workload in the graph with a non-zero rate, the reviews shares moving to v3 when
//! `virtual-service-reviews-v3.yaml` is applied, and an injected fault listed with its
//! countdown going down; then a slow page (jason under that fault) listed among the
//! recent traces and drawn as a waterfall with the injected delay; then a chaos experiment
//! run by the `chaos` binary, in the strip above the graph with its phase, hypothesis and
//! fault window, and its end. The screenshots of the
//! dashboard and of the waterfall stay under the target directory (the paths are printed).
//!
//! Chromium is Debian's `chromium` (or `$CHROMIUM`). Without it the test says so and
//! passes, unless `BOOKINFO_REQUIRE_CHROMIUM` is set (the test command sets it), where
//! a missing browser fails the test.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::{Instant, sleep};

use super::support::*;

const CHAOS_TITLE: &str = "The product page survives a details outage";

/// `chaos run` of a details outage (12 s of method) against the running mesh, the way a
/// speaker runs it: the real binary, the control plane's URL, the gateway as a variable.
struct ChaosRun {
    child: tokio::process::Child,
    journal: PathBuf,
}

impl ChaosRun {
    fn start(up: &Up, control: &str) -> Self {
        let dir = up.run_dir.join("chaos");
        std::fs::create_dir_all(&dir).unwrap();
        let experiment = dir.join("details-outage.yaml");
        std::fs::write(
            &experiment,
            format!(
                r#"title: {CHAOS_TITLE}
description: details answers 503 to every call; the page must keep answering 200
steady-state-hypothesis:
  title: the page answers
  probes:
    - {{type: probe, name: page-ok, tolerance: 200, provider: {{type: http, url: "${{page}}", timeout: 5}}}}
method:
  - type: action
    name: details-down
    provider: {{type: mesh-fault, service: details, abort: 503, ttl: 60s}}
    pauses: {{after: 12}}
rollbacks:
  - {{type: action, name: details-back, provider: {{type: mesh-fault-clear}}}}
"#
            ),
        )
        .unwrap();
        let journal = dir.join("journal.json");
        let child = tokio::process::Command::new(bin_dir().join("chaos"))
            .arg("run")
            .arg(&experiment)
            .arg("--journal-path")
            .arg(&journal)
            .args(["--control", control, "--var"])
            .arg(format!("page={}", up.page_url()))
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .kill_on_drop(true)
            .spawn()
            .expect("chaos could not be started (cargo build --workspace --bins)");
        Self { child, journal }
    }

    /// Waits for the run to end; it must have held (exit code 0).
    async fn finish(mut self) {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("chaos did not finish within 60 s")
            .unwrap();
        let journal = std::fs::read_to_string(&self.journal).unwrap_or_default();
        assert!(status.success(), "chaos exited {status}: {journal}");
    }
}

/// The browser, if installed.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|p| p.is_file())
}

/// One headless Chromium run against `url`: `--dump-dom` (the DOM after the page's
/// scripts ran) or `--screenshot=FILE`, at the projector's 1280x720.
async fn chromium_run(browser: &Path, profile: &Path, url: &str, action: &str) -> String {
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,720",
                // Lets the page fetch and draw (fetches hold virtual time while in flight).
                "--virtual-time-budget=2500",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(action)
            .arg(url)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("chromium did not finish within 30 s")
    .expect("chromium could not be started");
    assert!(
        out.status.success(),
        "chromium {action} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The attributes of every `<tag ...>` of `html` whose class list holds `class`.
fn elements(html: &str, tag: &str, class: &str) -> Vec<BTreeMap<String, String>> {
    let open = format!("<{tag} ");
    let mut found = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find(&open) {
        rest = &rest[start + open.len()..];
        let Some(end) = rest.find('>') else { break };
        let attrs = attributes(&rest[..end]);
        if attrs
            .get("class")
            .is_some_and(|c| c.split_whitespace().any(|c| c == class))
        {
            found.push(attrs);
        }
        rest = &rest[end..];
    }
    found
}

/// `a="1" b="2"` as a map (values unescaped for `&amp;`, `&quot;`, `&lt;`, `&gt;`).
fn attributes(mut s: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    while let Some(eq) = s.find("=\"") {
        let name = s[..eq].trim().to_owned();
        let Some(close) = s[eq + 2..].find('"') else {
            break;
        };
        let value = s[eq + 2..eq + 2 + close]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&");
        map.insert(name, value);
        s = &s[eq + 2 + close + 1..];
    }
    map
}

fn number(attrs: &BTreeMap<String, String>, name: &str) -> f64 {
    attrs
        .get(name)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no numeric {name} in {attrs:?}"))
}

/// Requests per second of each node the page drew, by workload.
fn node_rates(dom: &str) -> BTreeMap<String, f64> {
    elements(dom, "g", "node")
        .into_iter()
        .map(|n| (n["data-workload"].clone(), number(&n, "data-rps")))
        .collect()
}

/// The drawn shares of productpage's calls to reviews, by destination workload.
fn reviews_shares(dom: &str) -> BTreeMap<String, f64> {
    elements(dom, "g", "edge")
        .into_iter()
        .filter(|e| e["data-source"] == "productpage-v1" && e["data-service"] == "reviews")
        .map(|e| (e["data-destination"].clone(), number(&e, "data-share")))
        .collect()
}

const WORKLOADS: [&str; 7] = [
    "istio-ingressgateway",
    "productpage-v1",
    "details-v1",
    "reviews-v1",
    "reviews-v2",
    "reviews-v3",
    "ratings-v1",
];

/// Signs in as `user` through the page's form; gives the session cookie.
async fn sign_in(page_url: &str, user: &str) -> String {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = page_url.replace("/productpage", "/login");
    let resp = client
        .post(&login)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("username={user}&passwd=password"))
        .send()
        .await
        .unwrap();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect::<Vec<_>>()
        .join("; ");
    assert!(!cookie.is_empty(), "{login} set no cookie: {resp:?}");
    cookie
}

/// The slow page of the fault-injection lab (jason, ratings delayed by the fault in force)
/// asked for with a sampled `traceparent`: the dashboard lists it among the recent traces,
/// and `/#trace=<id>` draws its waterfall with every Bookinfo hop and the injected delay.
async fn slow_page_trace(up: &Up, browser: &Path, profile: &Path, dashboard: &str) {
    const TRACE: &str = "5d0e51a0000000000000000000000007";
    let cookie = sign_in(&up.page_url(), "jason").await;
    let took = Instant::now();
    let page = http()
        .get(up.page_url())
        .header("cookie", cookie)
        .header("traceparent", format!("00-{TRACE}-00f067aa0ba902b7-01"))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let took = took.elapsed();
    assert!(page.contains("jason"), "signed in as jason");
    assert!(
        took >= Duration::from_secs(2),
        "the ratings delay made the page slow: {took:?}"
    );
    // Spans leave the proxies in batches once a second; wait for the deepest one.
    let url = format!("{}/api/traces/{TRACE}", up.control_url());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let trace: Value = http()
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap_or(Value::Null);
        let has_delay = trace["spans"].as_array().is_some_and(|spans| {
            spans.iter().any(|s| {
                s["events"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|e| e["name"] == "fault.delay"))
            })
        });
        if has_delay && trace["services"].as_array().is_some_and(|s| s.len() >= 4) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the slow page's trace never had its delayed call: {trace:#}"
        );
        sleep(Duration::from_millis(300)).await;
    }
    let dom = chromium_run(browser, profile, dashboard, "--dump-dom").await;
    assert!(
        dom.contains(&format!("data-trace-id=\"{TRACE}\"")),
        "the trace is listed among the recent ones"
    );
    let linked = format!("{dashboard}#trace={TRACE}");
    let dom = chromium_run(browser, profile, &linked, "--dump-dom").await;
    let rows = elements(&dom, "div", "span-row");
    let services: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["data-service"].as_str()).collect();
    for want in [
        "istio-ingressgateway.istio-system",
        "productpage.default",
        "details.default",
        "reviews.default",
    ] {
        assert!(
            services.contains(want),
            "{want} missing from the waterfall: {services:?}"
        );
    }
    assert!(
        rows.iter()
            .any(|r| r["data-events"].contains("fault.delay")),
        "the injected delay shows on its span: {rows:?}"
    );
    assert!(dom.contains("delay injected 7.0 s"), "the delay in words");
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard-trace.png");
    let _ = std::fs::remove_file(&shot);
    chromium_run(
        browser,
        profile,
        &linked,
        &format!("--screenshot={}", shot.display()),
    )
    .await;
    assert!(std::fs::read(&shot).unwrap().starts_with(b"\x89PNG"));
    eprintln!("trace waterfall screenshot: {}", shot.display());
}

#[tokio::test]
async fn chromium_shows_the_live_graph_traffic_shifting_and_a_fault_counting_down() {
    let Some(browser) = chromium() else {
        assert!(
            std::env::var_os("BOOKINFO_REQUIRE_CHROMIUM").is_none(),
            "BOOKINFO_REQUIRE_CHROMIUM is set but no chromium is installed (apt-get install chromium)"
        );
        eprintln!("skipped: chromium is not installed (apt-get install chromium, or set CHROMIUM)");
        return;
    };
    let begun = Instant::now();
    let mut up = Up::start("dashboard", 29200, 29280, 29290, &[]);
    up.ready().await;
    let control = up.control_url();
    let dashboard = format!("{control}/");
    let profile = up.run_dir.join("chromium-profile");
    page_with(&up.page_url(), "Reviews served by", Duration::from_secs(10)).await;

    // Traffic for the whole test: about 10 pages a second.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (url, stop) = (up.page_url(), Arc::clone(&stop));
        tokio::spawn(async move {
            let http = http();
            while !stop.load(Ordering::Relaxed) {
                let _ = http
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status());
                sleep(Duration::from_millis(100)).await;
            }
        })
    };

    // Every workload drawn with traffic through it (the control plane starts reading the
    // proxies' metrics when the graph is first asked for; rates need two scrapes).
    let deadline = Instant::now() + Duration::from_secs(20);
    let rates = loop {
        let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
        let rates = node_rates(&dom);
        if WORKLOADS
            .iter()
            .all(|w| rates.get(*w).is_some_and(|r| *r > 0.0))
        {
            break rates;
        }
        assert!(
            Instant::now() < deadline,
            "the graph never showed every workload with traffic: {rates:?}\n{dom}"
        );
        sleep(Duration::from_millis(500)).await;
    };
    eprintln!("rates drawn: {rates:?}");
    let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
    let shares = reviews_shares(&dom);
    assert!(
        shares.len() == 3 && shares.values().all(|s| *s > 0.05),
        "round robin over three versions: {shares:?}"
    );
    let gateway_edges: Vec<_> = elements(&dom, "g", "edge")
        .into_iter()
        .filter(|e| e["data-source"] == "istio-ingressgateway")
        .collect();
    assert!(
        gateway_edges
            .iter()
            .any(|e| e["data-destination"] == "productpage-v1" && number(e, "data-rps") > 0.0),
        "{gateway_edges:?}"
    );

    // Traffic shifting: everything to v3, visible within seconds.
    let yaml = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/virtual-service-reviews-v3.yaml"),
    )
    .unwrap();
    let applied = http()
        .post(format!(
            "{control}/api/v1/apply?file=virtual-service-reviews-v3.yaml"
        ))
        .body(yaml)
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
        let shares = reviews_shares(&dom);
        let v3 = shares.get("reviews-v3").copied().unwrap_or(0.0);
        let others = shares
            .iter()
            .filter(|(w, _)| *w != "reviews-v3")
            .map(|(_, s)| *s)
            .fold(0.0, f64::max);
        if v3 >= 0.99 && others == 0.0 {
            eprintln!("shares after the shift: {shares:?}");
            assert!(
                dom.contains("reviews v3 100%"),
                "the rule is listed among the routing rules"
            );
            assert!(dom.contains("applied virtual-service-reviews-v3.yaml"));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reviews shares never moved to v3: {shares:?}"
        );
        sleep(Duration::from_millis(500)).await;
    }

    // A fault lease appears with its TTL counting down.
    let created: Value = post_json(
        format!("{control}/api/v1/faults"),
        &serde_json::json!({"service": "ratings", "delay": {"fixed_delay": "7s"},
                                  "headers": {"end-user": "jason"}, "ttl_seconds": 120}),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    let remaining = |dom: &str| {
        let faults = elements(dom, "li", "fault");
        let fault = faults
            .iter()
            .find(|f| f["data-id"] == id)
            .unwrap_or_else(|| panic!("fault {id} not listed: {faults:?}"));
        number(fault, "data-remaining-s")
    };
    let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
    let first = remaining(&dom);
    assert!((1.0..=120.0).contains(&first), "{first}");
    assert!(dom.contains("ratings: delay 7s"), "the fault in words");
    sleep(Duration::from_millis(2500)).await;
    let screenshot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    slow_page_trace(&up, &browser, &profile, &dashboard).await;
    let _ = std::fs::remove_file(&screenshot);
    let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
    let later = remaining(&dom);
    assert!(
        later < first,
        "the countdown went from {first} s to {later} s"
    );

    // A chaos experiment, run by the real runner, shows in the strip while it runs.
    let mut chaos = ChaosRun::start(&up, &control);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Some(status)) = chaos.child.try_wait() {
            panic!("chaos ended early ({status}) before the strip showed its method");
        }
        let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
        let strip = elements(&dom, "div", "experiment");
        let shown = strip.first().filter(|s| !s.contains_key("hidden"));
        if let Some(s) = shown
            && s["data-phase"] == "method"
            && s["data-faults"] == "1"
        {
            assert_eq!(s["data-status"], "running");
            assert_eq!(s["data-hypothesis"], "met", "{s:?}");
            assert!(dom.contains(CHAOS_TITLE), "the title in the strip");
            assert!(
                dom.contains("abort 503 100% on details"),
                "the fault window in words"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the experiment never showed in its method with its fault: {strip:?}"
        );
        sleep(Duration::from_millis(500)).await;
    }
    chromium_run(
        &browser,
        &profile,
        &dashboard,
        &format!("--screenshot={}", screenshot.display()),
    )
    .await;
    let png = std::fs::read(&screenshot).unwrap();
    assert!(png.starts_with(b"\x89PNG"), "not a PNG");
    assert!(
        png.len() > 20_000,
        "a nearly empty screenshot ({} bytes)",
        png.len()
    );
    println!("dashboard screenshot: {}", screenshot.display());
    eprintln!("dashboard screenshot: {}", screenshot.display());

    // The run ends, held, and the strip says so.
    chaos.finish().await;
    let dom = chromium_run(&browser, &profile, &dashboard, "--dump-dom").await;
    let strip = elements(&dom, "div", "experiment");
    let s = strip.first().expect("the strip");
    assert_eq!(
        (
            s["data-phase"].as_str(),
            s["data-status"].as_str(),
            s["data-deviated"].as_str()
        ),
        ("done", "completed", "false"),
        "{s:?}"
    );

    stop.store(true, Ordering::Relaxed);
    let _ = traffic.await;
    eprintln!("took {:?}", begun.elapsed());
    up.stop().await;
}
