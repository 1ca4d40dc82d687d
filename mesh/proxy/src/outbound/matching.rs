//! The first phases: which host a request is for (its authority, with the headers
//! normalised for the trip), and which of that host's routes takes it.

use std::ops::ControlFlow;

use http::request::Parts;
use http::{HeaderValue, Method, header, uri};
use mesh_api::matching::matches_any;
use mesh_api::{CompiledRoute, RequestInfo};

use crate::http::headers;
use crate::http::respond::LocalReply;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;

/// The authority a request is addressed to: a handle on the request's own bytes (both
/// kinds are shared, so taking one copies nothing), which outlives changes to the
/// request's headers.
#[derive(Debug, Clone)]
pub(crate) enum Authority {
    /// From an absolute-form URI.
    Uri(uri::Authority),
    /// From the `Host` header, checked to be text.
    Host(HeaderValue),
}

impl Authority {
    /// The authority as text.
    pub(crate) fn as_str(&self) -> &str {
        match self {
            Self::Uri(a) => a.as_str(),
            // Only text is taken (`authority_of`), so this is never empty for a reason
            // other than an empty header.
            Self::Host(v) => v.to_str().unwrap_or_default(),
        }
    }
}

/// The authority a request is addressed to: absolute-form URI first (an `HTTP_PROXY`
/// client), then the `Host` header (a gateway, or an app calling us directly).
pub(crate) fn authority_of(parts: &Parts) -> Option<Authority> {
    if let Some(a) = parts.uri.authority() {
        return Some(Authority::Uri(a.clone()));
    }
    parts
        .headers
        .get(header::HOST)
        .filter(|h| h.to_str().is_ok())
        .map(|h| Authority::Host(h.clone()))
}

/// The request's authority, with hop-by-hop headers gone, a request ID, and a `Host`
/// header (an absolute-form request may have none). 400 without one, or for a `CONNECT`
/// (only a sidecar tunnels; a gateway does not).
pub(super) fn authority(parts: &mut Parts, ctx: &mut Ctx) -> Phase<Authority> {
    if parts.method == Method::CONNECT {
        return ControlFlow::Break(
            ctx.local(LocalReply::BadRequest, "a gateway does not accept CONNECT"),
        );
    }
    let Some(authority) = authority_of(parts) else {
        return ControlFlow::Break(ctx.local(LocalReply::BadRequest, "the request names no host"));
    };
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::ensure_request_id(&mut parts.headers);
    ctx.note_request(authority.as_str(), &parts.headers);
    if !parts.headers.contains_key(header::HOST)
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, v);
    }
    ControlFlow::Continue(authority)
}

/// The first live route of the host whose `match` accepts the request (404 `NR` when
/// none does).
pub(super) fn route<'r>(
    routes: &'r [CompiledRoute],
    parts: &Parts,
    authority: &str,
    path: &str,
    ctx: &mut Ctx,
) -> Phase<&'r CompiledRoute> {
    let info = RequestInfo {
        method: parts.method.as_str(),
        scheme: "http",
        authority,
        path,
        // A plain http:// authority without a port addresses port 80 (`match: port: 80`).
        port: Some(mesh_api::host::split_authority(authority).1.unwrap_or(80)),
        headers: &parts.headers,
    };
    // Only routes on a lease (a fault from `meshctl`) need the clock.
    let live =
        |r: &CompiledRoute| r.expires_at_ms.is_none() || r.is_live(mesh_api::compile::now_ms());
    let Some(route) = routes
        .iter()
        .find(|r| live(r) && matches_any(&r.matches, &info))
    else {
        return ControlFlow::Break(ctx.local(
            LocalReply::NoRoute,
            &format!("no route for {authority}{path}"),
        ));
    };
    ctx.note_route(route);
    ControlFlow::Continue(route)
}
