//! Contract tests of the reviews service, with a fake ratings service on a real socket.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bookinfo_reviews::{Config, app, routes::AppState};
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

/// A fake ratings service: answers `status` + `body` after `delay`, recording the
/// headers of every request.
#[derive(Clone)]
struct FakeRatings {
    addr: std::net::SocketAddr,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

async fn fake_ratings(status: u16, body: &'static str, delay: Duration) -> FakeRatings {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let router = axum::Router::new().route(
        "/ratings/{id}",
        axum::routing::get(move |headers: HeaderMap| {
            let seen = seen2.clone();
            async move {
                seen.lock().unwrap().push(headers);
                tokio::time::sleep(delay).await;
                (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    body,
                )
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    FakeRatings { addr, seen }
}

fn state(env: &[(&str, &str)], ratings: Option<std::net::SocketAddr>) -> Arc<AppState> {
    let mut env: HashMap<&str, &str> = env.iter().copied().collect();
    let port = ratings.map(|a| a.port().to_string()).unwrap_or_default();
    if ratings.is_some() {
        env.insert("RATINGS_HOSTNAME", "127.0.0.1");
        env.insert("RATINGS_SERVICE_PORT", &port);
    }
    build(Config::from_lookup(&env, None).unwrap())
}

fn build(config: Config) -> Arc<AppState> {
    let client = bookinfo_common::client::build(bookinfo_common::client::ClientOptions {
        keep_alive: true,
        proxy: bookinfo_common::client::Proxy::Direct,
    })
    .unwrap();
    Arc::new(AppState { config, client })
}

async fn get(state: Arc<AppState>, path: &str, headers: &[(&str, &str)]) -> (StatusCode, String) {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app(state)
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(body.to_vec()).unwrap())
}

const RATINGS_OK: &str = r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#;

#[tokio::test]
async fn v1_never_calls_ratings() {
    let fake = fake_ratings(200, RATINGS_OK, Duration::ZERO).await;
    let st = state(&[("HOSTNAME", "reviews-v1-abc")], Some(fake.addr));
    let (status, body) = get(st, "/reviews/0", &[]).await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"id": "0","podname": "reviews-v1-abc","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."}]}"#
    );
    assert!(fake.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn v2_black_and_v3_red_stars_with_forwarded_headers() {
    let fake = fake_ratings(200, RATINGS_OK, Duration::ZERO).await;
    for (version, color) in [("v2", "black"), ("v3", "red")] {
        let st = state(
            &[("SERVICE_VERSION", version), ("CLUSTER_NAME", "kind-1")],
            Some(fake.addr),
        );
        let hdrs = [
            ("end-user", "jason"),
            ("x-request-id", "r-1"),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-parentspanid", "e457b5a2e4d86bd1"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("x-not-forwarded", "1"),
        ];
        let (status, body) = get(st, "/reviews/0", &hdrs).await;
        assert_eq!(status, 200);
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["id"], "0");
        assert_eq!(v["clustername"], "kind-1");
        assert_eq!(
            v["reviews"][0]["rating"],
            serde_json::json!({"stars": 5, "color": color})
        );
        assert_eq!(
            v["reviews"][1]["rating"],
            serde_json::json!({"stars": 4, "color": color})
        );
    }
    let seen = fake.seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    for h in seen.iter() {
        assert_eq!(h["end-user"], "jason");
        assert_eq!(h["x-request-id"], "r-1");
        assert_eq!(h["x-b3-traceid"], "80f198ee56343ba864fe8b2a57d3eff7");
        assert_eq!(h["x-b3-parentspanid"], "e457b5a2e4d86bd1");
        assert!(h.get("traceparent").is_some());
        assert_eq!(h["accept"], "application/json");
        assert!(h.get("x-not-forwarded").is_none());
    }
}

#[tokio::test]
async fn ratings_failures_degrade_per_review() {
    let unavailable = serde_json::json!({"error": "Ratings service is currently unavailable"});
    let fake503 = fake_ratings(503, r#"{"error":"Service unavailable"}"#, Duration::ZERO).await;
    // The ratings-v2 MySQL quirk: 200 with an error body.
    let fake_quirk = fake_ratings(
        200,
        r#"{"error":"could not connect to ratings database"}"#,
        Duration::ZERO,
    )
    .await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    for addr in [fake503.addr, fake_quirk.addr, closed] {
        let (status, body) = get(
            state(&[("SERVICE_VERSION", "v2")], Some(addr)),
            "/reviews/0",
            &[],
        )
        .await;
        assert_eq!(status, 200, "reviews stays 200 whatever ratings does");
        let v: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["reviews"][0]["rating"], unavailable);
        assert_eq!(v["reviews"][1]["rating"], unavailable);
    }
}

#[tokio::test(start_paused = true)]
async fn v2_waits_for_a_7s_ratings_answer() {
    let fake = fake_ratings(200, RATINGS_OK, Duration::from_secs(7)).await;
    let start = tokio::time::Instant::now();
    let (_, body) = get(
        state(&[("SERVICE_VERSION", "v2")], Some(fake.addr)),
        "/reviews/0",
        &[],
    )
    .await;
    let took = start.elapsed();
    assert!(body.contains(r#""stars": 5, "color": "black""#), "{body}");
    assert!(
        took >= Duration::from_secs(7) && took < Duration::from_millis(7100),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn v3_gives_up_at_2_5s() {
    let fake = fake_ratings(200, RATINGS_OK, Duration::from_secs(7)).await;
    let start = tokio::time::Instant::now();
    let (_, body) = get(
        state(&[("SERVICE_VERSION", "v3")], Some(fake.addr)),
        "/reviews/0",
        &[],
    )
    .await;
    let took = start.elapsed();
    assert!(
        body.contains("Ratings service is currently unavailable"),
        "{body}"
    );
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_millis(2600),
        "{took:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn v2_gives_up_at_10s() {
    let fake = fake_ratings(200, RATINGS_OK, Duration::from_secs(30)).await;
    let start = tokio::time::Instant::now();
    let (_, body) = get(
        state(&[("SERVICE_VERSION", "v2")], Some(fake.addr)),
        "/reviews/0",
        &[],
    )
    .await;
    let took = start.elapsed();
    assert!(
        body.contains("Ratings service is currently unavailable"),
        "{body}"
    );
    assert!(
        took >= Duration::from_secs(10) && took < Duration::from_millis(10100),
        "{took:?}"
    );
}

#[tokio::test]
async fn ids_health_and_unknown_paths() {
    let st = || state(&[], None);
    assert_eq!(get(st(), "/reviews/abc", &[]).await.0, 404);
    assert_eq!(get(st(), "/reviews/99999999999", &[]).await.0, 404);
    let (status, body) = get(st(), "/reviews/+5", &[]).await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"id": "5","#));
    assert_eq!(
        get(st(), "/health", &[]).await,
        (
            StatusCode::OK,
            r#"{"status": "Reviews is healthy"}"#.to_owned()
        )
    );
    assert_eq!(get(st(), "/nope", &[]).await.0, 404);
    let resp = app(st())
        .oneshot(Request::post("/reviews/0").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 405);
}

#[tokio::test]
async fn serves_on_a_real_socket() {
    let fake = fake_ratings(200, RATINGS_OK, Duration::ZERO).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let st = state(&[("SERVICE_VERSION", "v3")], Some(fake.addr));
    tokio::spawn(async move { axum::serve(listener, app(st)).await });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let body = client
        .get(format!("http://{addr}/reviews/0"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains(r#""color": "red""#), "{body}");
}

#[test]
fn bad_env_exits_64_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_reviews"))
        .env("SERVICE_VERSION", "v7")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("reviews: invalid SERVICE_VERSION=\"v7\""),
        "{err}"
    );
}
