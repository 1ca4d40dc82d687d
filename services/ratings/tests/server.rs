//! The service over real sockets on 127.0.0.1, as clients and the mesh see it.

// Test helpers may panic: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::time::Duration;

use bookinfo_common::client::{self, ClientOptions};
use bookinfo_ratings::config::Version;
use bookinfo_ratings::{AppState, app};

async fn spawn(version: Version) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app(AppState::new(version, None)))
            .await
            .unwrap()
    });
    addr
}

/// A client that ignores any proxy set on the machine and gives up after `timeout`,
/// so a server that never answers fails the test instead of hanging it.
fn http_client(timeout: Duration) -> reqwest::Client {
    client::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .unwrap()
}

#[tokio::test]
async fn serves_ratings_health_and_posted_overrides() {
    let addr = spawn(Version::V1).await;
    let http = client::build(ClientOptions {
        keep_alive: true,
        proxy: bookinfo_common::client::Proxy::Direct,
    })
    .unwrap();

    let resp = http
        .get(format!("http://{addr}/ratings/0"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#
    );

    let resp = http
        .post(format!("http://{addr}/ratings/5"))
        .body(r#"{"Reviewer1":2,"Reviewer2":3}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = http
        .get(format!("http://{addr}/ratings/5?u=jason"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"id":5,"ratings":{"Reviewer1":2,"Reviewer2":3}}"#
    );

    let resp = http
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        (resp.status().as_u16(), resp.text().await.unwrap().as_str()),
        (200, r#"{"status":"Ratings is healthy"}"#)
    );

    let resp = http
        .get(format!("http://{addr}/nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.headers().get("content-type").is_none());
}

#[tokio::test]
async fn other_methods_are_refused_at_once_instead_of_hanging() {
    let addr = spawn(Version::V1).await;
    let http = http_client(Duration::from_secs(2));
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::HEAD,
        reqwest::Method::PATCH,
    ] {
        let resp = http
            .request(method.clone(), format!("http://{addr}/ratings/0"))
            .body("{}")
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} got no answer: {e}"));
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "GET, POST");
    }
}

#[tokio::test]
async fn a_large_body_is_refused_with_413() {
    let addr = spawn(Version::V1).await;
    let http = http_client(Duration::from_secs(10));
    let body = format!("[{}0]", "0,".repeat(100_000));
    let resp = http
        .post(format!("http://{addr}/ratings/1"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
}

#[tokio::test]
async fn garbage_on_the_wire_gets_an_error_not_a_hang() {
    let addr = spawn(Version::V1).await;
    let reply = tokio::task::spawn_blocking(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        tcp.write_all(b"\x16\x03\x01 this is not HTTP\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        // The server answers 400 and closes, or just closes; either way it does not hang.
        let _ = tcp.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
    .await
    .unwrap();
    assert!(
        reply.is_empty() || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
}
