//! reviews' spans and log trace ids: a request with a caller's `traceparent` gives a
//! SERVER span under it and a CLIENT span for the ratings call under that; the ratings
//! call carries the caller's headers unchanged; the warning about a failed ratings call
//! carries the CLIENT span's ids. Its own test binary: it installs the process-wide
//! subscriber.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use bookinfo_common::telemetry::{self, LogFormat};
use bookinfo_common::trace::{Settings, Tracing, settings::Sampling};
use bookinfo_reviews::{Config, app, routes::AppState};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use tower::ServiceExt;

const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER: &str = "b7ad6b7169203331";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A local OTLP/HTTP receiver; its address and the spans it got.
async fn collector() -> (std::net::SocketAddr, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let s = spans.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                for rs in req.resource_spans {
                    for ss in rs.scope_spans {
                        s.lock().unwrap().extend(ss.spans);
                    }
                }
                "{}"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, spans)
}

/// A ratings that answers 503, recording the headers it got.
async fn failing_ratings() -> (u16, Arc<Mutex<Vec<HeaderMap>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    let router = axum::Router::new().fallback(move |headers: HeaderMap| {
        let s = s.clone();
        async move {
            s.lock().unwrap().push(headers);
            StatusCode::SERVICE_UNAVAILABLE
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, seen)
}

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ratings_call_is_a_client_span_of_the_request_and_its_warning_carries_its_ids() {
    let (otlp, spans) = collector().await;
    let settings = Settings {
        sampling: Sampling {
            parent_based: true,
            ratio: 0.0,
        },
        batch_delay: Duration::from_millis(50),
        ..Settings::new(format!("http://{otlp}/v1/traces"))
    };
    let tracing = Arc::new(Tracing::start(&settings, "reviews").unwrap());
    let logs = Logs::default();
    let writer = logs.clone();
    telemetry::install(LogFormat::Json, "info", Some(&tracing), move || {
        writer.clone()
    });

    let (port, seen) = failing_ratings().await;
    let port = port.to_string();
    let env: HashMap<&str, &str> = HashMap::from([
        ("SERVICE_VERSION", "v2"),
        ("RATINGS_HOSTNAME", "127.0.0.1"),
        ("RATINGS_SERVICE_PORT", port.as_str()),
    ]);
    let client = bookinfo_common::client::build(bookinfo_common::client::ClientOptions {
        keep_alive: true,
        proxy: bookinfo_common::client::Proxy::Direct,
    })
    .unwrap();
    let state = Arc::new(AppState {
        config: Config::from_lookup(&env, None).unwrap(),
        client,
    });
    let traceparent = format!("00-{TRACE}-{CALLER}-01");
    let req = Request::get("/reviews/0")
        .header("traceparent", &traceparent)
        .header("x-b3-traceid", TRACE)
        .header("x-b3-spanid", CALLER)
        .header("x-b3-parentspanid", "e457b5a2e4d86bd1")
        .body(Body::empty())
        .unwrap();
    let resp = app(state).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);

    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0]["traceparent"], traceparent.as_str());
    assert_eq!(seen[0]["x-b3-spanid"], CALLER);
    assert_eq!(seen[0]["x-b3-parentspanid"], "e457b5a2e4d86bd1");

    let mut got = Vec::new();
    for _ in 0..100 {
        let t = tracing.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .unwrap();
        got = spans.lock().unwrap().clone();
        if got.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(got.len(), 2, "{got:#?}");
    let server = got
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .unwrap();
    let client = got
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    assert_eq!(server.name, "GET /reviews/{id}");
    assert_eq!(hex(&server.trace_id), TRACE);
    assert_eq!(hex(&server.parent_span_id), CALLER);
    assert_eq!(hex(&client.trace_id), TRACE);
    assert_eq!(client.parent_span_id, server.span_id);
    // 503 from ratings: the call failed.
    assert_eq!(client.status.as_ref().map(|s| s.code), Some(2));

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warning: serde_json::Value = text
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| {
            v["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Error: unable to contact"))
        })
        .unwrap();
    assert_eq!(warning["trace_id"], TRACE);
    assert_eq!(
        warning["span_id"].as_str(),
        Some(hex(&client.span_id).as_str())
    );
    let t = tracing.clone();
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}
