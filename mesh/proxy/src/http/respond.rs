//! Responses the proxy makes itself (instead of relaying the upstream's), in one place.
//! Each carries Envoy's body text, so what people have learned to recognise ("no healthy
//! upstream", "upstream request timeout") reads the same, plus an `x-mesh-error` header
//! naming the response flag and the cause, so `curl -v` explains a failure.

use http::{HeaderValue, Response, StatusCode, header};

use crate::http::body::{ProxyBody, full};
use crate::telemetry::flags::Flag;

/// Diagnostic header on every response the proxy produced itself.
pub const ERROR_HEADER: &str = "x-mesh-error";

/// Why the proxy answered by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalReply {
    /// No route matched (404 `NR`).
    NoRoute,
    /// The route names a subset no DestinationRule defines (503 `NC`).
    NoCluster,
    /// No endpoint is available (503 `UH`).
    NoHealthyUpstream,
    /// Connecting failed on the last attempt (503 `UF`).
    ConnectFailure,
    /// The connection broke before a response (503 `UC`).
    ConnectionTerminated,
    /// The circuit breaker refused the request (503 `UO`).
    Overflow,
    /// The route or per-try timeout fired (504 `UT`).
    Timeout,
    /// The client sent something we cannot forward (400).
    BadRequest,
}

impl LocalReply {
    /// Status, flag and body of this reply.
    pub fn parts(self) -> (StatusCode, Option<Flag>, &'static str) {
        match self {
            Self::NoRoute => (StatusCode::NOT_FOUND, Some(Flag::NoRouteFound), ""),
            Self::NoCluster => (
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                "no cluster for the route's subset",
            ),
            Self::NoHealthyUpstream => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Flag::NoHealthyUpstream),
                "no healthy upstream",
            ),
            Self::ConnectFailure => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Flag::UpstreamConnectionFailure),
                "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            ),
            Self::ConnectionTerminated => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Flag::UpstreamConnectionTermination),
                "upstream connect error or disconnect/reset before headers. reset reason: connection termination",
            ),
            Self::Overflow => (
                StatusCode::SERVICE_UNAVAILABLE,
                Some(Flag::UpstreamOverflow),
                "upstream connect error or disconnect/reset before headers. reset reason: overflow",
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                Some(Flag::UpstreamRequestTimeout),
                "upstream request timeout",
            ),
            Self::BadRequest => (StatusCode::BAD_REQUEST, None, "bad request"),
        }
    }

    /// The `RESPONSE_CODE_DETAILS` value for the access log.
    pub fn details(self) -> &'static str {
        match self {
            Self::NoRoute => "route_not_found",
            Self::NoCluster => "cluster_not_found",
            Self::NoHealthyUpstream => "no_healthy_upstream",
            Self::ConnectFailure => "upstream_reset_before_response_started{connection_failure}",
            Self::ConnectionTerminated => {
                "upstream_reset_before_response_started{connection_termination}"
            }
            Self::Overflow => "upstream_reset_before_response_started{overflow}",
            Self::Timeout => "response_timeout",
            Self::BadRequest => "bad_request",
        }
    }
}

/// Builds a local reply with a diagnostic header `x-mesh-error: <FLAG> <details>: <cause>`.
pub fn local(reply: LocalReply, cause: &str) -> Response<ProxyBody> {
    let (status, flag, body) = reply.parts();
    let diag = format!(
        "{} {}: {cause}",
        flag.map_or("-", Flag::code),
        reply.details()
    );
    text(status, body, &diag)
}

/// A plain-text response without the diagnostic header, for the answers whose body is
/// the whole explanation and is compared byte for byte by callers: the inbound RBAC
/// denial (`403 RBAC: access denied`) is exactly what Istio's sidecar sends.
pub(crate) fn plain(status: StatusCode, body: &'static str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    resp
}

/// A plain-text response with the diagnostic header.
pub fn text(status: StatusCode, body: &str, diagnostic: &str) -> Response<ProxyBody> {
    let mut resp = Response::new(full(body.to_owned()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Ok(v) = HeaderValue::from_str(&diagnostic.replace(['\r', '\n'], " ")) {
        resp.headers_mut().insert(ERROR_HEADER, v);
    }
    resp
}

/// Marks a response that must not be sent: the listener closes the connection instead
/// (a fault lease's reset or blackhole), as a peer that reset the connection would.
#[derive(Debug, Clone, Copy)]
pub struct Hangup;

/// The error hyper's listener answers a [`Hangup`] with, so that it sends nothing.
#[derive(Debug, Clone, Copy)]
pub struct HungUp;

impl std::fmt::Display for HungUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection cut by fault injection")
    }
}

impl std::error::Error for HungUp {}

/// A response the listener turns into a closed connection (an HTTP/2 stream reset).
/// Should a path ever send it anyway, it is a `502` whose body fails at once.
pub fn hangup() -> Response<ProxyBody> {
    let mut resp = Response::new(crate::http::body::boxed(crate::http::body::Severed));
    *resp.status_mut() = StatusCode::BAD_GATEWAY;
    resp.extensions_mut().insert(Hangup);
    resp
}
