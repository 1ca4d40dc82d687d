//! Router-level tests: requests go straight into the router, no sockets.

use std::time::Duration;

use axum::http::{HeaderMap, Request};
use tokio::time::Instant;
use tower::ServiceExt;

use super::*;
use crate::config::{MysqlConfig, Version};
use crate::faults::{DELAY, UNAVAILABLE_PERIOD, UNHEALTHY_PERIOD};
use crate::store::RatingsStore;

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn content_type(&self) -> Option<&str> {
        self.headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
    }
}

async fn send(app: &Router, method: Method, uri: &str, body: impl Into<Body>) -> Reply {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(body.into())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn get(app: &Router, uri: &str) -> Reply {
    send(app, Method::GET, uri, Body::empty()).await
}

fn v1() -> Router {
    app(AppState::new(Version::V1, None))
}

fn expected(id: &str) -> String {
    format!(r#"{{"id":{id},"ratings":{{"Reviewer1":5,"Reviewer2":4}}}}"#)
}

#[tokio::test]
async fn v1_answers_the_original_json_byte_for_byte() {
    let r = get(&v1(), "/ratings/0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#
    );
    assert_eq!(r.content_type(), Some("application/json"));
}

#[tokio::test]
async fn ids_are_read_like_parse_int_of_the_last_segment() {
    let app = v1();
    let huge = "98765432109876543210987654321098765432109876543210";
    let cases = [
        ("/ratings/0?x=1".to_owned(), "0"),
        ("/ratings/1.5".to_owned(), "1"),
        ("/ratings/2/3".to_owned(), "3"),
        ("/ratings/-1".to_owned(), "-1"),
        ("/ratings/0x10".to_owned(), "16"),
        ("/ratings/0042".to_owned(), "42"),
        (format!("/ratings/000{huge}"), huge),
    ];
    for (uri, id) in &cases {
        let r = get(&app, uri).await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, expected(id).as_str()),
            "GET {uri}"
        );
        // The huge id stays an exact integer in valid JSON.
        let parsed: Value = serde_json::from_str(&r.body).unwrap();
        assert!(parsed["id"].is_number(), "GET {uri}");
    }
}

#[tokio::test]
async fn non_numeric_ids_get_400_with_the_original_message() {
    let app = v1();
    for uri in ["/ratings/abc", "/ratings/", "/ratings/%207", "/ratings/1/x"] {
        for method in [Method::GET, Method::POST] {
            let r = send(&app, method.clone(), uri, r#"{"a":1}"#).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{method} {uri}");
            assert_eq!(r.body, r#"{"error":"please provide numeric product ID"}"#);
            assert_eq!(r.content_type(), Some("application/json"));
        }
    }
}

#[tokio::test]
async fn posted_ratings_replace_the_defaults_for_that_id_only() {
    let app = v1();
    let body = r#"{"Reviewer1":1,"Reviewer2":2}"#;
    let r = send(&app, Method::POST, "/ratings/7", body).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, format!(r#"{{"id":7,"ratings":{body}}}"#));
    assert_eq!(r.content_type(), Some("application/json"));

    // The same product, spelled differently, reads the stored ratings.
    for uri in ["/ratings/7", "/ratings/007?user=jason", "/ratings/0x7"] {
        assert_eq!(
            get(&app, uri).await.body,
            format!(r#"{{"id":7,"ratings":{body}}}"#),
            "GET {uri}"
        );
    }
    assert_eq!(get(&app, "/ratings/0").await.body, expected("0"));

    // Any JSON value is accepted, whitespace is dropped, key order is kept.
    let r = send(
        &app,
        Method::POST,
        "/ratings/7",
        " { \"z\" : [1, true, null], \"a\" : \"x\" } ",
    )
    .await;
    assert_eq!(r.body, r#"{"id":7,"ratings":{"z":[1,true,null],"a":"x"}}"#);
    assert_eq!(get(&app, "/ratings/7").await.body, r.body);
}

#[tokio::test]
async fn bad_json_gets_400_and_changes_nothing() {
    let app = v1();
    for body in ["", "{", "{\"a\":}", "nope", "{} {}"] {
        let r = send(&app, Method::POST, "/ratings/3", body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "body {body:?}");
        assert_eq!(r.body, r#"{"error":"please provide valid ratings JSON"}"#);
    }
    assert_eq!(get(&app, "/ratings/3").await.body, expected("3"));
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let app = v1();
    let big = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES));
    let r = send(&app, Method::POST, "/ratings/1", big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        r.body,
        format!(r#"{{"error":"ratings JSON larger than {MAX_BODY_BYTES} bytes"}}"#)
    );
    // Just under the limit is fine.
    let fits = format!("\"{}\"", "x".repeat(MAX_BODY_BYTES - 2));
    assert_eq!(
        send(&app, Method::POST, "/ratings/1", fits).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn stored_ids_are_bounded() {
    let app = app(AppState::with_store(
        Version::V1,
        None,
        RatingsStore::with_capacity(2),
    ));
    for id in 1..=3 {
        assert_eq!(
            send(
                &app,
                Method::POST,
                &format!("/ratings/{id}"),
                id.to_string()
            )
            .await
            .status,
            StatusCode::OK
        );
    }
    assert_eq!(
        get(&app, "/ratings/1").await.body,
        expected("1"),
        "the oldest id was forgotten"
    );
    assert_eq!(
        get(&app, "/ratings/3").await.body,
        r#"{"id":3,"ratings":3}"#
    );
}

#[tokio::test]
async fn other_methods_get_405_on_every_path() {
    let app = v1();
    for method in [
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::PATCH,
        Method::OPTIONS,
    ] {
        for uri in ["/ratings/0", "/health", "/nowhere"] {
            let r = send(&app, method.clone(), uri, Body::empty()).await;
            assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_eq!(r.headers.get(header::ALLOW).unwrap(), "GET, POST");
        }
    }
}

#[tokio::test]
async fn unknown_paths_get_an_empty_404() {
    let app = v1();
    for (method, uri) in [
        (Method::GET, "/"),
        (Method::GET, "/ratings"),
        (Method::GET, "/ratings0"),
        (Method::POST, "/reviews/0"),
        (Method::POST, "/health"),
        (Method::POST, "/metrics"),
        (Method::GET, "/health/"),
    ] {
        let r = send(&app, method.clone(), uri, Body::empty()).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{method} {uri}");
        assert_eq!(r.body, "");
        assert_eq!(r.content_type(), None);
    }
}

#[tokio::test]
async fn health_and_metrics_answer() {
    let app = v1();
    let r = get(&app, "/health?probe=1").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (StatusCode::OK, r#"{"status":"Ratings is healthy"}"#)
    );
    assert_eq!(r.content_type(), Some("application/json"));

    get(&app, "/ratings/0").await;
    let r = get(&app, "/metrics").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains(
            r#"http_server_requests_total{method="GET",route="/ratings/{*rest}",code="200"} 1"#
        ),
        "{}",
        r.body
    );
}

#[tokio::test(start_paused = true)]
async fn delayed_answers_half_of_the_requests_after_exactly_seven_seconds() {
    let app = app(AppState::new(Version::Delayed, Some(11)));
    let (mut delayed, mut immediate) = (0, 0);
    for _ in 0..40 {
        let start = Instant::now();
        let r = get(&app, "/ratings/0").await;
        assert_eq!(
            (r.status, r.body.as_str()),
            (StatusCode::OK, expected("0").as_str())
        );
        match start.elapsed() {
            d if d == DELAY => delayed += 1,
            d if d == Duration::ZERO => immediate += 1,
            d => panic!("answered after {d:?}"),
        }
    }
    assert!(
        delayed >= 10 && immediate >= 10,
        "{delayed} delayed, {immediate} immediate"
    );
    // Health and POST are never delayed.
    let start = Instant::now();
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(
        send(&app, Method::POST, "/ratings/0", "{}").await.status,
        StatusCode::OK
    );
    assert_eq!(start.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn faulty_fails_about_half_of_the_requests_with_503() {
    let app = app(AppState::new(Version::Faulty, Some(5)));
    let mut failed = 0;
    for _ in 0..400 {
        let r = get(&app, "/ratings/0").await;
        match r.status {
            StatusCode::OK => assert_eq!(r.body, expected("0")),
            StatusCode::SERVICE_UNAVAILABLE => {
                assert_eq!(r.body, r#"{"error":"Service unavailable"}"#);
                assert_eq!(r.content_type(), Some("application/json"));
                failed += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!((160..=240).contains(&failed), "{failed} of 400 failed");
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn unavailable_flips_every_minute() {
    let app = app(AppState::new(Version::Unavailable, None));
    assert_eq!(get(&app, "/ratings/0").await.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(61)).await;
    let r = get(&app, "/ratings/0").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"Service unavailable"}"#
        )
    );
    assert_eq!(
        get(&app, "/health").await.status,
        StatusCode::OK,
        "v-unavailable stays healthy"
    );
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(get(&app, "/ratings/0").await.status, StatusCode::OK);
    assert_eq!(UNAVAILABLE_PERIOD, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn unhealthy_fails_health_and_ratings_after_fifteen_minutes() {
    let app = app(AppState::new(Version::Unhealthy, None));
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/ratings/0").await.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(14 * 60 + 59)).await;
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    tokio::time::advance(Duration::from_secs(1)).await;
    let r = get(&app, "/health").await;
    assert_eq!(
        (r.status, r.body.as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"status":"Ratings is not healthy"}"#
        )
    );
    assert_eq!(
        get(&app, "/ratings/0").await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::advance(UNHEALTHY_PERIOD).await;
    assert_eq!(get(&app, "/health").await.status, StatusCode::OK);
    assert_eq!(get(&app, "/ratings/0").await.status, StatusCode::OK);
}

fn v2_at(port: u16) -> Router {
    let db = MysqlConfig {
        host: "127.0.0.1".to_owned(),
        port,
        user: "root".to_owned(),
        password: "password".to_owned(),
        database: "test".to_owned(),
        step_timeout: Duration::from_secs(5),
    };
    app(AppState::new(Version::V2(db), None))
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn v2_refuses_posts_after_checking_id_and_json() {
    let app = v2_at(closed_port());
    let r = send(&app, Method::POST, "/ratings/0", r#"{"Reviewer1":1}"#).await;
    assert_eq!(r.status, StatusCode::NOT_IMPLEMENTED);
    assert_eq!(
        r.body,
        r#"{"error":"Post not implemented for database backed ratings"}"#
    );
    assert_eq!(
        send(&app, Method::POST, "/ratings/0", "{").await.status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        send(&app, Method::POST, "/ratings/x", "{}").await.status,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn v2_without_a_database_answers_200_without_content_type() {
    let r = get(&v2_at(closed_port()), "/ratings/0").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body,
        r#"{"error":"could not connect to ratings database"}"#
    );
    assert_eq!(r.content_type(), None);
}
