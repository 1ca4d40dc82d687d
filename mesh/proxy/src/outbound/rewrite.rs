//! Rewrite and header manipulation: the route's `rewrite` and the route's and the
//! destination's `headers` operations, on the request we send and on the response we
//! relay.

use http::request::Parts;
use http::{HeaderValue, Response, Uri, header};
use mesh_api::networking::virtual_service::HttpRewrite;
use mesh_api::{CompiledRoute, WeightedDestination};

use crate::http::body::ProxyBody;
use crate::http::headers;

/// The route's rewrite, then the route's and the destination's request header
/// operations, on the copy we send. `path` is the original path (the one matched).
pub(super) fn request(
    route: &CompiledRoute,
    dest: &WeightedDestination,
    parts: &mut Parts,
    path: &str,
) {
    if let Some(rw) = &route.rewrite {
        rewrite(rw, route, parts, path);
    }
    headers::apply(
        route.headers.as_ref().and_then(|h| h.request.as_ref()),
        &mut parts.headers,
    );
    headers::apply(
        dest.headers.as_ref().and_then(|h| h.request.as_ref()),
        &mut parts.headers,
    );
}

/// The route's and the destination's response header operations.
pub(super) fn response(
    route: &CompiledRoute,
    dest: &WeightedDestination,
    resp: &mut Response<ProxyBody>,
) {
    headers::apply(
        route.headers.as_ref().and_then(|h| h.response.as_ref()),
        resp.headers_mut(),
    );
    headers::apply(
        dest.headers.as_ref().and_then(|h| h.response.as_ref()),
        resp.headers_mut(),
    );
}

/// `rewrite.uri` replaces the matched prefix when the route matched by prefix, else the
/// whole path (keeping the query); `rewrite.authority` replaces the Host header.
fn rewrite(rw: &HttpRewrite, route: &CompiledRoute, parts: &mut Parts, path: &str) {
    if let Some(new) = &rw.uri {
        let prefix = route
            .matches
            .iter()
            .filter_map(|m| m.uri.as_ref().and_then(|u| u.prefix.clone()))
            .find(|p| path.starts_with(p.as_str()));
        let rewritten = match prefix {
            Some(p) => format!("{new}{}", &path[p.len()..]),
            // The whole path is replaced; the query string stays, as Envoy keeps it.
            None => match path.find('?') {
                Some(q) => format!("{new}{}", &path[q..]),
                None => new.clone(),
            },
        };
        if let Ok(pq) = rewritten.parse::<http::uri::PathAndQuery>() {
            let mut uri = parts.uri.clone().into_parts();
            uri.path_and_query = Some(pq);
            if let Ok(u) = Uri::from_parts(uri) {
                parts.uri = u;
            }
        }
    }
    if let Some(auth) = &rw.authority
        && let Ok(v) = HeaderValue::from_str(auth)
    {
        parts.headers.insert(header::HOST, v);
    }
}
