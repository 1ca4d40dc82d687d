//! productpage's own spans and the trace ids of its log lines, against a local OTLP/HTTP
//! receiver (decoded with the OpenTelemetry protobuf definitions) and fake upstreams on
//! 127.0.0.1. Its own test binary: each test installs the process-wide subscriber.

// Test helpers panic on purpose when setup fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bookinfo_common::telemetry::{self, LogFormat};
use bookinfo_common::trace::{self, Settings, Tracing, settings::Sampling};
use bookinfo_productpage::{AppState, Config, Proxy, app};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use tokio::net::TcpListener;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER: &str = "00f067aa0ba902b7";
const DETAILS: &str = r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#;

/// One exported span and the `service.name` of its resource.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    span: Span,
}

/// A local OTLP/HTTP receiver.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Got>>>,
}

fn text(v: &Option<AnyValue>) -> Option<String> {
    match v.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        any_value::Value::BoolValue(b) => Some(b.to_string()),
        _ => None,
    }
}

fn attrs(kvs: &[KeyValue]) -> HashMap<String, String> {
    kvs.iter()
        .filter_map(|kv| Some((kv.key.clone(), text(&kv.value)?)))
        .collect()
}

async fn collector() -> Collector {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let s = spans.clone();
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| {
            let s = s.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).unwrap();
                for rs in req.resource_spans {
                    let service = rs
                        .resource
                        .as_ref()
                        .map(|r| attrs(&r.attributes))
                        .and_then(|a| a.get("service.name").cloned())
                        .unwrap_or_default();
                    for ss in rs.scope_spans {
                        for span in ss.spans {
                            s.lock().unwrap().push(Got {
                                service: service.clone(),
                                span,
                            });
                        }
                    }
                }
                "{}"
            }
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Collector { addr, spans }
}

/// Only what comes in sampled is traced (no trace starts here), batches go quickly.
fn tracing_to(c: &Collector) -> Tracing {
    let settings = Settings {
        sampling: Sampling {
            parent_based: true,
            ratio: 0.0,
        },
        batch_delay: Duration::from_millis(50),
        ..Settings::new(format!("http://{}/v1/traces", c.addr))
    };
    Tracing::start(&settings, "productpage").unwrap()
}

/// Log lines written to memory.
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

impl Logs {
    /// The JSON lines whose message is `message`.
    fn lines(&self, message: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let all = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        all.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter_map(|v| v.as_object().cloned())
            .filter(|o| o.get("message").and_then(|m| m.as_str()) == Some(message))
            .collect()
    }
}

fn install(tracing: Option<&Tracing>) -> Logs {
    let logs = Logs::default();
    let writer = logs.clone();
    telemetry::install(LogFormat::Json, "info", tracing, move || writer.clone());
    logs
}

/// The headers of every request a fake upstream received.
type Hits = Arc<Mutex<Vec<HeaderMap>>>;

/// A fake upstream answering `status` with `body`, recording the headers it got.
async fn fake(status: u16, body: &'static str) -> (u16, Hits) {
    async fn answer(
        State((status, body, hits)): State<(u16, &'static str, Hits)>,
        req: Request,
    ) -> Response {
        hits.lock().unwrap().push(req.headers().clone());
        (StatusCode::from_u16(status).unwrap(), body).into_response()
    }
    let hits = Arc::new(Mutex::new(Vec::new()));
    let router = axum::Router::new()
        .fallback(answer)
        .with_state((status, body, hits.clone()));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (port, hits)
}

/// productpage on 127.0.0.1:0 in front of a healthy details and a reviews that fails
/// (503: two attempts and a warning each); its URL and what each upstream got.
async fn productpage() -> (
    String,
    Arc<Mutex<Vec<HeaderMap>>>,
    Arc<Mutex<Vec<HeaderMap>>>,
) {
    let (details, details_hits) = fake(200, DETAILS).await;
    let (reviews, reviews_hits) = fake(503, "no healthy upstream").await;
    let ports = [details.to_string(), reviews.to_string()];
    let env: HashMap<&str, &str> = HashMap::from([
        ("DETAILS_HOSTNAME", "127.0.0.1"),
        ("REVIEWS_HOSTNAME", "127.0.0.1"),
        ("RATINGS_HOSTNAME", "127.0.0.1"),
        ("DETAILS_SERVICE_PORT", ports[0].as_str()),
        ("REVIEWS_SERVICE_PORT", ports[1].as_str()),
        ("RATINGS_SERVICE_PORT", ports[1].as_str()),
    ]);
    let config = Config::from_lookup(&env, None).unwrap();
    let state = AppState::new(&config, Proxy::Direct).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    (format!("http://{addr}"), details_hits, reviews_hits)
}

async fn get(url: &str, headers: &[(&str, &str)]) -> u16 {
    bookinfo_common::client::install_crypto_provider();
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let mut req = client.get(format!("{url}/productpage"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Flushes until `n` spans of `trace` arrived.
async fn spans_of(tracing: &Arc<Tracing>, c: &Collector, trace: &str, n: usize) -> Vec<Got> {
    for _ in 0..100 {
        let t = tracing.clone();
        tokio::task::spawn_blocking(move || t.flush())
            .await
            .unwrap();
        let got: Vec<Got> = c
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|g| hex(&g.span.trace_id) == trace)
            .cloned()
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "expected {n} spans of {trace}, got {:#?}",
        c.spans.lock().unwrap()
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The headers of the contract an upstream must get exactly as they came in.
fn assert_forwarded_verbatim(got: &HeaderMap, sent: &[(&str, &str)]) {
    for (name, value) in sent {
        assert_eq!(
            got.get(*name).and_then(|v| v.to_str().ok()),
            Some(*value),
            "{name} must be forwarded unchanged"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_request_gives_a_server_span_under_the_caller_and_client_spans_under_it() {
    let c = collector().await;
    let tracing = Arc::new(tracing_to(&c));
    let logs = install(Some(&tracing));
    assert!(trace::enabled());
    let (url, details, reviews) = productpage().await;
    let traceparent = format!("00-{TRACE}-{CALLER}-01");
    let sent = [
        ("traceparent", traceparent.as_str()),
        ("tracestate", "vendor=1"),
        ("x-request-id", "f00d"),
        ("x-b3-traceid", TRACE),
        ("x-b3-spanid", CALLER),
        ("x-b3-sampled", "1"),
    ];
    assert_eq!(get(&url, &sent).await, 200);

    // The contract first: the calls carry the caller's headers byte for byte.
    let details = details.lock().unwrap().clone();
    let reviews = reviews.lock().unwrap().clone();
    assert_eq!((details.len(), reviews.len()), (1, 2));
    for got in details.iter().chain(&reviews) {
        assert_forwarded_verbatim(got, &sent);
    }

    // A server span for the page and a client span per attempt: details once, reviews twice.
    let spans = spans_of(&tracing, &c, TRACE, 4).await;
    assert!(
        spans.iter().all(|g| g.service == "productpage"),
        "{spans:#?}"
    );
    let servers: Vec<&Span> = spans
        .iter()
        .map(|g| &g.span)
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect();
    assert_eq!(servers.len(), 1, "{spans:#?}");
    let server = servers[0];
    assert_eq!(server.name, "GET /productpage");
    assert_eq!(hex(&server.parent_span_id), CALLER);
    let a = attrs(&server.attributes);
    assert_eq!(
        a.get("http.response.status_code").map(String::as_str),
        Some("200")
    );
    assert_eq!(
        a.get("http.route").map(String::as_str),
        Some("/productpage")
    );

    let clients: Vec<HashMap<String, String>> = spans
        .iter()
        .map(|g| &g.span)
        .filter(|s| s.kind == SpanKind::Client as i32)
        .inspect(|s| {
            assert_eq!(
                s.parent_span_id, server.span_id,
                "client spans are the server's children"
            );
            assert_eq!(s.name, "GET");
        })
        .map(|s| attrs(&s.attributes))
        .collect();
    assert_eq!(clients.len(), 3, "{spans:#?}");
    let to = |peer: &str| {
        clients
            .iter()
            .filter(|a| a["server.address"] == peer)
            .count()
    };
    assert_eq!((to("details"), to("reviews")), (1, 2));
    for a in clients.iter().filter(|a| a["server.address"] == "reviews") {
        assert_eq!(a["http.response.status_code"], "503");
        assert!(a["url.full"].ends_with("/reviews/0"), "{a:?}");
    }

    // The request's log lines carry its ids, flat at the top level.
    let warnings = logs.lines("Upstream call failed.");
    assert_eq!(warnings.len(), 2);
    for w in &warnings {
        assert_eq!(w["trace_id"], TRACE);
        assert_eq!(w["span_id"].as_str(), Some(hex(&server.span_id).as_str()));
        assert_eq!(w["level"], "WARN");
        assert!(!w.contains_key("span") && !w.contains_key("spans"), "{w:?}");
    }
    // Lines outside any request have none.
    let t = tracing.clone();
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn b3_alone_parents_the_server_span_and_unsampled_requests_export_nothing() {
    let c = collector().await;
    let tracing = Arc::new(tracing_to(&c));
    let logs = install(Some(&tracing));
    let (url, details, _) = productpage().await;

    let b3_trace = "80f198ee56343ba864fe8b2a57d3eff7";
    let b3 = [
        ("x-b3-traceid", b3_trace),
        ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ("x-b3-sampled", "1"),
    ];
    assert_eq!(get(&url, &b3).await, 200);
    let spans = spans_of(&tracing, &c, b3_trace, 4).await;
    let server = spans
        .iter()
        .find(|g| g.span.kind == SpanKind::Server as i32)
        .unwrap();
    assert_eq!(hex(&server.span.parent_span_id), "e457b5a2e4d86bd1");
    assert_forwarded_verbatim(&details.lock().unwrap()[0], &b3);

    // Not sampled by the caller: no span leaves the process, yet the log lines still
    // carry the trace id, so logs and the proxies' spans can be matched.
    let unsampled = "0af7651916cd43dd8448eb211c80319c";
    let traceparent = format!("00-{unsampled}-b7ad6b7169203331-00");
    assert_eq!(get(&url, &[("traceparent", &traceparent)]).await, 200);
    assert_forwarded_verbatim(
        &details.lock().unwrap()[1],
        &[("traceparent", traceparent.as_str())],
    );
    let t = tracing.clone();
    tokio::task::spawn_blocking(move || t.flush())
        .await
        .unwrap();
    let exported = c
        .spans
        .lock()
        .unwrap()
        .iter()
        .filter(|g| hex(&g.span.trace_id) == unsampled)
        .count();
    assert_eq!(exported, 0);
    let warnings = logs.lines("Upstream call failed.");
    assert_eq!(warnings.len(), 4);
    assert!(warnings[2..].iter().all(|w| w["trace_id"] == unsampled));
    let t = tracing.clone();
    tokio::task::spawn_blocking(move || t.shutdown())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_off_there_is_no_span_and_logs_are_as_before() {
    let logs = install(None);
    assert!(!trace::enabled());
    assert!(trace::client_span("GET", "http://details:9080/details/0", "details").is_none());
    let (url, details, _) = productpage().await;
    let traceparent = format!("00-{TRACE}-{CALLER}-01");
    let sent = [
        ("traceparent", traceparent.as_str()),
        ("x-request-id", "f00d"),
    ];
    assert_eq!(get(&url, &sent).await, 200);
    assert_forwarded_verbatim(&details.lock().unwrap()[0], &sent);
    let warnings = logs.lines("Upstream call failed.");
    assert_eq!(warnings.len(), 2);
    for w in &warnings {
        assert!(
            !w.contains_key("trace_id") && !w.contains_key("span_id"),
            "{w:?}"
        );
        // The exact keys the line had before spans existed.
        let mut keys: Vec<&str> = w.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            [
                "attempt",
                "attempts",
                "destination",
                "error",
                "level",
                "message",
                "timestamp",
                "url"
            ]
        );
    }
}
