//! The route's action: forward to one of its weighted destinations, or answer right
//! away with a redirect or a direct response (Envoy's `direct_response`).

use std::ops::ControlFlow;

use http::request::Parts;
use http::{HeaderValue, Response, StatusCode, header};
use mesh_api::networking::virtual_service::{HttpDirectResponse, HttpRedirect};
use mesh_api::{CompiledRoute, RouteAction, WeightedDestination};

use crate::http::body::{self, ProxyBody};
use crate::http::respond::LocalReply;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::upstream::cluster::ClusterKey;

/// The destination a forwarding route picks (by weight); the cluster it names goes to
/// `ctx.destination`. Any other action is the answer itself.
pub(super) fn destination<'r>(
    route: &'r CompiledRoute,
    parts: &Parts,
    authority: &str,
    ctx: &mut Ctx,
) -> Phase<&'r WeightedDestination> {
    let destinations = match &route.action {
        RouteAction::Forward(d) => d,
        RouteAction::Redirect(r) => return ControlFlow::Break(redirect(r, parts, authority, ctx)),
        RouteAction::DirectResponse(d) => return ControlFlow::Break(direct_response(d, ctx)),
        RouteAction::Delegate(_) => {
            return ControlFlow::Break(
                ctx.local(LocalReply::NoRoute, "delegated routes are not supported"),
            );
        }
    };
    let Some(dest) = destinations.pick(rand::random()) else {
        return ControlFlow::Break(ctx.local(
            LocalReply::NoRoute,
            "every destination of the route has weight 0",
        ));
    };
    let (_, authority_port) = mesh_api::host::split_authority(authority);
    let key = ClusterKey {
        host: dest.host.clone(),
        subset: dest.subset.clone(),
        port: dest
            .port
            .and_then(|p| u16::try_from(p).ok())
            .or(authority_port),
    };
    ctx.note_destination(key);
    ControlFlow::Continue(dest)
}

fn redirect(
    r: &HttpRedirect,
    parts: &Parts,
    authority: &str,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    let (host, port) = mesh_api::host::split_authority(authority);
    let host = r.authority.clone().unwrap_or_else(|| host.to_owned());
    let scheme = r.scheme.clone().unwrap_or_else(|| "http".to_owned());
    // A scheme's own port stays out of `Location` (`https://host/`, not `https://host:443/`).
    let port = r
        .port
        .or_else(|| port.map(u32::from))
        .filter(|p| !matches!((scheme.as_str(), p), ("http", 80) | ("https", 443)))
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = r.uri.clone().unwrap_or_else(|| {
        parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned()
    });
    let code = r
        .redirect_code
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .unwrap_or(StatusCode::MOVED_PERMANENTLY);
    ctx.note_details("direct_response");
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(&format!("{scheme}://{host}{port}{path}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn direct_response(d: &HttpDirectResponse, ctx: &mut Ctx) -> Response<ProxyBody> {
    ctx.note_details("direct_response");
    let text = d
        .body
        .as_ref()
        .and_then(|b| b.string.clone())
        .unwrap_or_default();
    let mut resp = Response::new(body::full(text));
    *resp.status_mut() = u16::try_from(d.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK);
    resp
}
