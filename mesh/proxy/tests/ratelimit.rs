//! The local rate limit of Istio's "Enabling Rate Limits using Envoy" task on a real
//! sidecar's inbound listener: four requests pass, the fifth gets Envoy's 429, the
//! bucket refills after `fill_interval` (paused time), and the `RL` flag shows in the
//! metrics and Envoy's `/stats` counters.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use mesh_proxy::run::Running;

#[expect(dead_code, reason = "each test binary uses part of the shared helpers")]
mod support;

use support::{file_sidecar, stats};

/// The task's filter as istio.io shows it (it selects `app: productpage`).
const TASK_FILTER: &str = include_str!("../../api/tests/data/local-ratelimit-productpage.yaml");

/// The task's filter, selecting the test sidecar's workload (`app: client`).
fn filter() -> String {
    TASK_FILTER.replace("app: productpage", "app: client")
}

/// The local app: answers every request with 200 and counts them.
async fn app() -> (SocketAddr, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    let router = axum::Router::new().fallback(move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            "from the app"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, count)
}

/// A request to the sidecar's inbound listener, as another workload's sidecar sends it.
async fn call(client: &reqwest::Client, proxy: &Running) -> reqwest::Response {
    client
        .get(format!("http://{}/productpage", proxy.inbound.unwrap()))
        .header("host", "productpage:9080")
        .send()
        .await
        .unwrap()
}

async fn admin(proxy: &Running, path: &str) -> String {
    reqwest::get(format!("http://{}{path}", proxy.admin))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_fifth_request_is_429_until_the_bucket_refills() {
    let (app, served) = app().await;
    let proxy = file_sidecar(&[], &filter(), app).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();

    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(call(&client, &proxy).await.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 200, 429]);
    assert_eq!(
        served.load(Ordering::SeqCst),
        4,
        "the limited request never reached the app"
    );

    let limited = call(&client, &proxy).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["x-local-rate-limit"], "true");
    assert!(
        limited.headers()["x-mesh-error"]
            .to_str()
            .unwrap()
            .starts_with("RL local_rate_limited")
    );
    assert_eq!(limited.text().await.unwrap(), "local_rate_limited");

    // The bucket as the config dump shows it: empty, refilled at the next interval.
    let dump: serde_json::Value =
        serde_json::from_str(&admin(&proxy, "/config_dump").await).unwrap();
    let bucket = &dump["local_rate_limits"][0];
    assert_eq!(bucket["tokens"], 0, "{bucket}");
    assert_eq!(bucket["max_tokens"], 4);
    assert_eq!(bucket["fill_interval"], "60s");

    // Not a token before the interval is over; four at once when it is.
    tokio::time::sleep(Duration::from_secs(50)).await;
    assert_eq!(call(&client, &proxy).await.status(), 429);
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut codes = Vec::new();
    for _ in 0..5 {
        codes.push(call(&client, &proxy).await.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 200, 200, 429]);

    // Envoy's counters, and the RL flag in Istio's metrics.
    let counters = admin(&proxy, "/stats").await;
    for line in [
        "http_local_rate_limiter.http_local_rate_limit.enabled: 12",
        "http_local_rate_limiter.http_local_rate_limit.ok: 8",
        "http_local_rate_limiter.http_local_rate_limit.rate_limited: 4",
        "http_local_rate_limiter.http_local_rate_limit.enforced: 4",
    ] {
        assert!(counters.contains(line), "{line}\n{counters}");
    }
    let metrics = stats(&proxy).await;
    let rl = metrics
        .lines()
        .find(|l| {
            l.starts_with("istio_requests_total{")
                && l.contains(r#"response_code="429""#)
                && l.contains(r#"response_flags="RL""#)
        })
        .unwrap_or_else(|| panic!("no RL series\n{metrics}"));
    assert!(rl.ends_with(" 4"), "{rl}");
}

#[tokio::test]
async fn a_workload_the_filter_does_not_select_is_not_limited() {
    let (app, served) = app().await;
    let proxy = file_sidecar(&[], TASK_FILTER, app).await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..10 {
        assert_eq!(call(&client, &proxy).await.status(), 200);
    }
    assert_eq!(served.load(Ordering::SeqCst), 10);
    assert_eq!(admin(&proxy, "/stats").await, "");
}
