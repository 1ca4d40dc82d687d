//! The services' own spans: a SERVER span for every request a service answers (child of
//! the caller's context, read from `traceparent` or B3) and a CLIENT span for every
//! call it makes (productpage to details, reviews and ratings; reviews to ratings;
//! details to the Google Books API), exported by OTLP/HTTP protobuf like the mesh's
//! proxies export theirs, from the same variables ([`settings`]).
//!
//! Spans are `tracing` spans bridged to the OpenTelemetry SDK by
//! `tracing-opentelemetry`, so a log line written while a span is current carries its
//! `trace_id` and `span_id` (see [`crate::telemetry`]). With tracing off (no endpoint,
//! the default) none of this runs: no exporter, no middleware in the router, and
//! [`client_span`] hands out `Span::none()`.
//!
//! The headers a service forwards are not touched: the Bookinfo contract copies them
//! verbatim, so a service's outbound calls carry its caller's context, and in a mesh
//! the caller's sidecar span (not this service's CLIENT span) is the parent of the next
//! sidecar's span. docs/tracing.md shows the tree this makes.

pub mod propagation;
pub mod settings;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use opentelemetry::trace::{SpanContext, TraceContextExt as _, TraceFlags, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Sampler, SdkTracer, SdkTracerProvider,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::registry::LookupSpan as _;

pub use settings::Settings;

/// Where the services' spans come from (`tracing` target and instrumentation scope).
pub const TARGET: &str = "bookinfo_common::trace";

/// Set once the exporter runs; read on every request to pick the cheap path.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether spans are being made (an exporter was started and installed).
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the trace exporter: {0}")]
pub struct StartError(String);

/// The running exporter. Keep it for the life of the process and call
/// [`Tracing::shutdown`] at the end so the last batch goes out.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    sampling: settings::Sampling,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("sampling", &self.sampling)
            .finish_non_exhaustive()
    }
}

impl Tracing {
    /// Starts the OTLP exporter for `settings`; `program` names the service when
    /// neither `OTEL_SERVICE_NAME` nor a `service.name` resource attribute does.
    pub fn start(settings: &Settings, program: &str) -> Result<Self, StartError> {
        crate::client::install_crypto_provider();
        // A blocking client can be neither built nor dropped on a runtime thread; proxy
        // variables are ignored so `HTTP_PROXY` (the sidecar) never carries the spans.
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
        let resource = Resource::builder_empty()
            .with_attributes(
                settings
                    .resource
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
            )
            .with_service_name(settings.service(program))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(batch)
            .with_sampler(sampler(settings.sampling))
            .with_resource(resource)
            .build();
        let tracer = provider.tracer(TARGET);
        Ok(Self {
            provider,
            tracer,
            sampling: settings.sampling,
        })
    }

    /// The SDK tracer the `tracing` layer writes to.
    pub(crate) fn tracer(&self) -> SdkTracer {
        self.tracer.clone()
    }

    /// Marks tracing on: from now on routers get the span middleware and calls get
    /// CLIENT spans. Called once the layer is installed.
    pub(crate) fn enable(&self) {
        // The B3 deferral needs the ratio at request time.
        let _ = SAMPLING.set(self.sampling);
        ENABLED.store(true, Ordering::Relaxed);
    }

    /// Sends the spans still waiting in the batch. Blocks: call it off the runtime's
    /// threads (`spawn_blocking`).
    pub fn flush(&self) {
        let _ = self.provider.force_flush();
    }

    /// Flushes and stops the exporter (blocks, like [`Self::flush`]).
    pub fn shutdown(&self) {
        let _ = self.provider.shutdown();
    }
}

static SAMPLING: std::sync::OnceLock<settings::Sampling> = std::sync::OnceLock::new();

fn sampler(s: settings::Sampling) -> Sampler {
    let root = if s.ratio >= 1.0 {
        Sampler::AlwaysOn
    } else if s.ratio <= 0.0 {
        Sampler::AlwaysOff
    } else {
        Sampler::TraceIdRatioBased(s.ratio)
    };
    if s.parent_based {
        Sampler::ParentBased(Box::new(root))
    } else {
        root
    }
}

/// The ids a log line carries: those of the span it was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogIds {
    pub(crate) trace_id: opentelemetry::trace::TraceId,
    pub(crate) span_id: opentelemetry::trace::SpanId,
}

/// Starts the OpenTelemetry span of `span` now and keeps its ids where the log
/// formatter finds them (the span's registry extensions).
pub(crate) fn remember_ids(span: &Span) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    if !sc.is_valid() {
        return;
    }
    let ids = LogIds {
        trace_id: sc.trace_id(),
        span_id: sc.span_id(),
    };
    span.with_subscriber(|(id, dispatch)| {
        if let Some(registry) = dispatch.downcast_ref::<tracing_subscriber::Registry>()
            && let Some(data) = registry.span(id)
        {
            data.extensions_mut().insert(ids);
        }
    });
}

/// The caller's context as the parent of a SERVER span. A B3 context without a
/// decision is decided here, as for a trace that starts here.
fn parent_context(headers: &http::HeaderMap) -> Option<Context> {
    let incoming = propagation::extract(headers)?;
    let mut parent = incoming.parent;
    if incoming.deferred {
        let ratio = SAMPLING.get().copied().unwrap_or_default().ratio;
        let sampled = ratio >= 1.0 || (ratio > 0.0 && rand::random::<f64>() < ratio);
        parent = SpanContext::new(
            parent.trace_id(),
            parent.span_id(),
            if sampled {
                TraceFlags::SAMPLED
            } else {
                TraceFlags::NOT_SAMPLED
            },
            true,
            parent.trace_state().clone(),
        );
    }
    Some(Context::new().with_remote_span_context(parent))
}

/// Axum middleware: the SERVER span of one request, named `<METHOD> <route>` (the
/// route template, so ids do not make every name unique), ended when the handler has
/// produced the response head.
pub async fn server_span(req: Request, next: Next) -> Response {
    // Scrapes and probes are not part of anyone's request.
    let path = req.uri().path();
    if path == "/metrics" || path == "/health" || path.starts_with("/health/") {
        return next.run(req).await;
    }
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let name = match &route {
        Some(r) => format!("{method} {r}"),
        None => method.clone(),
    };
    let span = tracing::info_span!(
        target: TARGET,
        "request",
        otel.name = %name,
        otel.kind = "server",
        http.request.method = %method,
        url.path = req.uri().path(),
        http.route = route.as_deref(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(parent) = parent_context(req.headers()) {
        // Only fails when the span is disabled, and then there is nothing to parent.
        let _ = span.set_parent(parent);
    }
    remember_ids(&span);
    let response = tracing::Instrument::instrument(next.run(req), span.clone()).await;
    let status = response.status().as_u16();
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("otel.status_code", "error");
    }
    response
}

/// Adds [`server_span`] to `router` when tracing is on; returns it untouched
/// otherwise. Call it last, so the span wraps every other layer and the fallback.
pub fn layer(router: axum::Router) -> axum::Router {
    if enabled() {
        router.layer(axum::middleware::from_fn(server_span))
    } else {
        router
    }
}

/// The CLIENT span of one outbound call (`GET` to `url`, the service `peer`), child
/// of the current span; `Span::none()` when tracing is off. Instrument the call's
/// future with it and [`record_status`] the answer.
pub fn client_span(method: &str, url: &str, peer: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: TARGET,
        "call",
        otel.name = method,
        otel.kind = "client",
        http.request.method = method,
        url.full = url,
        server.address = peer,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    remember_ids(&span);
    span
}

/// Writes the status of a call (`None`: no answer, with `error` saying why) on its
/// CLIENT span.
pub fn record_status(span: &Span, status: Option<u16>, error: Option<&str>) {
    if span.is_none() {
        return;
    }
    if let Some(code) = status {
        span.record("http.response.status_code", i64::from(code));
    }
    if status.is_none_or(|c| c >= 400) {
        span.record("otel.status_code", "error");
        span.record(
            "error.type",
            error.map_or_else(|| status.unwrap_or(0).to_string(), str::to_owned),
        );
    }
}
