//! The embedded trace store: the control plane is an OTLP/HTTP receiver itself
//! (`POST /v1/traces`, protobuf, decoded with the OpenTelemetry protobuf definitions),
//! so `meshctl up` has traces with nothing else installed. It keeps the most recent
//! traces in memory under a byte budget (oldest trace out first) and answers queries
//! as JSON (`GET /api/traces`, `GET /api/traces/{trace_id}`).
//!
//! Spans are kept as they arrived, each one's protobuf encoding, and turned into JSON
//! views only when asked for, one trace at a time. Decoded, a proxy span is a map of
//! two dozen attributes, each a `String` key and a JSON value: about five times its
//! encoding once the allocator's share is counted. `scripts/bench-traces.sh` (120,000
//! spans, every trace sampled) measured the control plane's resident memory grow by
//! 44.6 MB for an 8 MB budget when spans were held decoded, and by 18.5 MB (8 MB budget)
//! and 13.5 MB (the default 4 MB) held encoded: the rest is the allocator's arenas and
//! the export bodies in flight.
//!
//! Any other OTLP backend (Jaeger, Tempo, an OpenTelemetry Collector) takes the store's
//! place by pointing the proxies' `OTEL_EXPORTER_OTLP_ENDPOINT` at it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde::Serialize;

/// The default budget in megabytes (`MESH_CONTROL_TRACE_STORE_MB`).
pub const DEFAULT_BUDGET_MB: u16 = 4;
/// The default budget in bytes.
pub const DEFAULT_BUDGET_BYTES: usize = DEFAULT_BUDGET_MB as usize * 1024 * 1024;

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

/// One span as held: the service that sent it and the span's protobuf encoding.
#[derive(Debug)]
struct StoredSpan {
    service: Arc<str>,
    encoded: Box<[u8]>,
}

/// What holding a span costs beyond its encoding: its `StoredSpan`, its share of the
/// service name and the allocator's header.
const SPAN_OVERHEAD: usize = std::mem::size_of::<StoredSpan>() + 16;
/// What holding a trace costs beyond its spans: its id twice (map key and eviction
/// queue), the map's entry and the spans' vector.
const TRACE_OVERHEAD: usize = 2 * (std::mem::size_of::<String>() + 32) + 64;

#[derive(Debug, Default)]
struct Stored {
    spans: Vec<StoredSpan>,
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

impl TraceStore {
    /// A store keeping at most about `budget` bytes of spans.
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes an OTLP/HTTP protobuf export body; gives the number of spans kept. A
    /// malformed span refuses the whole body and keeps none of it.
    pub fn ingest(&self, body: &[u8]) -> Result<usize, IngestError> {
        let req = wire::ExportRequest::decode(body)?;
        let mut arrived = Vec::new();
        for rs in req.resource_spans {
            let service: Arc<str> = rs
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| value(kv.value.as_ref()).as_str().map(Arc::from))
                .unwrap_or_else(|| Arc::from("unknown_service"));
            for encoded in rs.scope_spans.into_iter().flat_map(|ss| ss.spans) {
                // Decoded one at a time, to refuse a malformed span now rather than
                // drop it silently when it is shown.
                let id = hex(&Span::decode(encoded.as_slice())?.trace_id);
                arrived.push((id, Arc::clone(&service), encoded.into_boxed_slice()));
            }
        }
        let mut kept = 0;
        let mut inner = self.lock();
        for (id, service, encoded) in arrived {
            let bytes = encoded.len() + SPAN_OVERHEAD;
            if bytes + TRACE_OVERHEAD > self.budget {
                continue;
            }
            kept += 1;
            let new_trace = !inner.traces.contains_key(&id);
            if new_trace {
                inner.order.push_back(id.clone());
            }
            let stored = inner.traces.entry(id).or_default();
            stored.spans.push(StoredSpan { service, encoded });
            let added = bytes + if new_trace { TRACE_OVERHEAD } else { 0 };
            stored.bytes += added;
            inner.bytes += added;
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
    /// `service` when given. The store stays locked until the answer is dropped.
    pub fn recent<'a>(&'a self, service: Option<&'a str>, limit: usize) -> Recent<'a> {
        Recent {
            inner: self.lock(),
            service,
            limit,
        }
    }
}

/// An answer of [`TraceStore::recent`]. Each trace is decoded only while it is
/// written out: 500 traces decoded at once, attribute maps and all, took five times
/// the memory of the 500 held (measured with valgrind's massif), more than the store.
pub struct Recent<'a> {
    inner: MutexGuard<'a, Inner>,
    service: Option<&'a str>,
    limit: usize,
}

impl Recent<'_> {
    /// The traces, one decoded at a time.
    pub fn views(&self) -> impl Iterator<Item = TraceView> + '_ {
        let inner = &*self.inner;
        inner
            .order
            .iter()
            .rev()
            .filter_map(|id| Some((id, inner.traces.get(id)?)))
            .filter(|(_, t)| {
                self.service
                    .is_none_or(|s| t.spans.iter().any(|sp| &*sp.service == s))
            })
            .take(self.limit)
            .map(|(id, t)| view(id, t))
    }
}

impl Serialize for Recent<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.views())
    }
}

/// The JSON view of one span as it arrived.
fn span_view(service: &str, span: Span) -> SpanView {
    let (status, status_message) = match span.status {
        Some(s) if s.code == 2 => ("error", s.message),
        Some(s) if s.code == 1 => ("ok", s.message),
        Some(s) => ("unset", s.message),
        None => ("unset", String::new()),
    };
    let end = span.end_time_unix_nano.max(span.start_time_unix_nano);
    SpanView {
        trace_id: hex(&span.trace_id),
        span_id: hex(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty()).then(|| hex(&span.parent_span_id)),
        name: span.name,
        kind: kind(span.kind),
        service: service.to_owned(),
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
    }
}

fn view(id: &str, stored: &Stored) -> TraceView {
    // Every held span was encoded by `ingest` from a decoded one, so it decodes again.
    let mut spans: Vec<SpanView> = stored
        .spans
        .iter()
        .filter_map(|s| Some(span_view(&s.service, Span::decode(&*s.encoded).ok()?)))
        .collect();
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

/// The OTLP export request read only as deep as the store needs: each resource's
/// attributes, and each span left as its protobuf bytes. Decoding a whole batch (512
/// spans from a proxy) into `Span`s at once allocates thousands of small strings
/// that are freed right after; the allocator keeps that space fragmented between the
/// held spans, which `scripts/bench-traces.sh` saw as megabytes of resident memory
/// beyond the budget. Field numbers are those of `opentelemetry/proto/collector/
/// trace/v1` and `trace/v1`; fields not named here are skipped.
mod wire {
    use opentelemetry_proto::tonic::resource::v1::Resource;

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ExportRequest {
        #[prost(message, repeated, tag = "1")]
        pub(super) resource_spans: Vec<ResourceSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub(super) resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub(super) scope_spans: Vec<ScopeSpans>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(super) struct ScopeSpans {
        /// Each span's encoding (a length-delimited field, like any message).
        #[prost(bytes = "vec", repeated, tag = "2")]
        pub(super) spans: Vec<Vec<u8>>,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

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
        let recent: Vec<_> = store.recent(None, 10).views().collect();
        assert_eq!(recent[0].trace_id, "08".repeat(16), "most recent first");
        assert_eq!(store.recent(Some("reviews.default"), 10).views().count(), 1);
        let json = serde_json::to_value(store.recent(None, 1)).unwrap();
        assert_eq!(json, serde_json::to_value(&recent[..1]).unwrap());
        assert!(store.ingest(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn refuses_a_malformed_span_inside_a_good_batch() {
        // resource_spans { scope_spans { spans: <a truncated varint> } }
        let span = [0x10, 0xff];
        let scope = [&[0x12, span.len() as u8][..], &span].concat();
        let resource = [&[0x12, scope.len() as u8][..], &scope].concat();
        let request = [&[0x0a, resource.len() as u8][..], &resource].concat();
        let store = TraceStore::default();
        assert!(store.ingest(&request).is_err());
        assert_eq!(
            store.recent(None, 10).views().count(),
            0,
            "nothing half-kept"
        );
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
