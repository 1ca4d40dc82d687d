//! Contract tests of the details service: router-level and over real sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use bookinfo_details::{Config, app, routes::AppState};
use http_body_util::BodyExt;
use tower::ServiceExt;

const BOOK: &str = r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#;

fn state(env: &[(&str, &str)]) -> Arc<AppState> {
    let env: HashMap<&str, &str> = env.iter().copied().collect();
    let config = Config::from_lookup(&env, None).unwrap();
    let client = bookinfo_common::client::build(bookinfo_common::client::ClientOptions {
        keep_alive: true,
        proxy: bookinfo_common::client::Proxy::Direct,
    })
    .unwrap();
    Arc::new(AppState { config, client })
}

async fn call(
    state: Arc<AppState>,
    method: &str,
    path: &str,
) -> (StatusCode, Option<String>, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .body(Body::empty())
        .unwrap();
    let resp = app(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ct, String::from_utf8(body.to_vec()).unwrap())
}

#[tokio::test]
async fn details_json_byte_for_byte() {
    let (status, ct, body) = call(state(&[]), "GET", "/details/0").await;
    assert_eq!(status, 200);
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(body, BOOK);
}

#[tokio::test]
async fn id_comes_from_the_last_segment_and_is_echoed() {
    let (_, _, body) = call(state(&[]), "GET", "/details/1/2").await;
    assert!(body.starts_with(r#"{"id":2,"author""#), "{body}");
    let (_, _, body) = call(state(&[]), "GET", "/details/0x1A").await;
    assert!(body.starts_with(r#"{"id":26,"#), "{body}");
    let (_, _, body) = call(state(&[]), "GET", "/details/99999999999999999999999").await;
    assert!(
        body.starts_with(r#"{"id":99999999999999999999999,"#),
        "{body}"
    );
}

#[tokio::test]
async fn non_numeric_ids_are_400_with_the_exact_message() {
    for path in [
        "/details",
        "/details/",
        "/details/abc",
        "/details/1.5",
        "/details/%ZZ",
    ] {
        let (status, ct, body) = call(state(&[]), "GET", path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(ct.as_deref(), Some("application/json"));
        assert_eq!(
            body, r#"{"error":"please provide numeric product id"}"#,
            "{path}"
        );
    }
}

#[tokio::test]
async fn methods_follow_the_original() {
    for m in ["POST", "PUT"] {
        let (status, _, body) = call(state(&[]), m, "/details/0").await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, BOOK), "{m}");
    }
    assert_eq!(call(state(&[]), "HEAD", "/details/0").await.0, 200);
    assert_eq!(call(state(&[]), "OPTIONS", "/details/0").await.0, 200);
    assert_eq!(call(state(&[]), "DELETE", "/details/0").await.0, 405);
    assert_eq!(call(state(&[]), "PATCH", "/details/0").await.0, 405);
}

#[tokio::test]
async fn health_unknown_paths_and_metrics() {
    let (status, _, body) = call(state(&[]), "GET", "/health").await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::OK, r#"{"status":"Details is healthy"}"#)
    );
    assert_eq!(call(state(&[]), "GET", "/health/deep").await.0, 200);
    let (status, ct, _) = call(state(&[]), "GET", "/nope").await;
    assert_eq!(status, 404);
    assert!(ct.unwrap().starts_with("text/html"));
    // Metrics count what this router instance served.
    let router = app(state(&[]));
    router
        .clone()
        .oneshot(Request::get("/details/7").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let resp = router
        .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec(),
    )
    .unwrap();
    assert!(
        body.contains(
            r#"http_server_requests_total{method="GET",route="/details/{*rest}",code="200"} 1"#
        ),
        "{body}"
    );
}

/// A fake books API on a real socket that records the headers it received.
async fn fake_books_api(
    answer: &'static str,
    status: u16,
) -> (String, Arc<Mutex<Vec<http::HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let router = axum::Router::new().route(
        "/books/v1/volumes",
        axum::routing::get(
            move |q: axum::extract::RawQuery, headers: http::HeaderMap| {
                let seen = seen2.clone();
                async move {
                    assert_eq!(q.0.as_deref(), Some("q=isbn:0486424618"));
                    seen.lock().unwrap().push(headers);
                    (StatusCode::from_u16(status).unwrap(), answer)
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (format!("http://{addr}"), seen)
}

const VOLUME: &str = r#"{"items":[{"volumeInfo":{"authors":["William Shakespeare"],"publishedDate":"2002-03-12","printType":"BOOK","pageCount":80,"publisher":"Dover Publications","language":"en","industryIdentifiers":[{"type":"ISBN_10","identifier":"0486424618"},{"type":"ISBN_13","identifier":"9780486424613"}]}}]}"#;

#[tokio::test]
async fn external_book_service_is_called_and_mapped() {
    let (base, seen) = fake_books_api(VOLUME, 200).await;
    let st = state(&[
        ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
        ("BOOKS_API_URL", &base),
    ]);
    let req = Request::get("/details/0")
        .header("x-request-id", "rid-1")
        .header("end-user", "jason")
        .header("x-b3-parentspanid", "p1")
        .header("x-unrelated", "drop-me")
        .body(Body::empty())
        .unwrap();
    let resp = app(st).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8(body.to_vec()).unwrap();
    assert!(body.contains(r#""ISBN-10":"0486424618""#), "{body}");
    assert!(body.contains(r#""year":"2002-03-12""#), "{body}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["x-request-id"], "rid-1");
    assert_eq!(seen[0]["end-user"], "jason");
    assert_eq!(seen[0]["x-b3-parentspanid"], "p1");
    assert!(seen[0].get("x-unrelated").is_none());
}

#[tokio::test]
async fn external_failures_are_400_with_the_reason() {
    let (base, _) = fake_books_api("not json", 200).await;
    let st = state(&[
        ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
        ("BOOKS_API_URL", &base),
    ]);
    let (status, _, body) = call(st, "GET", "/details/0").await;
    assert_eq!(status, 400);
    assert!(
        body.starts_with(r#"{"error":"books API answer is not usable"#),
        "{body}"
    );

    // Nothing listens on this port: a connect error, reported, no hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let st = state(&[
        ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
        ("BOOKS_API_URL", &format!("http://{closed}")),
    ]);
    let (status, _, body) = call(st, "GET", "/details/0").await;
    assert_eq!(status, 400);
    assert!(body.contains("books API request failed"), "{body}");
}

#[tokio::test(start_paused = true)]
async fn external_call_gives_up_after_five_seconds() {
    let router = axum::Router::new().route(
        "/books/v1/volumes",
        axum::routing::get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            VOLUME
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    let st = state(&[
        ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
        ("BOOKS_API_URL", &format!("http://{addr}")),
    ]);
    let start = tokio::time::Instant::now();
    let (status, _, _) = call(st, "GET", "/details/0").await;
    assert_eq!(status, 400);
    let waited = start.elapsed().as_secs_f64();
    assert!((5.0..5.5).contains(&waited), "waited {waited}s");
}

#[tokio::test]
async fn serves_on_a_real_socket() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = app(state(&[]));
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let resp = client
        .get(format!("http://{addr}/details/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), BOOK);
}

#[test]
fn bad_env_exits_64_with_one_line() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_details"))
        .env("PORT", "ninety")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("details: invalid PORT=\"ninety\""), "{err}");
}
