//! Trace spans, the ones Envoy makes in Istio: a CLIENT span in the caller's sidecar
//! (outbound listener), a SERVER span in the callee's (inbound listener), and at the
//! gateway a SERVER span plus a CLIENT span for the upstream call (Envoy's
//! `spawn_upstream_span`). Names are Envoy's route decorators (`<host>:<port>/*`, or
//! the route's path match), tags are Envoy's and Istio's (`http.url`, `http.status_code`,
//! `upstream_cluster`, `response_flags`, `node_id`, `istio.canonical_service`,
//! `peer.address`, `request_size`, `response_size`, `error`, ...) with the OpenTelemetry
//! names alongside (`url.full`, `http.request.method`, `http.response.status_code`).
//! Retries, injected faults (with the fault lease's id), timeouts and circuit-breaker
//! rejections are span events.
//!
//! Spans are built directly with the OpenTelemetry SDK, not through `tracing` and
//! `tracing-opentelemetry`: a request's span lives across the phases and ends when the
//! response body ends (like its metrics), and the layer's per-span bookkeeping (a
//! `tracing` span, its extensions, an SDK span builder per span) would be paid on every
//! request for nothing the proxy uses. The sampling decision is taken here, before the
//! SDK is called: an unsampled request (99 % of them at Istio's default) gets random
//! ids and its `traceparent`, and no SDK span, context or attribute; with tracing off
//! ([`Settings`] absent, the default: no OTLP endpoint) nothing at all, one branch.
//!
//! Sampling is Istio's: 1 % of the traces that start here, and the caller's decision
//! for those that come with one (`parentbased_traceidratio` with 0.01), unless
//! `OTEL_TRACES_SAMPLER(_ARG)` say otherwise. Spans go out by OTLP/HTTP protobuf from
//! the SDK's batch processor, on its own thread.

pub mod propagation;

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http::{HeaderMap, Method, Version};
use opentelemetry::trace::{
    Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId,
    TraceState, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider, Span,
};

use crate::telemetry::flags::Flags;
use crate::telemetry::metrics::Workload;
use propagation::Incoming;

/// Istio's default sampling: 1 % (`PILOT_TRACE_SAMPLING` 1.0).
pub const ISTIO_DEFAULT_RATIO: f64 = 0.01;

/// How traces that start here are sampled.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSetting {
    /// Follow the caller's decision when one comes in.
    pub parent_based: bool,
    /// The share of traces sampled when this proxy decides (0 to 1).
    pub ratio: f64,
}

// Ratios are parsed as numbers from 0 to 1, never NaN.
impl Eq for SamplerSetting {}

impl Default for SamplerSetting {
    fn default() -> Self {
        Self {
            parent_based: true,
            ratio: ISTIO_DEFAULT_RATIO,
        }
    }
}

/// Tracing configuration, from the standard OpenTelemetry variables. Absent (no
/// endpoint, or `OTEL_TRACES_EXPORTER=none`) means tracing is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Where spans are posted (the full `.../v1/traces` URL).
    pub endpoint: String,
    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub sampler: SamplerSetting,
    /// `OTEL_SERVICE_NAME`; default `<app>.<namespace>` (Istio's
    /// `APP_LABEL_AND_NAMESPACE`).
    pub service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`.
    pub resource: Vec<(String, String)>,
    /// `OTEL_BSP_SCHEDULE_DELAY` (default 5 s): how long spans wait to go out in a batch.
    pub batch_delay: Duration,
}

/// A bad tracing variable: its name, value and what was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The variable.
    pub var: &'static str,
    /// Its value.
    pub value: String,
    /// What is expected.
    pub reason: &'static str,
}

impl Settings {
    /// Settings for `endpoint` with every other value at its default (tests, embedders).
    pub fn new(endpoint: impl Into<String>) -> Self {
        Self {
            endpoint: endpoint.into(),
            sampler: SamplerSetting::default(),
            service_name: None,
            resource: Vec::new(),
            batch_delay: Duration::from_secs(5),
        }
    }

    /// Reads the OpenTelemetry variables through `get`; `None` when tracing is off.
    pub fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Self>, SettingError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let bad = |var: &'static str, value: &str, reason: &'static str| SettingError {
            var,
            value: value.to_owned(),
            reason,
        };
        match var("OTEL_TRACES_EXPORTER").as_deref() {
            None | Some("otlp") => {}
            Some("none") => return Ok(None),
            Some(other) => {
                return Err(bad(
                    "OTEL_TRACES_EXPORTER",
                    other,
                    "expected otlp or none (spans go out by OTLP/HTTP)",
                ));
            }
        }
        let endpoint = match (
            var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
            var("OTEL_EXPORTER_OTLP_ENDPOINT"),
        ) {
            (Some(url), _) => {
                check_url(&url).map_err(|r| bad("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &url, r))?;
                url
            }
            (None, Some(base)) => {
                check_url(&base).map_err(|r| bad("OTEL_EXPORTER_OTLP_ENDPOINT", &base, r))?;
                format!("{}/v1/traces", base.trim_end_matches('/'))
            }
            (None, None) => return Ok(None),
        };
        for protocol in [
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ] {
            if let Some(p) = var(protocol) {
                if p != "http/protobuf" {
                    return Err(bad(
                        if protocol.contains("TRACES") {
                            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"
                        } else {
                            "OTEL_EXPORTER_OTLP_PROTOCOL"
                        },
                        &p,
                        "expected http/protobuf, the one protocol the proxy exports with",
                    ));
                }
                break;
            }
        }
        let arg = var("OTEL_TRACES_SAMPLER_ARG");
        let ratio = |default: f64| -> Result<f64, SettingError> {
            match &arg {
                None => Ok(default),
                Some(a) => a
                    .parse::<f64>()
                    .ok()
                    .filter(|r| (0.0..=1.0).contains(r))
                    .ok_or_else(|| {
                        bad("OTEL_TRACES_SAMPLER_ARG", a, "expected a ratio from 0 to 1")
                    }),
            }
        };
        let sampler = match var("OTEL_TRACES_SAMPLER").as_deref() {
            None => SamplerSetting {
                parent_based: true,
                ratio: ratio(ISTIO_DEFAULT_RATIO)?,
            },
            Some("always_on") => SamplerSetting {
                parent_based: false,
                ratio: 1.0,
            },
            Some("always_off") => SamplerSetting {
                parent_based: false,
                ratio: 0.0,
            },
            Some("traceidratio") => SamplerSetting {
                parent_based: false,
                ratio: ratio(1.0)?,
            },
            Some("parentbased_always_on") => SamplerSetting {
                parent_based: true,
                ratio: 1.0,
            },
            Some("parentbased_always_off") => SamplerSetting {
                parent_based: true,
                ratio: 0.0,
            },
            Some("parentbased_traceidratio") => SamplerSetting {
                parent_based: true,
                ratio: ratio(1.0)?,
            },
            Some(other) => {
                return Err(bad(
                    "OTEL_TRACES_SAMPLER",
                    other,
                    "expected always_on, always_off, traceidratio, parentbased_always_on, \
                     parentbased_always_off or parentbased_traceidratio",
                ));
            }
        };
        let resource = match var("OTEL_RESOURCE_ATTRIBUTES") {
            None => Vec::new(),
            Some(list) => parse_resource(&list).ok_or_else(|| {
                bad(
                    "OTEL_RESOURCE_ATTRIBUTES",
                    &list,
                    "expected comma-separated key=value pairs",
                )
            })?,
        };
        let batch_delay = match var("OTEL_BSP_SCHEDULE_DELAY") {
            None => Duration::from_secs(5),
            Some(ms) => ms.parse::<u64>().map(Duration::from_millis).map_err(|_| {
                bad(
                    "OTEL_BSP_SCHEDULE_DELAY",
                    &ms,
                    "expected milliseconds, such as 5000",
                )
            })?,
        };
        Ok(Some(Self {
            endpoint,
            sampler,
            service_name: var("OTEL_SERVICE_NAME"),
            resource,
            batch_delay,
        }))
    }
}

fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(r) if !r.is_empty() && !r.starts_with('/') => Ok(()),
        _ => Err("expected an http:// or https:// URL such as http://127.0.0.1:4318"),
    }
}

/// `k=v,k2=v2`, values percent-decoded (the Resource SDK's encoding).
fn parse_resource(list: &str) -> Option<Vec<(String, String)>> {
    list.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_owned(), percent_decode(v.trim())))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the trace exporter: {0}")]
pub struct StartError(String);

/// The proxy's tracer: the SDK provider and what every span of this proxy carries.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    sampler: SamplerSetting,
    /// `component`, `node_id` and the `istio.*` tags.
    common: Vec<KeyValue>,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("sampler", &self.sampler)
            .finish_non_exhaustive()
    }
}

impl Tracing {
    /// Starts the exporter for `settings`. `me` is this proxy's workload, `ip` its
    /// address (for `node_id`), `gateway` its mode.
    pub fn start(
        settings: &Settings,
        me: &Workload,
        ip: IpAddr,
        gateway: bool,
    ) -> Result<Self, StartError> {
        // reqwest's TLS needs a process-wide provider even for plain-HTTP collectors.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A blocking client cannot be built (nor dropped) on a runtime thread; proxy
        // settings are ignored so an `HTTP_PROXY` never routes spans through a sidecar.
        let client = std::thread::Builder::new()
            .name("otlp-client".into())
            .spawn(|| {
                reqwest::blocking::Client::builder()
                    .no_proxy()
                    .timeout(Duration::from_secs(10))
                    .build()
            })
            .map_err(|e| StartError(e.to_string()))?
            .join()
            .map_err(|_| StartError("the HTTP client could not be built".into()))?
            .map_err(|e| StartError(e.to_string()))?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(settings.endpoint.clone())
            .build()
            .map_err(|e| StartError(e.to_string()))?;
        let batch = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_scheduled_delay(settings.batch_delay)
                    .build(),
            )
            .build();
        let service = settings
            .service_name
            .clone()
            .or_else(|| {
                settings
                    .resource
                    .iter()
                    .find(|(k, _)| k == "service.name")
                    .map(|(_, v)| v.clone())
            })
            .unwrap_or_else(|| {
                let app = if me.app == "unknown" {
                    &me.workload
                } else {
                    &me.app
                };
                format!("{app}.{}", me.namespace)
            });
        let resource = Resource::builder_empty()
            .with_attributes(
                settings
                    .resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .with_service_name(service)
            .build();
        // Every span the SDK is asked for is one `Tracing::samples` chose.
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_sampler(Sampler::AlwaysOn)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("mesh-proxy");
        let node_id = format!(
            "{}~{ip}~{}.{ns}~{ns}.svc.cluster.local",
            if gateway { "router" } else { "sidecar" },
            me.workload,
            ns = me.namespace
        );
        let canonical = if me.app == "unknown" {
            me.workload.clone()
        } else {
            me.app.clone()
        };
        let revision = if me.version == "unknown" {
            "latest".to_owned()
        } else {
            me.version.clone()
        };
        let common = vec![
            KeyValue::new("component", "proxy"),
            KeyValue::new("node_id", node_id),
            KeyValue::new("istio.canonical_service", canonical),
            KeyValue::new("istio.canonical_revision", revision),
            KeyValue::new("istio.namespace", me.namespace.clone()),
            KeyValue::new("istio.mesh_id", "unknown"),
            KeyValue::new("istio.cluster_id", me.cluster.clone()),
        ];
        Ok(Self {
            provider,
            tracer,
            sampler: settings.sampler,
            common,
        })
    }

    /// Sends the spans still waiting in the batch (blocks: call it off the runtime's
    /// threads, with `spawn_blocking`).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Flushes and stops the exporter (blocks, like [`Self::flush`]).
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }

    /// The span of a request arriving at this hop: SERVER for the inbound listener and
    /// the gateway (which adds its upstream CLIENT span), CLIENT for a sidecar's
    /// outbound listener. `req` is what the span needs to know of the request.
    pub(crate) fn start_hop(&self, kind: HopKind, req: RequestInfo<'_>) -> HopSpan {
        let mut incoming = propagation::extract(req.headers);
        if incoming.deferred
            && let Some(p) = &incoming.parent
        {
            // B3 left the decision to us: decide as for a trace starting here.
            let sampled = self.sampler.ratio >= 1.0
                || (self.sampler.ratio > 0.0 && rand::random::<f64>() < self.sampler.ratio);
            let flags = if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::NOT_SAMPLED
            };
            incoming.parent = Some(SpanContext::new(
                p.trace_id(),
                p.span_id(),
                flags,
                true,
                p.trace_state().clone(),
            ));
        }
        let parent = incoming.parent.as_ref();
        let trace_id = parent.map_or_else(random_trace_id, SpanContext::trace_id);
        if !self.samples(parent, trace_id) {
            // Only the ids travel on, with the decision, so the next hops agree.
            let state = parent.map(|p| p.trace_state().clone()).unwrap_or_default();
            let unsampled = |state: TraceState| {
                SpanContext::new(
                    trace_id,
                    random_span_id(),
                    TraceFlags::NOT_SAMPLED,
                    false,
                    state,
                )
            };
            let upstream_cx = (kind == HopKind::Gateway).then(|| unsampled(state.clone()));
            return HopSpan {
                incoming,
                outer_cx: unsampled(state),
                upstream_cx,
                spans: None,
            };
        }
        let parent_cx = match parent {
            Some(p) => Context::new().with_remote_span_context(p.clone()),
            None => Context::new(),
        };
        let span_kind = match kind {
            HopKind::SidecarOutbound => SpanKind::Client,
            HopKind::Inbound | HopKind::Gateway => SpanKind::Server,
        };
        let outer = self
            .tracer
            .span_builder(default_name(kind))
            .with_kind(span_kind)
            .start_with_context(&self.tracer, &parent_cx);
        let upstream = (kind == HopKind::Gateway).then(|| {
            let cx = Context::new().with_remote_span_context(outer.span_context().clone());
            self.tracer
                .span_builder(default_name(kind))
                .with_kind(SpanKind::Client)
                .start_with_context(&self.tracer, &cx)
        });
        let mut hop = HopSpan {
            incoming,
            outer_cx: outer.span_context().clone(),
            upstream_cx: upstream.as_ref().map(|u| u.span_context().clone()),
            spans: Some(Spans { outer, upstream }),
        };
        if let Some(spans) = &mut hop.spans {
            let url = req.url();
            let mut attrs = self.common.clone();
            attrs.extend([
                KeyValue::new("http.url", url.clone()),
                KeyValue::new("url.full", url),
                KeyValue::new("http.method", req.method.as_str().to_owned()),
                KeyValue::new("http.request.method", req.method.as_str().to_owned()),
                KeyValue::new("http.protocol", protocol(req.version)),
            ]);
            if let Some(u) = &mut spans.upstream {
                u.set_attributes(attrs.iter().cloned());
            }
            let header = |name: &str| {
                req.headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned()
            };
            let user_agent = header("user-agent");
            attrs.extend([
                KeyValue::new(
                    "downstream_cluster",
                    header("x-envoy-downstream-service-cluster"),
                ),
                KeyValue::new("user_agent", user_agent.clone()),
                KeyValue::new("user_agent.original", user_agent),
                KeyValue::new("peer.address", req.remote.ip().to_string()),
                KeyValue::new("network.peer.address", req.remote.ip().to_string()),
            ]);
            if let Some(peer) = req.peer {
                attrs.push(KeyValue::new("peer.principal", peer.to_owned()));
            }
            spans.outer.set_attributes(attrs);
        }
        hop
    }

    /// The sampling decision for a hop whose trace is `trace`: the caller's when one
    /// came in and the sampler follows parents, else the ratio, by trace id as the
    /// SDK's `TraceIdRatioBased` decides (so hops that decide alone agree on a trace).
    fn samples(&self, parent: Option<&SpanContext>, trace: TraceId) -> bool {
        match parent {
            Some(p) if self.sampler.parent_based => p.is_sampled(),
            _ => ratio_samples(self.sampler.ratio, trace),
        }
    }
}

/// OpenTelemetry's `TraceIdRatioBased`: the trace id's low 63 bits against the ratio.
fn ratio_samples(ratio: f64, trace: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    let bound = (ratio.max(0.0) * (1u64 << 63) as f64) as u64;
    let low = (u128::from_be_bytes(trace.to_bytes()) as u64) >> 1;
    low < bound
}

fn random_trace_id() -> TraceId {
    loop {
        let id = rand::random::<u128>();
        if id != 0 {
            return TraceId::from(id);
        }
    }
}

fn random_span_id() -> SpanId {
    loop {
        let id = rand::random::<u64>();
        if id != 0 {
            return SpanId::from(id);
        }
    }
}

/// The SERVER span of a request arriving at a sidecar's inbound listener for the
/// service `host` (its app on `app_port`), written into the request's headers so the
/// app's calls are its children.
pub(crate) fn inbound<B>(
    tracing: &Tracing,
    req: &mut http::Request<B>,
    remote: SocketAddr,
    peer: Option<&str>,
    host: &str,
    app_port: u16,
) -> HopSpan {
    let mut hop = tracing.start_hop(
        HopKind::Inbound,
        RequestInfo {
            headers: req.headers(),
            method: req.method(),
            version: req.version(),
            target: req.uri(),
            remote,
            peer,
        },
    );
    if hop.recording() {
        // The service port the caller named (`reviews:9080`), as Istio's name has it;
        // the app's own port when the caller named an address instead.
        let port = req
            .headers()
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.rsplit_once(':'))
            .filter(|(name, _)| name.parse::<IpAddr>().is_err() && !name.starts_with('['))
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(app_port);
        hop.name(operation(host, Some(port), None));
        hop.upstream_cluster(format!("inbound|{app_port}||"));
        hop.attribute("upstream_address", format!("127.0.0.1:{app_port}"));
    }
    hop.inject(req.headers_mut());
    hop
}

fn protocol(v: Version) -> &'static str {
    match v {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Envoy's names for spans without a route decorator, until the route names them.
fn default_name(kind: HopKind) -> &'static str {
    match kind {
        HopKind::Inbound | HopKind::Gateway => "ingress",
        HopKind::SidecarOutbound => "egress",
    }
}

/// Which listener a span belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HopKind {
    /// A sidecar's inbound listener: SERVER.
    Inbound,
    /// A sidecar's outbound listener: CLIENT.
    SidecarOutbound,
    /// The gateway: SERVER, and CLIENT for the upstream call.
    Gateway,
}

/// What a span is told of the request that starts it.
pub(crate) struct RequestInfo<'a> {
    pub(crate) headers: &'a HeaderMap,
    pub(crate) method: &'a Method,
    pub(crate) version: Version,
    /// The request target as received (absolute for a forward-proxy request).
    pub(crate) target: &'a http::Uri,
    pub(crate) remote: SocketAddr,
    /// The peer's SPIFFE ID (inbound over mTLS).
    pub(crate) peer: Option<&'a str>,
}

impl RequestInfo<'_> {
    /// The full URL of the request, as Envoy's `http.url` tag has it.
    fn url(&self) -> String {
        if self.target.scheme().is_some() {
            return self.target.to_string();
        }
        let host = self
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| self.target.authority().map(|a| a.as_str()))
            .unwrap_or("");
        let path = self.target.path_and_query().map_or("/", |p| p.as_str());
        format!("http://{host}{path}")
    }
}

/// One request's span(s) at this hop, until its response ends.
pub(crate) struct HopSpan {
    incoming: Incoming,
    /// This hop's span: SERVER (inbound, gateway) or CLIENT (sidecar outbound).
    outer_cx: SpanContext,
    /// The gateway's upstream CLIENT span, child of the outer one.
    upstream_cx: Option<SpanContext>,
    /// The SDK's spans when the trace is sampled; `None` when not (only the ids exist).
    spans: Option<Spans>,
}

/// A sampled hop's spans, exported when they end.
struct Spans {
    outer: Span,
    upstream: Option<Span>,
}

impl Spans {
    /// The span the next hop's context comes from (and events go to).
    fn inner(&mut self) -> &mut Span {
        self.upstream.as_mut().unwrap_or(&mut self.outer)
    }
}

impl std::fmt::Debug for HopSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HopSpan")
            .field("context", &self.outer_cx)
            .field("recording", &self.spans.is_some())
            .finish_non_exhaustive()
    }
}

impl HopSpan {
    /// Whether the spans are sampled (notes are skipped otherwise).
    pub(crate) fn recording(&self) -> bool {
        self.spans.is_some()
    }

    /// Names the spans (Envoy's route decorator operation).
    pub(crate) fn name(&mut self, name: String) {
        let Some(spans) = &mut self.spans else {
            return;
        };
        if let Some(u) = &mut spans.upstream {
            u.update_name(name.clone());
        }
        spans.outer.update_name(name);
    }

    /// Adds an attribute to every span of the hop.
    pub(crate) fn attribute(&mut self, key: &'static str, value: impl Into<Value>) {
        let Some(spans) = &mut self.spans else {
            return;
        };
        let kv = KeyValue::new(key, value);
        if let Some(u) = &mut spans.upstream {
            u.set_attribute(kv.clone());
        }
        spans.outer.set_attribute(kv);
    }

    /// The cluster the request goes to (`outbound|9080|v1|reviews...`).
    pub(crate) fn upstream_cluster(&mut self, cluster: String) {
        self.attribute("upstream_cluster.name", cluster.clone());
        self.attribute("upstream_cluster", cluster);
    }

    /// The endpoint an attempt goes to: `upstream_address`, and the upstream span's
    /// `peer.address`.
    pub(crate) fn upstream_address(&mut self, addr: SocketAddr) {
        let Some(spans) = &mut self.spans else {
            return;
        };
        spans
            .outer
            .set_attribute(KeyValue::new("upstream_address", addr.to_string()));
        if let Some(u) = &mut spans.upstream {
            u.set_attribute(KeyValue::new("upstream_address", addr.to_string()));
            u.set_attribute(KeyValue::new("peer.address", addr.ip().to_string()));
        }
    }

    /// An event on the hop's innermost span (a retry, a fault, a timeout).
    pub(crate) fn event(&mut self, name: &'static str, attributes: Vec<KeyValue>) {
        if let Some(spans) = &mut self.spans {
            spans.inner().add_event(Cow::Borrowed(name), attributes);
        }
    }

    /// Writes the hop's context into the request going on, so the next hop is a child
    /// of it (for every request, sampled or not: the decision travels too).
    pub(crate) fn inject(&mut self, headers: &mut HeaderMap) {
        if self.recording()
            && let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok())
        {
            let id = id.to_owned();
            self.attribute("guid:x-request-id", id);
        }
        let parent = match &self.upstream_cx {
            Some(_) => Some(self.outer_cx.span_id()),
            None => self.incoming.parent.as_ref().map(SpanContext::span_id),
        };
        let inner = self.upstream_cx.as_ref().unwrap_or(&self.outer_cx);
        propagation::inject(headers, inner, parent, &self.incoming);
    }

    /// Writes this hop's trace and span ids into its access-log entry.
    pub(crate) fn log_ids(&self, log: &mut crate::telemetry::access_log::Entry) {
        let sc = &self.outer_cx;
        if sc.is_valid() {
            log.trace_id = sc.trace_id().to_string();
            log.span_id = sc.span_id().to_string();
        }
    }

    /// Ends the spans with the response: its status (0: none), flags and sizes.
    pub(crate) fn finish(self, code: u16, flags: &Flags, request: u64, response: u64) {
        let Some(mut spans) = self.spans else {
            return;
        };
        let error = code == 0 || code >= 500;
        let mut attrs = vec![
            KeyValue::new("http.status_code", i64::from(code)),
            KeyValue::new("http.response.status_code", i64::from(code)),
            KeyValue::new("response_flags", flags.to_string()),
            KeyValue::new("request_size", request as i64),
            KeyValue::new("response_size", response as i64),
        ];
        if error {
            attrs.push(KeyValue::new("error", true));
        }
        let status = if error {
            Status::error(format!("{code} {flags}"))
        } else {
            Status::Unset
        };
        if let Some(u) = &mut spans.upstream {
            u.set_attributes(attrs.iter().cloned());
            u.set_status(status.clone());
            u.end();
        }
        spans.outer.set_attributes(attrs);
        spans.outer.set_status(status);
        spans.outer.end();
    }
}

/// The lease id of a route a fault lease added (its name is `<lease id>-<route>`).
pub(crate) fn lease_id(route_name: Option<&str>, leased: bool) -> Option<&str> {
    let name = route_name?;
    if !leased {
        return None;
    }
    // Lease ids are `f-<n>`.
    let rest = name.strip_prefix("f-")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    (digits > 0).then(|| &name[..2 + digits])
}

/// A route's operation name: `<host>:<port><path>`, the path being `/*`, `<prefix>*`,
/// the exact path or the regex of its first URI match (istiod's route decorator).
pub(crate) fn operation(
    host: &str,
    port: Option<u16>,
    uri: Option<&mesh_api::StringMatch>,
) -> String {
    let port = port.unwrap_or(80);
    let path: Cow<'_, str> = match uri {
        Some(m) if m.exact.is_some() => Cow::Borrowed(m.exact.as_deref().unwrap_or("/")),
        Some(m) if m.prefix.is_some() => {
            Cow::Owned(format!("{}*", m.prefix.as_deref().unwrap_or("/")))
        }
        Some(m) if m.regex.is_some() => {
            Cow::Borrowed(m.regex.as_ref().map_or("/*", |r| r.as_str()))
        }
        _ => Cow::Borrowed("/*"),
    };
    format!("{host}:{port}{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Option<Settings>, SettingError> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(&|k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()))
    }

    #[test]
    fn off_without_an_endpoint() {
        assert_eq!(settings(&[]).unwrap(), None);
        assert_eq!(
            settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none")
            ])
            .unwrap(),
            None
        );
    }

    #[test]
    fn endpoints_follow_the_spec() {
        let base = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318/x/")])
            .unwrap()
            .unwrap();
        assert_eq!(base.endpoint, "http://c:4318/x/v1/traces");
        assert_eq!(base.sampler, SamplerSetting::default());
        let traces = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:1/spans"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(traces.endpoint, "http://t:1/spans");
        let e = settings(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "c:4318")]).unwrap_err();
        assert_eq!(e.var, "OTEL_EXPORTER_OTLP_ENDPOINT");
    }

    #[test]
    fn samplers_and_resources() {
        let s = settings(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_TRACES_SAMPLER", "parentbased_traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.25"),
            ("OTEL_SERVICE_NAME", "edge"),
            (
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment=demo,team=a%2Cb",
            ),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            s.sampler,
            SamplerSetting {
                parent_based: true,
                ratio: 0.25
            }
        );
        assert_eq!(s.service_name.as_deref(), Some("edge"));
        assert_eq!(s.resource[1], ("team".to_owned(), "a,b".to_owned()));
        for (var, value) in [
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_TRACES_SAMPLER_ARG", "2"),
            ("OTEL_RESOURCE_ATTRIBUTES", "novalue"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ] {
            let e = settings(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                (var, value),
            ])
            .unwrap_err();
            assert_eq!(e.var, var);
        }
    }

    #[test]
    fn the_access_log_gets_the_ids_of_the_span_the_hop_sends_on() {
        let tracing = tracer(
            SamplerSetting {
                parent_based: true,
                ratio: 0.0,
            },
            false,
        );
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let mut req = http::Request::builder()
            .uri("/reviews/0")
            .header("traceparent", format!("00-{trace}-00f067aa0ba902b7-01"))
            .body(())
            .unwrap();
        let remote = SocketAddr::from(([127, 0, 0, 1], 40000));
        let hop = inbound(&tracing, &mut req, remote, None, "reviews", 9080);
        let mut entry = crate::telemetry::access_log::Entry::default();
        hop.log_ids(&mut entry);
        assert_eq!(entry.trace_id, trace);
        assert_eq!(entry.span_id.len(), 16);
        assert_ne!(entry.span_id, "00f067aa0ba902b7");
        // The span id logged is the one the app sees as its parent.
        let sent = req.headers()["traceparent"].to_str().unwrap();
        assert_eq!(sent, format!("00-{trace}-{}-01", entry.span_id));
        hop.finish(200, &Flags::none(), 0, 0);
    }

    fn tracer(sampler: SamplerSetting, gateway: bool) -> Tracing {
        let settings = Settings {
            sampler,
            // Nothing is exported: the spans are only looked at.
            ..Settings::new("http://127.0.0.1:9/v1/traces")
        };
        Tracing::start(
            &settings,
            &Workload::unknown(),
            IpAddr::from([127, 0, 0, 1]),
            gateway,
        )
        .unwrap()
    }

    /// A GET of `target` from a local caller.
    fn get<'a>(headers: &'a HeaderMap, target: &'a http::Uri) -> RequestInfo<'a> {
        RequestInfo {
            headers,
            method: &Method::GET,
            version: Version::HTTP_11,
            target,
            remote: SocketAddr::from(([127, 0, 0, 1], 40000)),
            peer: None,
        }
    }

    #[test]
    fn ratio_decisions_are_the_sdks() {
        use opentelemetry_sdk::trace::ShouldSample;
        for ratio in [0.0, 0.01, 0.25, 0.5, 0.99, 1.0] {
            let sdk = Sampler::TraceIdRatioBased(ratio);
            let mut sampled = 0;
            for _ in 0..2000 {
                let trace = random_trace_id();
                let expected = sdk
                    .should_sample(None, trace, "s", &SpanKind::Server, &[], &[])
                    .decision
                    == opentelemetry_sdk::trace::SamplingDecision::RecordAndSample;
                assert_eq!(ratio_samples(ratio, trace), expected, "{ratio} {trace}");
                sampled += usize::from(expected);
            }
            // The draw is random: only the extremes are exact.
            if ratio == 0.0 {
                assert_eq!(sampled, 0);
            } else if ratio == 1.0 {
                assert_eq!(sampled, 2000);
            }
        }
    }

    #[test]
    fn an_unsampled_hop_sends_the_trace_and_the_decision_on() {
        let tracing = tracer(
            SamplerSetting {
                parent_based: true,
                ratio: 1.0,
            },
            true,
        );
        let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
        let parent = "00f067aa0ba902b7";
        let headers: HeaderMap = [
            (
                propagation::TRACEPARENT.clone(),
                http::HeaderValue::from_str(&format!("00-{trace}-{parent}-00")).unwrap(),
            ),
            (
                propagation::TRACESTATE.clone(),
                http::HeaderValue::from_static("congo=t61rcWkgMzE"),
            ),
        ]
        .into_iter()
        .collect();
        let uri = http::Uri::from_static("/productpage");
        let mut hop = tracing.start_hop(HopKind::Gateway, get(&headers, &uri));
        // The caller decided not to sample, and the sampler follows callers.
        assert!(!hop.recording());
        let mut next = headers.clone();
        hop.inject(&mut next);
        let sent = next["traceparent"].to_str().unwrap().to_owned();
        let fields: Vec<&str> = sent.split('-').collect();
        assert_eq!((fields[0], fields[1], fields[3]), ("00", trace, "00"));
        assert_ne!(fields[2], parent);
        assert_eq!(next["tracestate"], "congo=t61rcWkgMzE");
        // The gateway sends its upstream span on, not its outer one.
        let mut entry = crate::telemetry::access_log::Entry::default();
        hop.log_ids(&mut entry);
        assert_eq!(entry.trace_id, trace);
        assert_ne!(entry.span_id, fields[2]);
        hop.finish(200, &Flags::none(), 0, 0);

        // With no caller, a ratio of 1 samples every hop.
        let fresh = tracing.start_hop(HopKind::Inbound, get(&HeaderMap::new(), &uri));
        assert!(fresh.recording());
        // And a ratio of 0 none, while still starting a trace for the next hop.
        let none = tracer(
            SamplerSetting {
                parent_based: true,
                ratio: 0.0,
            },
            false,
        );
        let mut hop = none.start_hop(HopKind::SidecarOutbound, get(&HeaderMap::new(), &uri));
        assert!(!hop.recording());
        let mut next = HeaderMap::new();
        hop.inject(&mut next);
        let sent = next["traceparent"].to_str().unwrap();
        assert!(sent.starts_with("00-") && sent.ends_with("-00") && sent.len() == 55);
        assert!(!next.contains_key("tracestate"));
    }

    #[test]
    fn names_and_leases() {
        assert_eq!(
            operation("reviews.default.svc.cluster.local", Some(9080), None),
            "reviews.default.svc.cluster.local:9080/*"
        );
        let prefix = mesh_api::StringMatch::prefix("/static");
        assert_eq!(operation("p", Some(9080), Some(&prefix)), "p:9080/static*");
        assert_eq!(lease_id(Some("f-12-route"), true), Some("f-12"));
        assert_eq!(lease_id(Some("f-12-route"), false), None);
        assert_eq!(lease_id(Some("ratings"), true), None);
    }
}
