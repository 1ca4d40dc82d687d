//! The admin listener (loopback only by default): health for probes, metrics for
//! Prometheus, Envoy's `/stats` lines of the local rate limits, a config dump for debugging, and `/quitquitquit` so a Job's last step or
//! a test can stop the proxy (Istio's pilot-agent has the same endpoint).

use std::sync::Arc;

use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use tokio::sync::watch;

use crate::http::body::{self, ProxyBody};
use crate::http::http1::DownstreamBody;
use crate::state::ProxyState;

/// Content type of the Prometheus text exposition.
const PROMETHEUS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Handles one admin request.
pub fn handle(
    state: &Arc<ProxyState>,
    req: &Request<DownstreamBody>,
    shutdown: &watch::Sender<bool>,
) -> Response<ProxyBody> {
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/ready" | "/healthz/ready") if state.is_ready() => {
            text(StatusCode::OK, "LIVE\n", "text/plain")
        }
        (&Method::GET, "/ready" | "/healthz/ready") => text(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: waiting for configuration\n",
            "text/plain",
        ),
        (&Method::GET, "/healthz") => text(StatusCode::OK, "ok\n", "text/plain"),
        (&Method::POST, "/quitquitquit") => {
            let _ = shutdown.send(true);
            text(StatusCode::OK, "OK\n", "text/plain")
        }
        (&Method::GET, "/stats/prometheus" | "/metrics") => {
            let mut out = String::with_capacity(16 * 1024);
            match prometheus_client::encoding::text::encode(&mut out, &state.registry) {
                Ok(()) => text(StatusCode::OK, &out, PROMETHEUS),
                Err(_) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "metrics encoding failed\n",
                    "text/plain",
                ),
            }
        }
        (&Method::GET, "/stats") => text(
            StatusCode::OK,
            &state.rate_limits.stats_text(),
            "text/plain",
        ),
        (&Method::GET, "/config_dump") => {
            let snap = state.store.load();
            let dump = serde_json::json!({
                "workload": state.me.workload,
                "snapshot": &*snap,
                "local_rate_limits": state.rate_limits.view(),
            });
            match serde_json::to_string_pretty(&dump) {
                Ok(s) => text(StatusCode::OK, &s, "application/json"),
                Err(e) => text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("{e}\n"),
                    "text/plain",
                ),
            }
        }
        (
            _,
            "/ready" | "/healthz/ready" | "/healthz" | "/stats/prometheus" | "/metrics" | "/stats"
            | "/config_dump" | "/quitquitquit",
        ) => text(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
            "text/plain",
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            "admin endpoints: /ready /healthz /stats/prometheus /stats /config_dump POST /quitquitquit\n",
            "text/plain",
        ),
    }
}

fn text(status: StatusCode, body: &str, content_type: &'static str) -> Response<ProxyBody> {
    let mut r = Response::new(body::full(body.to_owned()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}
