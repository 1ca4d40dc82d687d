//! Destinations beyond the registry's clusters: the cluster of a route's destination,
//! falling back to a ServiceEntry's (external) cluster, and passthrough for hosts
//! nobody declared, forwarded as they are (Istio's `ALLOW_ANY` outbound policy).

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use http::request::Parts;
use http::{Request, Response, Uri};

use crate::http::body::{self, ProxyBody};
use crate::http::headers;
use crate::http::http1::DownstreamBody;
use crate::http::respond::LocalReply;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::snapshot::{ClusterError, ExternalTarget, Snapshot};
use crate::state::ProxyState;
use crate::upstream::cluster::{Cluster, ClusterKey};

/// How long resolving a ServiceEntry host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// The cluster for `key`: the registry's, else a ServiceEntry's. A subset nobody
/// defines is 503 `NC`, a host nobody declares 503 `UH`, and TLS the cluster cannot
/// originate 503 `UF`.
pub(super) async fn cluster(
    state: &ProxyState,
    snap: &Snapshot,
    key: &ClusterKey,
    ctx: &mut Ctx,
) -> Phase<Arc<Cluster>> {
    let cluster = match snap.cluster(key, state.mtls()) {
        Ok(c) => c,
        Err(e @ ClusterError::UnknownSubset { .. }) => {
            return ControlFlow::Break(ctx.local(LocalReply::NoCluster, &e.to_string()));
        }
        Err(e @ ClusterError::UnknownService(_)) => {
            match external_cluster(state, snap, key).await {
                Some(c) => c,
                None => {
                    return ControlFlow::Break(
                        ctx.local(LocalReply::NoHealthyUpstream, &e.to_string()),
                    );
                }
            }
        }
    };
    if let Some(error) = &cluster.tls_error {
        let cause = format!("TLS origination for {}: {error}", cluster.name);
        return ControlFlow::Break(ctx.local(LocalReply::ConnectFailure, &cause));
    }
    ControlFlow::Continue(cluster)
}

/// The cluster of a host declared by a ServiceEntry (outside the registry): its static
/// endpoints, or its name resolved now. Built once per configuration.
async fn external_cluster(
    state: &ProxyState,
    snap: &Snapshot,
    key: &ClusterKey,
) -> Option<Arc<Cluster>> {
    let addrs = match snap.external_target(key)? {
        ExternalTarget::Addrs(addrs) => addrs,
        ExternalTarget::Resolve(host, port) => {
            let resolved = tokio::time::timeout(
                RESOLVE_TIMEOUT,
                tokio::net::lookup_host((host.as_str(), port)),
            )
            .await;
            match resolved {
                Ok(Ok(addrs)) => addrs.collect(),
                Ok(Err(error)) => {
                    tracing::warn!(%host, %error, "Cannot resolve a ServiceEntry host.");
                    return None;
                }
                Err(_) => {
                    tracing::warn!(%host, "Resolving a ServiceEntry host timed out.");
                    return None;
                }
            }
        }
    };
    (!addrs.is_empty()).then(|| snap.external_cluster(key, addrs, state.mtls()))
}

/// A host outside the registry: forwarded as is, through the general-purpose client.
pub(super) async fn forward(
    state: &ProxyState,
    mut parts: Parts,
    body: DownstreamBody,
    authority: &str,
    path: &str,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    ctx.note_passthrough(authority);
    ctx.inject_trace(&mut parts.headers);
    let uri = match format!("http://{authority}{path}").parse::<Uri>() {
        Ok(u) => u,
        Err(_) => {
            return ctx.local(
                LocalReply::BadRequest,
                "the request's host is not a valid authority",
            );
        }
    };
    let mut req = Request::from_parts(parts, body::boxed(body));
    *req.uri_mut() = uri;
    match state.passthrough.request(req).await {
        Ok(resp) => {
            let (mut parts, body) = resp.into_parts();
            headers::strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body::boxed(body))
        }
        Err(e) if e.is_connect() => {
            ctx.note_upstream_failure(&e);
            ctx.local(
                LocalReply::ConnectFailure,
                &format!("connecting to {authority} failed"),
            )
        }
        Err(e) => {
            ctx.note_upstream_failure(&e);
            ctx.local(
                LocalReply::ConnectionTerminated,
                &format!("{authority} closed the connection"),
            )
        }
    }
}
