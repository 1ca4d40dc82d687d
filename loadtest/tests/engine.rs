//! End-to-end runs against small local servers on 127.0.0.1:0.
//!
//! These use real time (hyper over real sockets), with delays of tens of milliseconds and
//! runs of at most a few seconds; the rate test is the long one (5 s, as the requirement
//! states it).

// Test helpers may unwrap: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bookinfo_loadtest::load::{
    Mix, Model, Recorder, Report, RunConfig, Schedule, Target, html, run, window,
};
use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// What the test server saw.
#[derive(Default)]
struct Seen {
    requests: AtomicU64,
    logins: AtomicU64,
    with_session: AtomicU64,
}

/// Starts a server; `delay(n)` gives the delay before answering the n-th request (0-based).
async fn server(
    delay: impl Fn(u64) -> Duration + Send + Sync + 'static,
) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let delay = Arc::new(delay);
    let state = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (seen, delay) = (Arc::clone(&state), Arc::clone(&delay));
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let (seen, delay) = (Arc::clone(&seen), Arc::clone(&delay));
                    async move {
                        if req.uri().path() == "/login" {
                            seen.logins.fetch_add(1, Ordering::SeqCst);
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            assert_eq!(&body[..], b"username=jason&passwd=password");
                            let response = Response::builder()
                                .status(302)
                                .header("set-cookie", "session=signed-jason; HttpOnly; Path=/")
                                .body(Full::new(Bytes::new()))
                                .unwrap();
                            return Ok::<_, Infallible>(response);
                        }
                        if req
                            .headers()
                            .get("cookie")
                            .is_some_and(|c| c == "session=signed-jason")
                        {
                            seen.with_session.fetch_add(1, Ordering::SeqCst);
                        }
                        let n = seen.requests.fetch_add(1, Ordering::SeqCst);
                        let wait = delay(n);
                        if !wait.is_zero() {
                            tokio::time::sleep(wait).await;
                        }
                        Ok(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

fn open(rate: f64, secs: f64) -> Model {
    Model::Open {
        schedule: Schedule::constant(rate, Duration::from_secs_f64(secs)),
        max_lateness: Duration::from_secs(5),
    }
}

fn config(addr: SocketAddr, model: Model, connections: usize) -> RunConfig {
    let target = Target::from_addr(addr, "/");
    RunConfig {
        mix: Mix::single(Method::GET, "/", HeaderMap::new(), Bytes::new()),
        target,
        model,
        connections,
        http2: false,
        timeout: Duration::from_secs(5),
    }
}

async fn go(cfg: RunConfig) -> Report {
    run(cfg, Arc::new(Recorder::new(Duration::from_secs(10))))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_delay_lands_in_the_percentiles() {
    let (addr, _) = server(|_| Duration::from_millis(20)).await;
    let report = go(config(addr, open(100.0, 1.0), 8)).await;
    assert_eq!(report.requests.intended, 100);
    assert_eq!(report.requests.completed, 100);
    let (c, r) = (&report.latency_ms.corrected, &report.latency_ms.raw);
    assert!((20.0..35.0).contains(&r.p50), "raw {r:?}");
    assert!((20.0..35.0).contains(&c.p50), "corrected {c:?}");
    assert!(
        c.p50 >= r.p50,
        "corrected must include the raw time: {c:?} {r:?}"
    );
    assert!(
        r.min >= 20.0,
        "nothing can be faster than the server's delay: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_corrected_but_not_raw_latency() {
    // One connection, 100 requests/s; request 20 is held for a second. Everything scheduled
    // during that second queues behind it: that waiting is real user-visible latency.
    let (addr, _) = server(|n| {
        if n == 20 {
            Duration::from_secs(1)
        } else {
            Duration::ZERO
        }
    })
    .await;
    let report = go(config(addr, open(100.0, 2.0), 1)).await;
    assert_eq!(report.requests.intended, 200);
    assert_eq!(report.requests.completed, 200);
    let (c, r) = (&report.latency_ms.corrected, &report.latency_ms.raw);
    assert!(r.max >= 1000.0, "the stalled request itself: {r:?}");
    assert!(
        r.p99 < 100.0,
        "raw hides the stall behind one sample: {r:?}"
    );
    assert!(c.p99 > 800.0, "corrected shows the queue: {c:?}");
    assert!(c.p50 > r.p50, "{c:?} {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_model_holds_the_rate() {
    let (addr, _) = server(|_| Duration::ZERO).await;
    let report = go(config(addr, open(2000.0, 5.0), 64)).await;
    let started = report.requests.started as f64;
    assert_eq!(report.requests.intended, 10_000);
    assert!(
        (started - 10_000.0).abs() <= 200.0,
        "started {started} of 10000"
    );
    assert_eq!(report.requests.started + report.requests.dropped, 10_000);
    let requested = report.requested_rps.unwrap();
    assert!((requested - 2000.0).abs() < 1.0, "{requested}");
    // Inside the run, every full second was scheduled at the rate.
    for s in &report.time_series[..5] {
        assert!((1990..=2010).contains(&s.intended), "{s:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_sends_exactly_n() {
    let (addr, seen) = server(|_| Duration::ZERO).await;
    let model = Model::Closed {
        requests: Some(500),
        duration: None,
    };
    let report = go(config(addr, model, 4)).await;
    assert_eq!(report.requests.started, 500);
    assert_eq!(report.requests.completed, 500);
    assert_eq!(seen.requests.load(Ordering::SeqCst), 500);
    assert_eq!(report.status_codes["200"], 500);
    assert_eq!(report.requested_rps, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_works() {
    let (addr, _) = server(|_| Duration::ZERO).await;
    let mut cfg = config(
        addr,
        Model::Closed {
            requests: Some(200),
            duration: None,
        },
        2,
    );
    cfg.http2 = true;
    let report = go(cfg).await;
    assert_eq!(report.status_codes["200"], 200);
    assert!(report.errors.is_empty(), "{:?}", report.errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_once_per_connection_and_send_the_session() {
    let (addr, seen) = server(|_| Duration::ZERO).await;
    let mut cfg = config(
        addr,
        Model::Closed {
            requests: Some(300),
            duration: None,
        },
        3,
    );
    let yaml = "requests:\n  - {path: /a, weight: 1}\n  - {path: /b, weight: 1, login: jason}\n";
    cfg.mix = Mix::from_yaml(yaml, &cfg.target).unwrap();
    let report = go(cfg).await;
    assert_eq!(report.status_codes["200"], 300);
    assert_eq!(
        seen.logins.load(Ordering::SeqCst),
        3,
        "one login per connection"
    );
    let with_session = seen.with_session.load(Ordering::SeqCst);
    assert!(
        (140..=160).contains(&with_session),
        "{with_session} of 300 as jason"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_are_counted_by_kind() {
    let (addr, _) = server(|_| Duration::from_millis(300)).await;
    let mut cfg = config(addr, open(20.0, 0.5), 4);
    cfg.timeout = Duration::from_millis(50);
    let started = std::time::Instant::now();
    let report = go(cfg).await;
    // Each timed-out connection is replaced; a reconnect slower than 50 ms on a busy machine
    // would count as `connect`, so only require that nearly all are timeouts.
    assert_eq!(report.requests.errors, 10);
    assert!(report.errors["timeout"] >= 8, "{:?}", report.errors);
    assert_eq!(report.requests.completed, 0);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_target_counts_connect_errors_and_ends_on_time() {
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let started = std::time::Instant::now();
    let report = go(config(addr, open(100.0, 1.0), 8)).await;
    let elapsed = started.elapsed();
    assert_eq!(report.requests.intended, 100);
    assert_eq!(report.errors["connect"], report.requests.started);
    assert!(report.requests.started >= 95, "{:?}", report.requests);
    assert_eq!(report.requests.completed, 0);
    assert!(elapsed < Duration::from_millis(1800), "took {elapsed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_shape_and_html_plots() {
    let (addr, _) = server(|_| Duration::from_millis(2)).await;
    let report = go(config(addr, open(50.0, 1.5), 4)).await;
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    for key in [
        "parameters",
        "duration_s",
        "requested_rps",
        "achieved_rps",
        "requests",
        "latency_ms",
        "status_codes",
        "errors",
        "time_series",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    for key in [
        "target",
        "model",
        "connections",
        "http2",
        "timeout_s",
        "mix",
    ] {
        assert!(
            json["parameters"].get(key).is_some(),
            "missing parameters.{key}"
        );
    }
    for kind in ["corrected", "raw"] {
        for p in ["p50", "p90", "p99", "p99_9", "max"] {
            assert!(
                json["latency_ms"][kind][p].is_number(),
                "missing latency_ms.{kind}.{p}"
            );
        }
    }
    for key in ["intended", "started", "completed", "errors", "dropped"] {
        assert!(json["requests"][key].is_u64(), "missing requests.{key}");
    }
    let series = json["time_series"].as_array().unwrap();
    assert!(series.len() >= 2);
    for key in [
        "second",
        "intended",
        "started",
        "completed",
        "errors",
        "dropped",
    ] {
        assert!(series[0][key].is_u64(), "missing time_series[].{key}");
    }
    for p in ["p50", "p90", "p99"] {
        assert!(series[0]["corrected"][p].is_number() && series[0]["raw"][p].is_number());
    }
    assert_eq!(json["parameters"]["model"], "open");

    let page = html::render(&report);
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(page.matches("<svg").count(), 3);
    assert!(page.contains("requests per second") && page.contains("latency (ms)"));
    assert!(page.contains("p99 corrected") && page.contains("p50 raw"));
    assert!(
        !page.contains("<script") && !page.contains("http://cdn"),
        "self-contained"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn window_endpoint_serves_json_during_a_run() {
    let (addr, _) = server(|_| Duration::from_millis(1)).await;
    let cfg = config(addr, open(200.0, 2.0), 8);
    let recorder = Arc::new(Recorder::new(Duration::from_secs(10)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let window_addr = listener.local_addr().unwrap();
    let rate_cfg = cfg.clone();
    let rate: window::RateFn = Arc::new(move |t| rate_cfg.requested_rate(t));
    let server = tokio::spawn(window::serve(listener, Arc::clone(&recorder), rate));
    let running = tokio::spawn(run(cfg, Arc::clone(&recorder)));
    tokio::time::sleep(Duration::from_millis(1300)).await;

    let stream = tokio::net::TcpStream::connect(window_addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = Request::get("/api/v1/window")
        .header("host", window_addr.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(req).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let w: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(!running.is_finished(), "the run must still be in progress");
    for key in [
        "count",
        "achieved_rps",
        "requested_rps",
        "error_ratio",
        "p50_ms",
        "p95_ms",
        "p99_ms",
        "status",
    ] {
        assert!(w.get(key).is_some(), "missing {key} in {w}");
    }
    assert!(w["count"].as_u64().unwrap() >= 150, "{w}");
    let achieved = w["achieved_rps"].as_f64().unwrap();
    assert!((150.0..250.0).contains(&achieved), "{w}");
    assert_eq!(w["requested_rps"].as_f64().unwrap(), 200.0);
    assert_eq!(w["error_ratio"].as_f64().unwrap(), 0.0);

    let report = running.await.unwrap().unwrap();
    assert_eq!(report.requests.completed, 400);
    server.abort();
}

/// A fake product page: request n answers a good page, a page with details' error text
/// (every 4th), a 503 (every 10th), or an error text in a 500 (counted as failed only).
async fn bookinfo_like() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                let service = service_fn(move |_req: Request<Incoming>| {
                    let n = count.fetch_add(1, Ordering::SeqCst);
                    let (status, body): (u16, &'static str) = if n % 10 == 9 {
                        (503, "no healthy upstream")
                    } else if n % 10 == 5 {
                        (500, "<h2>Error fetching product details</h2>")
                    } else if n.is_multiple_of(4) {
                        (
                            200,
                            "<h2 class=\"error-title\">Error fetching product details</h2>\
                             <p>Sorry, product details are currently unavailable for this book.</p>",
                        )
                    } else {
                        (200, "<h1>The Comedy of Errors</h1><h2>Book Details</h2>")
                    };
                    let response = Response::builder()
                        .status(status)
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap();
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn degraded_pages_are_counted_apart_from_failures_and_logged() {
    let addr = bookinfo_like().await;
    let mut cfg = config(
        addr,
        Model::Closed {
            requests: Some(40),
            duration: None,
        },
        1,
    );
    let texts = [
        "Error fetching product details".to_string(),
        "Sorry, product reviews are currently unavailable for this book.".to_string(),
    ];
    cfg.mix = cfg.mix.with_degraded_texts(&texts).unwrap();
    let recorder = Arc::new(Recorder::new(Duration::from_secs(10)).with_outcomes());
    let report = run(cfg, Arc::clone(&recorder)).await.unwrap();
    // Of 40: n = 9, 19, 29, 39 answer 503 and n = 5, 15, 25, 35 answer 500; the multiples
    // of 4 (0, 4, ..., 36: ten, none of them 5 or 9 mod 10) are degraded pages.
    assert_eq!(report.requests.completed, 40);
    assert_eq!(report.requests.degraded, 10);
    assert_eq!(report.status_codes["200"], 32);
    assert_eq!(
        report.status_codes["500"], 4,
        "an error text in a 500 is a failure"
    );
    assert_eq!(report.degraded_texts[&texts[0]], 10);
    assert_eq!(report.degraded_texts[&texts[1]], 0);
    assert!(
        report.text().contains("Degraded    10"),
        "{}",
        report.text()
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json().unwrap()).unwrap();
    assert_eq!(json["requests"]["degraded"], 10);
    let degraded_series: u64 = json["time_series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["degraded"].as_u64().unwrap())
        .sum();
    assert_eq!(degraded_series, 10);
    assert!(json["start_unix_ms"].as_u64().unwrap() > 1_600_000_000_000);

    let log = recorder.take_outcomes();
    assert_eq!(log.len(), 40);
    let degraded: Vec<u64> = log
        .iter()
        .filter(|r| r.answer.degraded_texts() != 0)
        .map(|r| r.sent_us)
        .collect();
    assert_eq!(degraded.len(), 10);
    assert!(log.iter().all(|r| r.sent_us <= r.done_us));
    assert_eq!(log.iter().filter(|r| r.answer.is_failed()).count(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bookinfo_mix_checks_its_own_texts_and_a_plain_mix_reads_no_bodies() {
    let addr = bookinfo_like().await;
    let closed = || Model::Closed {
        requests: Some(20),
        duration: None,
    };
    let mut cfg = config(addr, closed(), 1);
    cfg.mix = Mix::single(Method::GET, "/productpage", HeaderMap::new(), Bytes::new());
    let plain = go(cfg.clone()).await;
    assert_eq!(plain.requests.degraded, 0);
    assert!(plain.degraded_texts.is_empty());
    assert!(!plain.text().contains("Degraded"));

    let bookinfo = Mix::bookinfo(&Target::from_addr(addr, "/"));
    let texts = bookinfo.degraded_texts();
    cfg.mix = Mix::single(Method::GET, "/productpage", HeaderMap::new(), Bytes::new())
        .with_degraded_texts(&texts)
        .unwrap();
    let checked = go(cfg).await;
    assert_eq!(checked.requests.degraded, 5, "n = 0, 4, 8, 12, 16");
    assert_eq!(
        checked.degraded_texts["Sorry, product details are currently unavailable for this book."],
        5
    );
}
