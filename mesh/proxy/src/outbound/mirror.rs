//! Mirroring: fire-and-forget copies of a request for the route's mirrors (buffered
//! bodies only; the answers are discarded). As Envoy does, a copy's `Host` carries the
//! suffix `-shadow` (`reviews:9080` becomes `reviews-shadow:9080`), so the mirror's logs
//! tell copies from live traffic.

use std::sync::Arc;

use http::request::Parts;
use http::{HeaderValue, Request, Uri, header};
use http_body_util::BodyExt;
use mesh_api::CompiledRoute;
use tokio::time::Instant;

use crate::http::body::{self, ProxyBody};
use crate::http::headers;
use crate::outbound::buffer::RequestBody;
use crate::snapshot::Snapshot;
use crate::state::ProxyState;
use crate::upstream::cluster::ClusterKey;

/// Sends the copies for the route's mirrors whose percentage comes up.
pub(super) fn send(
    state: &ProxyState,
    snap: &Arc<Snapshot>,
    route: &CompiledRoute,
    parts: &Parts,
    body: &RequestBody,
) {
    let RequestBody::Buffered(bytes) = body else {
        return;
    };
    for m in &route.mirrors {
        if m.percent < 100.0 && rand::random::<f64>() * 100.0 >= m.percent {
            continue;
        }
        let key = ClusterKey {
            host: m.destination.host.clone(),
            subset: m.destination.subset.clone(),
            port: None,
        };
        let Ok(cluster) = snap.cluster(&key, state.mtls()) else {
            continue;
        };
        let Some(endpoint) = cluster
            .balancer
            .pick(&cluster.endpoints, &[], Instant::now())
        else {
            continue;
        };
        let Ok(mut req) = mirrored_request(parts, body::full(bytes.clone())) else {
            continue;
        };
        if let Some(exchange) = state.exchange.as_ref().filter(|_| cluster.mesh) {
            exchange.insert_into(req.headers_mut());
        }
        let version = parts.version;
        tokio::spawn(async move {
            if let Ok(resp) = cluster.pool_for(version).send(endpoint.addr, req).await {
                let _ = resp.into_body().collect().await;
            }
        });
    }
}

/// A copy of the request for a mirror, which outlives the original (the pool turns it
/// into HTTP/1.1 or HTTP/2 form).
fn mirrored_request(parts: &Parts, body: ProxyBody) -> Result<Request<ProxyBody>, http::Error> {
    let path = parts
        .uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let mut req = Request::builder()
        .method(parts.method.clone())
        .uri(Uri::from(path))
        .body(body)?;
    *req.headers_mut() = parts.headers.clone();
    let shadow = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(shadow_host)
        .and_then(|h| HeaderValue::from_str(&h).ok());
    if let Some(host) = shadow {
        req.headers_mut().insert(header::HOST, host);
    }
    req.headers_mut().insert(
        headers::X_ENVOY_ATTEMPT_COUNT.clone(),
        HeaderValue::from_static("1"),
    );
    Ok(req)
}

/// `reviews:9080` → `reviews-shadow:9080`: Envoy's suffix goes on the host, before the port.
fn shadow_host(authority: &str) -> String {
    match mesh_api::host::split_authority(authority) {
        (host, Some(port)) if authority.starts_with('[') => format!("[{host}]-shadow:{port}"),
        (host, Some(port)) => format!("{host}-shadow:{port}"),
        (_, None) => format!("{authority}-shadow"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shadow_suffix_goes_before_the_port() {
        assert_eq!(super::shadow_host("reviews:9080"), "reviews-shadow:9080");
        assert_eq!(super::shadow_host("reviews"), "reviews-shadow");
        assert_eq!(
            super::shadow_host("reviews.default.svc.cluster.local:9080"),
            "reviews.default.svc.cluster.local-shadow:9080"
        );
    }
}
