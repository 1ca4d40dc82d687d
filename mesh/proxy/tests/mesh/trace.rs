//! Traces of one product page: every sidecar exports its spans by OTLP/HTTP protobuf to
//! a collector of ours (decoded with the OpenTelemetry protobuf definitions), the
//! Bookinfo services forward the context, and the spans form the Bookinfo call tree.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mesh_proxy::telemetry::trace::{SamplerSetting, Settings};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;

use crate::support::Mesh;

/// One exported span and the `service.name` of the process that sent it.
#[derive(Debug, Clone)]
struct Got {
    service: String,
    span: Span,
}

/// A local OTLP/HTTP receiver.
struct Collector {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Got>>>,
    content_types: Arc<Mutex<Vec<String>>>,
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
    let content_types = Arc::new(Mutex::new(Vec::new()));
    let (s, c) = (spans.clone(), content_types.clone());
    let router = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let (s, c) = (s.clone(), c.clone());
                async move {
                    c.lock().unwrap().push(
                        headers
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned(),
                    );
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
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    Collector {
        addr,
        spans,
        content_types,
    }
}

/// Sidecars that sample only what comes in sampled (no trace starts on its own), and
/// send their batches quickly.
fn settings(c: &Collector) -> Settings {
    Settings {
        sampler: SamplerSetting {
            parent_based: true,
            ratio: 0.0,
        },
        batch_delay: Duration::from_millis(50),
        ..Settings::new(format!("http://{}/v1/traces", c.addr))
    }
}

async fn flush(mesh: &Mesh) {
    for running in mesh.sidecars.values() {
        let state = running.state.clone();
        tokio::task::spawn_blocking(move || state.tracing.as_ref().unwrap().flush())
            .await
            .unwrap();
    }
}

/// Waits until `n` spans of `trace` arrived; gives them.
async fn spans_of(mesh: &Mesh, c: &Collector, trace: &[u8], n: usize) -> Vec<Got> {
    for _ in 0..100 {
        flush(mesh).await;
        let got: Vec<Got> = c
            .spans
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.span.trace_id == trace)
            .cloned()
            .collect();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = c.spans.lock().unwrap().clone();
    panic!("expected {n} spans of the trace, got: {all:#?}");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

/// The one span of `spans` sent by `service` (its app) of `kind` named `name`.
fn find<'a>(spans: &'a [Got], app: &str, kind: SpanKind, name: &str) -> &'a Span {
    let hits: Vec<&Got> = spans
        .iter()
        .filter(|g| {
            g.service == format!("{app}.default")
                && g.span.kind == kind as i32
                && g.span.name == name
        })
        .collect();
    let seen: Vec<(&str, i32, &str)> = spans
        .iter()
        .map(|g| (g.service.as_str(), g.span.kind, g.span.name.as_str()))
        .collect();
    assert_eq!(hits.len(), 1, "{app} {kind:?} {name}: {seen:?}");
    &hits[0].span
}

/// Checks the Bookinfo call tree under productpage's server span, whose parent is
/// `parent`: productpage → details, productpage → reviews → ratings, a CLIENT span in
/// the caller's sidecar and a SERVER span in the callee's for each call.
fn check_tree(spans: &[Got], parent: &[u8]) {
    let host = |s: &str| format!("{s}.default.svc.cluster.local:9080/*");
    // Called straight at its sidecar (no service name in `Host`), productpage's span
    // names the port its app listens on.
    let page_port = spans
        .iter()
        .find_map(|g| {
            g.span
                .name
                .strip_prefix("productpage.default.svc.cluster.local:")
        })
        .unwrap_or("?");
    let page = find(
        spans,
        "productpage",
        SpanKind::Server,
        &format!("productpage.default.svc.cluster.local:{page_port}"),
    );
    assert_eq!(page.parent_span_id, parent);
    for (caller, callee, caller_parent) in [
        ("productpage", "details", page.span_id.clone()),
        ("productpage", "reviews", page.span_id.clone()),
    ] {
        let client = find(spans, caller, SpanKind::Client, &host(callee));
        assert_eq!(client.parent_span_id, caller_parent, "{caller} → {callee}");
        let server = find(spans, callee, SpanKind::Server, &host(callee));
        assert_eq!(
            server.parent_span_id, client.span_id,
            "{callee} server span"
        );
    }
    let reviews = find(spans, "reviews", SpanKind::Server, &host("reviews"));
    let to_ratings = find(spans, "reviews", SpanKind::Client, &host("ratings"));
    assert_eq!(to_ratings.parent_span_id, reviews.span_id);
    let ratings = find(spans, "ratings", SpanKind::Server, &host("ratings"));
    assert_eq!(ratings.parent_span_id, to_ratings.span_id);

    // Envoy's and Istio's tags.
    let a = attrs(&to_ratings.attributes);
    assert_eq!(a["http.status_code"], "200");
    assert_eq!(a["http.method"], "GET");
    assert_eq!(a["response_flags"], "-");
    assert_eq!(a["component"], "proxy");
    assert_eq!(a["istio.canonical_service"], "reviews");
    assert_eq!(a["istio.canonical_revision"], "v3");
    assert!(
        a["node_id"].starts_with("sidecar~127.0.0.1~reviews-v3.default~"),
        "{a:?}"
    );
    assert_eq!(
        a["upstream_cluster"],
        "outbound|9080||ratings.default.svc.cluster.local"
    );
    assert!(
        a["http.url"].starts_with("http://ratings:9080/ratings/0"),
        "{a:?}"
    );
    assert!(a.contains_key("upstream_address") && a.contains_key("guid:x-request-id"));
    let a = attrs(&ratings.attributes);
    assert_eq!(a["istio.canonical_service"], "ratings");
    assert_eq!(a["peer.address"], "127.0.0.1");
    assert!(a["response_size"].parse::<u64>().unwrap() > 0, "{a:?}");
    assert!(!a.contains_key("error"));
}

const REVIEWS_V3: [&str; 2] = [
    "destination-rule-all.yaml",
    "virtual-service-reviews-v3.yaml",
];

#[tokio::test]
async fn a_sampled_traceparent_gives_one_trace_with_every_hop() {
    let c = collector().await;
    let mesh = Mesh::start_traced(&REVIEWS_V3, Some(settings(&c))).await;
    let url = format!(
        "http://127.0.0.1:{}/productpage",
        mesh.workload("productpage-v1").inbound
    );
    let resp = mesh
        .http
        .get(&url)
        .header("traceparent", format!("00-{TRACE}-{PARENT}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.text().await.unwrap().contains("glyphicon-star"));
    let spans = spans_of(&mesh, &c, &unhex(TRACE), 7).await;
    assert_eq!(spans.len(), 7, "one server and client span per call");
    check_tree(&spans, &unhex(PARENT));
    assert!(
        c.content_types
            .lock()
            .unwrap()
            .iter()
            .all(|t| t == "application/x-protobuf")
    );
}

#[tokio::test]
async fn b3_headers_alone_carry_the_trace_through_every_hop() {
    let c = collector().await;
    let mesh = Mesh::start_traced(&REVIEWS_V3, Some(settings(&c))).await;
    let url = format!(
        "http://127.0.0.1:{}/productpage",
        mesh.workload("productpage-v1").inbound
    );
    let resp = mesh
        .http
        .get(&url)
        .header("x-b3-traceid", TRACE)
        .header("x-b3-spanid", PARENT)
        .header("x-b3-sampled", "1")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let spans = spans_of(&mesh, &c, &unhex(TRACE), 7).await;
    check_tree(&spans, &unhex(PARENT));
}

#[tokio::test]
async fn unsampled_and_undecided_requests_export_nothing() {
    let c = collector().await;
    let mesh = Mesh::start_traced(&REVIEWS_V3, Some(settings(&c))).await;
    let url = format!(
        "http://127.0.0.1:{}/productpage",
        mesh.workload("productpage-v1").inbound
    );
    // The caller decided not to sample; and a request with no context starts a trace
    // only at this proxy's own ratio (0 here).
    let unsampled = format!("00-{TRACE}-{PARENT}-00");
    for req in [
        mesh.http.get(&url).header("traceparent", unsampled),
        mesh.http.get(&url),
    ] {
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
    // Then a sampled one, to know the exporters work and the earlier ones are done.
    let sampled = "00-11111111111111111111111111111111-2222222222222222-01";
    let resp = mesh
        .http
        .get(&url)
        .header("traceparent", sampled)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    spans_of(&mesh, &c, &unhex("11111111111111111111111111111111"), 7).await;
    let spans = c.spans.lock().unwrap().clone();
    assert!(
        spans
            .iter()
            .all(|g| hex(&g.span.trace_id) == "11111111111111111111111111111111"),
        "{spans:#?}"
    );
}
