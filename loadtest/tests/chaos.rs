//! End-to-end runs of the chaos runner against the real control plane (`mesh-control`'s
//! API in-process on 127.0.0.1:0) and a fake app. The fake app obeys the control plane's
//! fault leases on `ratings`, so an injected abort or delay really changes what the probes
//! and the load generator see. A tap in front of the API records what the runner asked
//! for, so tests can check the calls as well as their effect.
//!
//! Real time throughout (the load engine paces with the real clock); the longest runs last
//! a few seconds and their thresholds leave wide margins.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bookinfo_loadtest::chaos::experiment::Experiment;
use bookinfo_loadtest::chaos::runner::{self, exit_code};
use bookinfo_loadtest::chaos::{Cancel, Options, report};
use mesh_api::duration::parse_duration;
use mesh_api::wire::LeaseView;
use mesh_control::{Control, Settings};
use serde_json::{Value, json};

/// The control plane, and what the runner asked of it.
struct Plane {
    control: Arc<Control>,
    /// Fault lease requests, as sent.
    posted: Mutex<Vec<Value>>,
    /// Ids of the leases asked to end (`*` for the halt).
    deleted: Mutex<Vec<String>>,
    /// Files applied: name and text.
    applied: Mutex<Vec<(String, String)>>,
    /// Progress reports of the run, as sent.
    reports: Mutex<Vec<Value>>,
}

impl Plane {
    /// The leases in force on `service`.
    fn active(&self, service: &str) -> Vec<LeaseView> {
        self.control
            .faults()
            .into_iter()
            .filter(|f| f.service == service)
            .collect()
    }
}

type Shared = Arc<Plane>;

/// Records the fault and apply calls, then hands the request to the real API.
async fn tap(State(p): State<Shared>, req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let path = parts.uri.path();
    match (&parts.method, path) {
        (&Method::POST, "/api/v1/faults") => p
            .posted
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&bytes).unwrap()),
        (&Method::DELETE, "/api/v1/faults") => p.deleted.lock().unwrap().push("*".into()),
        (&Method::DELETE, _) if path.starts_with("/api/v1/faults/") => p
            .deleted
            .lock()
            .unwrap()
            .push(path.trim_start_matches("/api/v1/faults/").to_owned()),
        (&Method::POST, "/api/v1/experiments") => p
            .reports
            .lock()
            .unwrap()
            .push(serde_json::from_slice(&bytes).unwrap()),
        (&Method::POST, "/api/v1/apply") => {
            let file = parts
                .uri
                .query()
                .and_then(|q| q.strip_prefix("file="))
                .unwrap_or_default()
                .to_owned();
            p.applied
                .lock()
                .unwrap()
                .push((file, String::from_utf8_lossy(&bytes).into_owned()));
        }
        _ => {}
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// The app: `/productpage` obeys the plane's faults on `ratings` (abort status, delay).
async fn productpage(State(p): State<Shared>) -> Response {
    for f in p.active("ratings") {
        if let Some(d) = &f.delay {
            tokio::time::sleep(parse_duration(&d.fixed_delay).unwrap()).await;
        }
        if let Some(abort) = &f.abort {
            return (
                StatusCode::from_u16(abort.http_status).unwrap(),
                "fault filter abort",
            )
                .into_response();
        }
    }
    "<html><p>Reviewer1</p></html>".into_response()
}

struct World {
    plane: Shared,
    control: String,
    app: String,
}

async fn world() -> World {
    let control = Control::new(Settings::default()).unwrap();
    control.start_background();
    let plane: Shared = Arc::new(Plane {
        control: control.clone(),
        posted: Mutex::default(),
        deleted: Mutex::default(),
        applied: Mutex::default(),
        reports: Mutex::default(),
    });
    let api = mesh_control::api::router(control)
        .layer(middleware::from_fn_with_state(Arc::clone(&plane), tap));
    let app = Router::new()
        .route("/productpage", get(productpage))
        .route("/health", get(|| async { "ok" }))
        .with_state(Arc::clone(&plane));
    let serve = |router: Router| async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{addr}")
    };
    World {
        control: serve(api).await,
        app: serve(app).await,
        plane,
    }
}

fn client() -> reqwest::Client {
    bookinfo_common::client::install_crypto_provider();
    reqwest::Client::builder().no_proxy().build().unwrap()
}

fn experiment(yaml: &str, w: &World) -> Experiment {
    let mut vars = BTreeMap::new();
    vars.insert("app".to_string(), json!(w.app));
    Experiment::from_text(yaml, &vars, &|_| None).unwrap()
}

fn options(w: &World) -> Options {
    Options {
        control: w.control.clone(),
        seed: 42,
        recovery_timeout: Duration::from_secs(10),
        ..Options::default()
    }
}

fn temp_dir(name: &str) -> PathBuf {
    // Under the target folder, not /tmp: a run's journal and report stay there to look at.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chaos-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Abort `ratings` (which the fake page depends on) or `details` (which it ignores).
fn abort_experiment(service: &str) -> String {
    format!(
        r#"
title: Ratings outage
description: the page must keep answering 200
configuration:
  app: "http://127.0.0.1:1"
runtime:
  hypothesis: {{frequency: 0.1}}
steady-state-hypothesis:
  title: the product page answers
  probes:
    - type: probe
      name: page-ok
      tolerance: 200
      provider: {{type: http, url: "${{app}}/productpage", timeout: 5}}
    - type: probe
      name: page-shows-reviews
      tolerance: {{type: regex, pattern: "Reviewer\\d", target: body}}
      provider: {{type: http, url: "${{app}}/productpage", timeout: 5}}
method:
  - type: action
    name: abort-{service}
    provider: {{type: mesh-fault, service: {service}, abort: 503, percentage: 100}}
    pauses: {{after: 0.3}}
  - type: action
    name: route-reviews
    provider: {{type: mesh-apply, file: vs.yaml}}
rollbacks:
  - type: action
    name: clear-faults
    provider: {{type: mesh-fault-clear}}
"#
    )
}

fn write_experiment(dir: &Path, text: &str) -> PathBuf {
    std::fs::write(
        dir.join("vs.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}\n",
    )
    .unwrap();
    let path = dir.join("experiment.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test]
async fn a_hypothesis_that_holds_completes_with_exit_code_zero() {
    let w = world().await;
    let dir = temp_dir("held");
    write_experiment(&dir, "");
    let e = experiment(&abort_experiment("details"), &w);
    let opts = Options {
        base_dir: dir,
        ..options(&w)
    };
    let journal = runner::run(&e, &opts, Cancel::new(), client()).await;
    assert_eq!(journal["status"], "completed", "{journal:#}");
    assert_eq!(journal["deviated"], false);
    assert_eq!(exit_code(&journal), 0);
    // Chaos Toolkit's journal keys, with the measured value next to the expected one.
    for key in [
        "chaoslib-version",
        "platform",
        "node",
        "experiment",
        "start",
        "end",
        "duration",
        "steady_states",
        "run",
        "rollbacks",
        "dry",
    ] {
        assert!(journal.get(key).is_some(), "journal lacks {key}");
    }
    let probe = &journal["steady_states"]["before"]["probes"][0];
    assert_eq!(probe["expected"], "status == 200");
    assert_eq!(probe["measured"], 200);
    // The mesh file went to the control plane under its own name.
    let applied = w.plane.applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].0, "vs.yaml");
    assert!(applied[0].1.contains("VirtualService"));
    assert_eq!(journal["recovery"]["recovered"], true);
}

#[tokio::test]
async fn a_disproved_hypothesis_deviates_and_still_rolls_back() {
    let w = world().await;
    let dir = temp_dir("deviated");
    write_experiment(&dir, "");
    let e = experiment(&abort_experiment("ratings"), &w);
    let opts = Options {
        base_dir: dir,
        ..options(&w)
    };
    let journal = runner::run(&e, &opts, Cancel::new(), client()).await;
    assert_eq!(journal["status"], "completed");
    assert_eq!(journal["deviated"], true);
    assert_eq!(exit_code(&journal), 1);
    let after = &journal["steady_states"]["after"]["probes"][0];
    assert_eq!(after["tolerance_met"], false);
    assert_eq!(after["measured"], 503);
    // The rollback removed the lease, and the steady state came back.
    assert_eq!(*w.plane.deleted.lock().unwrap(), vec!["f-1".to_string()]);
    assert_eq!(journal["rollbacks"][0]["status"], "succeeded");
    assert_eq!(journal["recovery"]["recovered"], true);
    assert!(journal["recovery"]["time_to_recover_s"].as_f64().unwrap() >= 0.0);
    assert_eq!(journal["faults"][0]["removed"], true);
    let text = report::findings(&journal).join("\n");
    assert!(
        text.contains("expected status == 200 but measured 503"),
        "{text}"
    );
    // The dashboard followed the run: every phase in order, the deviation, the fault
    // window, and the end, which the control plane keeps.
    let reports = w.plane.reports.lock().unwrap().clone();
    let mut phases: Vec<&str> = reports.iter().filter_map(|r| r["phase"].as_str()).collect();
    phases.dedup();
    assert_eq!(
        phases,
        ["before", "method", "after", "rollbacks", "recovery", "done"],
        "{reports:#?}"
    );
    assert!(reports.iter().all(|r| r["title"] == "Ratings outage"));
    assert!(reports.iter().any(|r| r["hypothesis"] == "deviated"));
    let last = reports.last().unwrap();
    assert_eq!(
        (&last["status"], &last["hypothesis"], &last["deviated"]),
        (&json!("completed"), &json!("met"), &json!(true))
    );
    assert_eq!(last["faults"][0]["id"], "f-1");
    assert_eq!(last["faults"][0]["removed"], true);
    assert!(
        last["faults"][0]["description"]
            .as_str()
            .unwrap()
            .contains("abort 503")
    );
    let kept = w.plane.control.experiments().list(u64::MAX);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].report.status, "completed");
    assert!(kept[0].report.deviated);
}

#[tokio::test]
async fn every_fault_is_a_lease_bounded_by_the_experiment() {
    let w = world().await;
    let dir = temp_dir("ttl");
    write_experiment(&dir, "");
    let e = experiment(&abort_experiment("ratings"), &w);
    let opts = Options {
        base_dir: dir,
        ..options(&w)
    };
    runner::run(&e, &opts, Cancel::new(), client()).await;
    let posted = w.plane.posted.lock().unwrap().clone();
    assert_eq!(posted.len(), 1);
    let ttl = posted[0]["ttl_seconds"]
        .as_u64()
        .expect("ttl_seconds is always sent");
    let bound = (e.expected_duration() + runner::LEASE_MARGIN)
        .as_secs_f64()
        .ceil() as u64;
    assert!(ttl >= 1 && ttl <= bound, "ttl {ttl} above {bound}");
    assert_eq!(
        posted[0]["abort"],
        json!({"http_status": 503, "percentage": 100.0})
    );
}

fn pausing_experiment() -> &'static str {
    r#"
title: Long fault
description: a fault, then a long pause to interrupt
configuration: {app: "http://127.0.0.1:1"}
steady-state-hypothesis:
  title: page
  probes:
    - {type: probe, name: health, tolerance: 200, provider: {type: http, url: "${app}/health"}}
method:
  - type: action
    name: abort-ratings
    provider: {type: mesh-fault, service: ratings, abort: 500, ttl: 120}
    pauses: {after: 60}
rollbacks:
  - {type: action, name: clear, provider: {type: mesh-fault-clear}}
"#
}

#[tokio::test]
async fn an_interrupt_stops_the_method_and_rollbacks_still_run() {
    let w = world().await;
    let e = experiment(pausing_experiment(), &w);
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    let plane = Arc::clone(&w.plane);
    tokio::spawn(async move {
        while plane.posted.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.cancel();
    });
    let started = Instant::now();
    let journal = runner::run(&e, &options(&w), cancel, client()).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the pause was not cut short"
    );
    assert_eq!(journal["status"], "interrupted");
    assert_eq!(exit_code(&journal), 130);
    assert_eq!(*w.plane.deleted.lock().unwrap(), vec!["f-1".to_string()]);
}

#[tokio::test]
async fn chaos_toolkit_default_strategy_skips_rollbacks_after_an_interrupt() {
    let w = world().await;
    let e = experiment(pausing_experiment(), &w);
    let cancel = Cancel::new();
    let trigger = cancel.clone();
    let plane = Arc::clone(&w.plane);
    tokio::spawn(async move {
        while plane.posted.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        trigger.cancel();
    });
    let opts = Options {
        rollback_strategy: Some("default".into()),
        ..options(&w)
    };
    let journal = runner::run(&e, &opts, cancel, client()).await;
    assert_eq!(journal["status"], "interrupted");
    assert!(w.plane.deleted.lock().unwrap().is_empty());
    // The lease still ends by itself: it was created with its TTL.
    assert_eq!(w.plane.posted.lock().unwrap()[0]["ttl_seconds"], 120);
}

#[tokio::test]
async fn a_dry_run_touches_nothing() {
    let w = world().await;
    let e = experiment(pausing_experiment(), &w);
    let opts = Options {
        dry: true,
        ..options(&w)
    };
    let started = Instant::now();
    let journal = runner::run(&e, &opts, Cancel::new(), client()).await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(journal["dry"], true);
    assert_eq!(exit_code(&journal), 0);
    assert!(w.plane.posted.lock().unwrap().is_empty());
    assert!(w.plane.deleted.lock().unwrap().is_empty());
    // A rehearsal does not show on the dashboard either.
    assert!(w.plane.reports.lock().unwrap().is_empty());
}

#[tokio::test]
async fn failing_actions_fail_the_run_and_rollbacks_follow() {
    let w = world().await;
    let dir = temp_dir("failing");
    std::fs::write(
        dir.join("bad.yaml"),
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: bad}\nspec: {hosts: [reviews], http: [{route: []}]}\n",
    )
    .unwrap();
    let yaml = r#"
title: Bad config
description: the control plane refuses the file
configuration: {app: "http://127.0.0.1:1"}
method:
  - {type: action, name: apply-bad, provider: {type: mesh-apply, file: bad.yaml}}
  - {type: action, name: never-reached, provider: {type: mesh-fault, service: ratings, abort: 500}}
rollbacks:
  - {type: action, name: halt, provider: {type: mesh-fault-clear, all: true}}
"#;
    let e = experiment(yaml, &w);
    let opts = Options {
        base_dir: dir,
        ..options(&w)
    };
    let journal = runner::run(&e, &opts, Cancel::new(), client()).await;
    assert_eq!(journal["status"], "failed");
    assert_eq!(exit_code(&journal), 1);
    let exception = journal["run"][0]["exception"][0].as_str().unwrap();
    assert!(
        exception.contains("bad.yaml: document 1: VirtualService default/bad: spec.http[0]"),
        "{exception}"
    );
    assert_eq!(journal["run"].as_array().unwrap().len(), 1);
    assert!(w.plane.posted.lock().unwrap().is_empty());
    assert_eq!(*w.plane.deleted.lock().unwrap(), vec!["*".to_string()]);
}

fn load_experiment(fault: bool) -> String {
    let method = if fault {
        "  - type: action\n    name: delay-ratings\n    provider: {type: mesh-fault, service: ratings, delay: 1500ms}\n    pauses: {after: 2.5}\n"
    } else {
        "  - type: probe\n    name: look\n    provider: {type: load-window}\n    pauses: {after: 1.5}\n"
    };
    format!(
        r#"
title: Load SLO
description: the page stays fast under load
configuration: {{app: "http://127.0.0.1:1"}}
runtime: {{hypothesis: {{strategy: continuously, frequency: 0.5}}}}
steady-state-hypothesis:
  title: fast and correct
  probes:
    - type: probe
      name: slo
      provider: {{type: load-window}}
      tolerance: {{type: slo, p99_ms: {{lt: 500}}, availability: 99}}
    - type: probe
      name: p99
      provider: {{type: load-window}}
      tolerance: "p99_ms < 500"
method:
  - type: action
    name: load
    background: true
    provider: {{type: load, target: "${{app}}/productpage", rate: 40, duration: 20s, connections: 16, window: 1s, serve: "127.0.0.1:0"}}
    pauses: {{after: 1.2}}
{method}rollbacks:
  - {{type: action, name: clear, provider: {{type: mesh-fault-clear}}}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_slo_holds_without_a_fault() {
    let w = world().await;
    let e = experiment(&load_experiment(false), &w);
    let journal = runner::run(&e, &options(&w), Cancel::new(), client()).await;
    assert_eq!(exit_code(&journal), 0, "{:#}", journal["steady_states"]);
    let measured = &journal["steady_states"]["after"]["probes"][1]["measured"];
    assert!(measured["p99_ms"].as_f64().unwrap() < 500.0);
    let served = journal["run"][0]["output"]["window"].as_str().unwrap();
    assert!(
        served.parse::<SocketAddr>().is_ok(),
        "window served on {served}"
    );
    let series = journal["load"][0]["series"].as_array().unwrap();
    assert!(series.len() >= 2, "per-second series recorded");
    let budget = &journal["slo_budgets"][0];
    assert_eq!(budget["availability"], 99.0);
    assert!(
        budget["phases"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["bad"] == 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_slo_is_disproved_by_a_delay_and_the_report_shows_it() {
    let w = world().await;
    let e = experiment(&load_experiment(true), &w);
    let journal = runner::run(&e, &options(&w), Cancel::new(), client()).await;
    assert_eq!(journal["deviated"], true);
    assert_eq!(exit_code(&journal), 1);
    let after = &journal["steady_states"]["after"]["probes"][1];
    assert_eq!(after["expected"], "p99_ms < 500");
    assert!(
        after["measured"]["p99_ms"].as_f64().unwrap() >= 600.0,
        "{after:#}"
    );
    let during = journal["steady_states"]["during"].as_array().unwrap();
    assert!(during.iter().any(|d| d["steady_state_met"] == false));
    assert_eq!(
        journal["recovery"]["recovered"], true,
        "{:#}",
        journal["recovery"]
    );

    let html = report::html(&journal);
    assert!(html.contains("<svg"), "inline SVG plots");
    assert!(
        html.contains("class=\"fault-window\""),
        "shaded fault window"
    );
    assert!(html.contains("polyline"), "latency series drawn");
    assert!(html.contains("delay 1500ms 100% on ratings"));
    assert!(html.contains("DEVIATED"));
    assert!(!html.contains("<script"));
    let md = report::markdown(&journal);
    assert!(md.contains("## Fault windows") && md.contains("f-1"));
}

// ---- the binary ----

fn chaos() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_chaos"));
    c.env_remove("MESH_CONTROL_URL").env_remove("CHAOS_MESHCTL");
    c
}

#[tokio::test]
async fn the_cli_exits_zero_when_held_and_one_when_disproved_and_writes_the_report() {
    let w = world().await;
    for (service, code) in [("details", 0), ("ratings", 1)] {
        let dir = temp_dir(&format!("cli-{service}"));
        let path = write_experiment(&dir, &abort_experiment(service));
        let journal = dir.join("journal.json");
        let html = dir.join("report.html");
        let out = tokio::process::Command::from(chaos())
            .args([
                "run",
                path.to_str().unwrap(),
                "--control",
                &w.control,
                "--seed",
                "7",
            ])
            .args([
                "--var",
                &format!("app={}", w.app),
                "--recovery-timeout",
                "5s",
            ])
            .arg("--journal-path")
            .arg(&journal)
            .arg("--report")
            .arg(&html)
            .output()
            .await
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
        assert_eq!(j["chaos-run"]["seed"], 7);
        assert_eq!(j["chaos-run"]["config_hash"].as_str().unwrap().len(), 64);
        assert!(
            std::fs::read_to_string(&html)
                .unwrap()
                .contains("fault-window")
        );
        assert!(dir.join("report.md").exists());
        // The report can be rendered again from the journal alone.
        let again = dir.join("again.html");
        let status = chaos()
            .arg("report")
            .arg(&journal)
            .arg("-o")
            .arg(&again)
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(&again).unwrap(),
            std::fs::read_to_string(&html).unwrap()
        );
    }
}

#[tokio::test]
async fn sigint_to_a_running_chaos_rolls_back_and_exits_130() {
    let w = world().await;
    let dir = temp_dir("sigint");
    let path = write_experiment(&dir, pausing_experiment());
    let journal = dir.join("journal.json");
    let mut child = tokio::process::Command::from(chaos())
        .args([
            "run",
            path.to_str().unwrap(),
            "--control",
            &w.control,
            "--var",
            &format!("app={}", w.app),
        ])
        .arg("--journal-path")
        .arg(&journal)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.plane.posted.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the fault was never created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(*w.plane.deleted.lock().unwrap(), vec!["f-1".to_string()]);
    let j: Value = serde_json::from_str(&std::fs::read_to_string(&journal).unwrap()).unwrap();
    assert_eq!(j["status"], "interrupted");
}

#[tokio::test]
async fn a_chaos_killed_outright_leaves_no_fault_past_its_lease() {
    let w = world().await;
    let dir = temp_dir("sigkill");
    let path = write_experiment(&dir, &pausing_experiment().replace("ttl: 120", "ttl: 1s"));
    let mut child = tokio::process::Command::from(chaos())
        .args([
            "run",
            path.to_str().unwrap(),
            "--control",
            &w.control,
            "--var",
            &format!("app={}", w.app),
        ])
        .arg("--journal-path")
        .arg(dir.join("journal.json"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.plane.posted.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the fault was never created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    assert_eq!(w.plane.posted.lock().unwrap()[0]["ttl_seconds"], 1);
    assert!(
        w.plane.deleted.lock().unwrap().is_empty(),
        "no rollback after SIGKILL"
    );
    // The lease ends by itself.
    while !w.plane.active("ratings").is_empty() {
        assert!(Instant::now() < deadline, "the lease outlived its TTL");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[test]
fn kill_picks_are_seeded_and_replayable() {
    let dir = temp_dir("kill");
    let log = dir.join("calls.log");
    let fake = dir.join("meshctl");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", log.display()),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .unwrap();
    let exp = dir.join("kill.yaml");
    std::fs::write(
        &exp,
        "title: Kill\ndescription: kill one reviews pod\nmethod:\n  - {type: action, name: kill, provider: {type: kill, workload: [reviews-v1, reviews-v2, reviews-v3], signal: TERM}}\n",
    )
    .unwrap();
    let run = |seed: &str| {
        let status = chaos()
            .args([
                "run",
                exp.to_str().unwrap(),
                "--seed",
                seed,
                "--control",
                "http://127.0.0.1:9",
            ])
            .arg("--meshctl")
            .arg(&fake)
            .arg("--journal-path")
            .arg(dir.join(format!("j{seed}.json")))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    };
    for seed in ["1", "1", "2", "3", "4", "5"] {
        run(seed);
    }
    let calls: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(calls.len(), 6);
    assert!(calls[0].starts_with("--control http://127.0.0.1:9 kill --signal TERM reviews-v"));
    assert_eq!(calls[0], calls[1], "the same seed replays the same pick");
    let distinct: std::collections::BTreeSet<&String> = calls.iter().collect();
    assert!(
        distinct.len() > 1,
        "different seeds pick differently: {calls:?}"
    );
}

#[test]
fn invalid_experiments_exit_64_naming_the_field() {
    let dir = temp_dir("invalid");
    let exp = dir.join("bad.yaml");
    std::fs::write(
        &exp,
        "title: t\ndescription: d\nsteady-state-hypothesis:\n  title: h\n  probes:\n    - {type: probe, name: p, provider: {type: http, url: 'http://x'}}\nmethod:\n  - {type: action, name: a, provider: {type: process, path: /bin/true}}\n  - {type: action, name: b, provider: {type: process, path: /bin/true}}\n  - {type: action, name: c, provider: {type: http}}\n",
    )
    .unwrap();
    for cmd in ["validate", "run"] {
        let out = chaos().arg(cmd).arg(&exp).output().unwrap();
        assert_eq!(out.status.code(), Some(64));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("method[2].provider: missing field `url`"),
            "{err}"
        );
        assert!(
            err.contains("steady-state-hypothesis.probes[0]: missing tolerance"),
            "{err}"
        );
    }
    let out = chaos()
        .args(["run", "x.yaml", "--rollback-strategy", "sometimes"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = chaos().args(["run", "--bogus"]).output().unwrap();
    assert_eq!(out.status.code(), Some(64));
    let out = chaos()
        .args(["validate", "/no/such/file.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read experiment /no/such/file.yaml")
    );
}

#[test]
fn every_catalogue_experiment_validates() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if !path.extension().is_some_and(|e| e == "yaml" || e == "json") {
            continue;
        }
        count += 1;
        let out = chaos().arg("validate").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        // Every entry says what it teaches.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            text.contains("Teaches:"),
            "{} lacks its lesson",
            path.display()
        );
    }
    assert!(count >= 12, "catalogue has {count} experiments");
}
