//! The embedded trace store: the control plane is an OTLP/HTTP receiver itself
//! (`POST /v1/traces`, protobuf, decoded with the OpenTelemetry protobuf definitions),
//! so `meshctl up` has traces with nothing else installed. It keeps the most recent
//! traces in memory under a byte budget (oldest trace out first) and answers queries
//! as JSON (`GET /api/traces`, `GET /api/traces/{trace_id}`).
//!
//! Any other OTLP backend (Jaeger, Tempo, an OpenTelemetry Collector) takes the store's
//! place by pointing the proxies' `OTEL_EXPORTER_OTLP_ENDPOINT` at it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde::Serialize;

/// The default budget: well under the 20 MB the store may take with its overhead.
pub const DEFAULT_BUDGET_BYTES: usize = 8 * 1024 * 1024;

/// Why an export request was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The body is not an OTLP `ExportTraceServiceRequest` in protobuf.
    #[error("the body is not an OTLP ExportTraceServiceRequest in protobuf: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// One span as the query API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SpanView {
    /// 32 hex digits.
    pub trace_id: String,
    /// 16 hex digits.
    pub span_id: String,
    /// 16 hex digits, absent for a root span.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_span_id: Option<String>,
    /// Operation name.
    pub name: String,
    /// `server`, `client`, `internal`, `producer`, `consumer` or `unspecified`.
    pub kind: &'static str,
    /// The `service.name` of the process that sent it.
    pub service: String,
    /// Start, nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// End, nanoseconds since the Unix epoch.
    pub end_time_unix_nano: u64,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// Span attributes (strings, numbers, booleans; others as their text).
    pub attributes: BTreeMap<String, serde_json::Value>,
    /// Events (retries, faults, timeouts, ...).
    pub events: Vec<EventView>,
    /// `ok`, `error` or `unset`.
    pub status: &'static str,
    /// The status message, if any.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status_message: String,
}

/// One span event.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    /// Event name.
    pub name: String,
    /// When, nanoseconds since the Unix epoch.
    pub time_unix_nano: u64,
    /// Its attributes.
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// One trace: its spans in start order.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TraceView {
    /// 32 hex digits.
    pub trace_id: String,
    /// The services its spans came from, sorted.
    pub services: Vec<String>,
    /// The earliest start, nanoseconds since the Unix epoch.
    pub start_time_unix_nano: u64,
    /// From the earliest start to the latest end, in milliseconds.
    pub duration_ms: f64,
    /// Spans whose status is an error.
    pub errors: usize,
    /// The spans, by start time.
    pub spans: Vec<SpanView>,
}

#[derive(Debug, Default)]
struct Inner {
    traces: HashMap<String, Stored>,
    /// Trace ids by first arrival: eviction order.
    order: VecDeque<String>,
    bytes: usize,
}

#[derive(Debug, Default)]
struct Stored {
    spans: Vec<SpanView>,
    bytes: usize,
}

/// Recent traces in memory, bounded by a byte budget.
#[derive(Debug)]
pub struct TraceStore {
    budget: usize,
    inner: Mutex<Inner>,
}

impl Default for TraceStore {
    fn default() -> Self {
        Self::new(DEFAULT_BUDGET_BYTES)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn value(v: Option<&AnyValue>) -> serde_json::Value {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone().into(),
        Some(any_value::Value::BoolValue(b)) => (*b).into(),
        Some(any_value::Value::IntValue(i)) => (*i).into(),
        Some(any_value::Value::DoubleValue(d)) => (*d).into(),
        Some(any_value::Value::ArrayValue(a)) => a
            .values
            .iter()
            .map(|v| value(Some(v)))
            .collect::<Vec<_>>()
            .into(),
        Some(other) => format!("{other:?}").into(),
        None => serde_json::Value::Null,
    }
}

fn attributes(kvs: &[KeyValue]) -> BTreeMap<String, serde_json::Value> {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value(kv.value.as_ref())))
        .collect()
}

fn kind(k: i32) -> &'static str {
    match SpanKind::try_from(k) {
        Ok(SpanKind::Server) => "server",
        Ok(SpanKind::Client) => "client",
        Ok(SpanKind::Internal) => "internal",
        Ok(SpanKind::Producer) => "producer",
        Ok(SpanKind::Consumer) => "consumer",
        _ => "unspecified",
    }
}

/// What a span costs in memory, roughly: its strings and a fixed overhead per field.
fn size(span: &SpanView) -> usize {
    let attrs = |a: &BTreeMap<String, serde_json::Value>| -> usize {
        a.iter()
            .map(|(k, v)| k.len() + v.as_str().map_or(16, str::len) + 64)
            .sum()
    };
    std::mem::size_of::<SpanView>()
        + span.trace_id.len()
        + span.span_id.len()
        + 16
        + span.name.len()
        + span.service.len()
        + span.status_message.len()
        + attrs(&span.attributes)
        + span
            .events
            .iter()
            .map(|e| std::mem::size_of::<EventView>() + e.name.len() + attrs(&e.attributes))
            .sum::<usize>()
}

impl TraceStore {
    /// A store keeping at most about `budget` bytes of spans.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes an OTLP/HTTP protobuf export body; gives the number of spans kept.
    pub fn ingest(&self, body: &[u8]) -> Result<usize, IngestError> {
        let req = ExportTraceServiceRequest::decode(body)?;
        let mut spans = Vec::new();
        for rs in req.resource_spans {
            let service = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| value(kv.value.as_ref()).as_str().map(str::to_owned))
                .unwrap_or_else(|| "unknown_service".to_owned());
            for span in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                let (status, status_message) = match span.status {
                    Some(s) if s.code == 2 => ("error", s.message),
                    Some(s) if s.code == 1 => ("ok", s.message),
                    Some(s) => ("unset", s.message),
                    None => ("unset", String::new()),
                };
                let end = span.end_time_unix_nano.max(span.start_time_unix_nano);
                spans.push(SpanView {
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: (!span.parent_span_id.is_empty())
                        .then(|| hex(&span.parent_span_id)),
                    name: span.name,
                    kind: kind(span.kind),
                    service: service.clone(),
                    start_time_unix_nano: span.start_time_unix_nano,
                    end_time_unix_nano: end,
                    duration_ms: (end - span.start_time_unix_nano) as f64 / 1e6,
                    attributes: attributes(&span.attributes),
                    events: span
                        .events
                        .iter()
                        .map(|e| EventView {
                            name: e.name.clone(),
                            time_unix_nano: e.time_unix_nano,
                            attributes: attributes(&e.attributes),
                        })
                        .collect(),
                    status,
                    status_message,
                });
            }
        }
        let kept = spans.len();
        let mut inner = self.lock();
        for span in spans {
            let bytes = size(&span);
            if bytes > self.budget {
                continue;
            }
            let id = span.trace_id.clone();
            if !inner.traces.contains_key(&id) {
                inner.order.push_back(id.clone());
            }
            let stored = inner.traces.entry(id).or_default();
            stored.spans.push(span);
            stored.bytes += bytes;
            inner.bytes += bytes;
        }
        while inner.bytes > self.budget {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(gone) = inner.traces.remove(&oldest) {
                inner.bytes -= gone.bytes;
            }
        }
        Ok(kept)
    }

    /// The bytes held now (by the store's own estimate).
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// One trace, if it is still held (`trace_id` in hex, any case).
    pub fn trace(&self, trace_id: &str) -> Option<TraceView> {
        let inner = self.lock();
        let stored = inner.traces.get(&trace_id.to_ascii_lowercase())?;
        Some(view(&trace_id.to_ascii_lowercase(), stored))
    }

    /// The most recent traces first, at most `limit`, only those with a span of
    /// `service` when given.
    pub fn recent(&self, service: Option<&str>, limit: usize) -> Vec<TraceView> {
        let inner = self.lock();
        inner
            .order
            .iter()
            .rev()
            .filter_map(|id| Some((id, inner.traces.get(id)?)))
            .filter(|(_, t)| service.is_none_or(|s| t.spans.iter().any(|sp| sp.service == s)))
            .take(limit)
            .map(|(id, t)| view(id, t))
            .collect()
    }
}

fn view(id: &str, stored: &Stored) -> TraceView {
    let mut spans = stored.spans.clone();
    spans.sort_by_key(|s| s.start_time_unix_nano);
    let start = spans.first().map_or(0, |s| s.start_time_unix_nano);
    let end = spans
        .iter()
        .map(|s| s.end_time_unix_nano)
        .max()
        .unwrap_or(start);
    let mut services: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    services.sort();
    services.dedup();
    TraceView {
        trace_id: id.to_owned(),
        services,
        start_time_unix_nano: start,
        duration_ms: end.saturating_sub(start) as f64 / 1e6,
        errors: spans.iter().filter(|s| s.status == "error").count(),
        spans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn body(service: &str, trace: u8, spans: usize) -> Vec<u8> {
        let spans = (0..spans)
            .map(|i| Span {
                trace_id: vec![trace; 16],
                span_id: vec![i as u8 + 1; 8],
                parent_span_id: if i == 0 { vec![] } else { vec![1; 8] },
                name: format!("op{i}"),
                kind: SpanKind::Server as i32,
                start_time_unix_nano: 1_000 + i as u64,
                end_time_unix_nano: 2_000_000 + i as u64,
                attributes: vec![KeyValue {
                    key: "http.status_code".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::IntValue(200)),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![KeyValue {
                        key: "service.name".into(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::StringValue(service.into())),
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
        .encode_to_vec()
    }

    #[test]
    fn keeps_and_shows_traces() {
        let store = TraceStore::default();
        assert_eq!(store.ingest(&body("reviews.default", 7, 2)).unwrap(), 2);
        store.ingest(&body("ratings.default", 8, 1)).unwrap();
        let t = store.trace(&"07".repeat(16)).unwrap();
        assert_eq!(t.spans.len(), 2);
        assert_eq!(
            t.spans[1].parent_span_id.as_deref(),
            Some("0101010101010101")
        );
        assert_eq!(t.spans[0].attributes["http.status_code"], 200);
        assert_eq!(t.services, ["reviews.default"]);
        let recent = store.recent(None, 10);
        assert_eq!(recent[0].trace_id, "08".repeat(16), "most recent first");
        assert_eq!(store.recent(Some("reviews.default"), 10).len(), 1);
        assert!(store.ingest(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn stays_within_its_budget() {
        let store = TraceStore::new(20_000);
        for t in 0..100u8 {
            store.ingest(&body("svc", t, 5)).unwrap();
            assert!(store.bytes() <= 20_000);
        }
        assert!(
            store.trace(&"00".repeat(16)).is_none(),
            "the oldest went first"
        );
        assert!(store.trace(&"63".repeat(16)).is_some(), "the newest stays");
    }
}
