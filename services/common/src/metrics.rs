//! Prometheus metrics on `/metrics` for every service.
//!
//! Each service gets request counters and a latency histogram per route (the route
//! template, so ids do not explode the label set) and can register its own metrics,
//! such as productpage's `request_result_total`, before the registry is shared.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Content type of the OpenMetrics text exposition (Prometheus scrapes it natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets in seconds, from 0.5 ms to 10 s: Bookinfo's interesting times are
/// sub-millisecond answers, the 2.5 s / 3 s / 6 s timeouts and the 7 s delay.
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Labels of the per-route HTTP metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// Request method (unknown methods are folded into `other`).
    pub method: &'static str,
    /// Matched route template, or `unmatched`.
    pub route: String,
    /// Response status code.
    pub code: u16,
}

/// Per-route request metrics, cheap to clone into middleware.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<HttpLabels, Counter>,
    duration: Family<HttpLabels, Histogram>,
}

/// A service's metric registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: HttpMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the HTTP server metrics already registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = HttpMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
        };
        registry.register(
            "http_server_requests",
            "HTTP requests served, by route and status",
            http.requests.clone(),
        );
        registry.register(
            "http_server_request_duration_seconds",
            "Time to produce the response head, by route and status",
            http.duration.clone(),
        );
        Self { registry, http }
    }

    /// The registry, to add service-specific metrics before sharing.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The HTTP metrics handle for [`track`].
    pub fn http(&self) -> HttpMetrics {
        self.http.clone()
    }

    /// Renders the exposition text.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::with_capacity(4096);
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Router serving `GET /metrics`.
pub fn routes(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(render))
        .with_state(metrics)
}

async fn render(State(metrics): State<Arc<Metrics>>) -> Response {
    match metrics.encode() {
        Ok(body) => (
            [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
            body,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "metrics encoding failed").into_response(),
    }
}

/// Middleware counting every request by route and status. Add it with
/// `Router::layer(axum::middleware::from_fn_with_state(metrics.http(), track))` so the
/// matched route template is known.
pub async fn track(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let resp = next.run(req).await;
    let labels = HttpLabels {
        method,
        route,
        code: resp.status().as_u16(),
    };
    m.duration
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    m.requests.get_or_create(&labels).inc();
    resp
}

fn method_label(m: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt;

    #[tokio::test]
    async fn counts_requests_by_route_template() {
        let metrics = Metrics::new();
        let http = metrics.http();
        let metrics = Arc::new(metrics);
        let app = Router::new()
            .route("/items/{id}", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(http, track))
            .merge(routes(metrics.clone()));
        for id in ["1", "2"] {
            let resp = app
                .clone()
                .oneshot(
                    Request::get(format!("/items/{id}"))
                        .body(Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let text = metrics.encode().unwrap();
        assert!(
            text.contains(
                r#"http_server_requests_total{method="GET",route="/items/{id}",code="200"} 2"#
            ),
            "{text}"
        );
    }
}
