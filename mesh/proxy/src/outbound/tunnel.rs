//! `CONNECT` tunnels through the outbound listener: an app (or `HTTP_PROXY` client) asks
//! for a raw TCP stream to `host:port`. A service in the registry is reached at one of
//! its endpoints (chosen by the cluster's balancer); any other host is dialled directly
//! (Istio's `ALLOW_ANY`). The bytes are copied both ways and counted in Istio's TCP
//! metrics (`istio_tcp_connections_opened_total`, `..._closed_total`, sent and received
//! bytes).

use std::sync::Arc;

use http::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::http::body::{self, ProxyBody};
use crate::http::http1::DownstreamBody;
use crate::http::respond::{self, LocalReply};
use crate::state::ProxyState;
use crate::telemetry::metrics::{
    DEFAULT_CLUSTER, IstioMetrics, LATEST, Reporter, Security, ServiceName, Workload,
};
use crate::upstream::cluster::ClusterKey;

/// Opens a tunnel for a `CONNECT` request; answers 200 once the upstream is connected.
pub async fn open(state: Arc<ProxyState>, mut req: Request<DownstreamBody>) -> Response<ProxyBody> {
    let Some(authority) = req.uri().authority().map(|a| a.as_str().to_owned()) else {
        return respond::local(LocalReply::BadRequest, "CONNECT needs host:port");
    };
    let snap = state.store.load();
    let host = mesh_api::host::authority_to_host(&authority, &snap.table.namespace);
    let (_, port) = mesh_api::host::split_authority(&authority);
    let (target, destination, service) = match snap.registry.service(&host) {
        Some(svc) => {
            let key = ClusterKey {
                host: host.clone(),
                subset: None,
                port,
            };
            let endpoint = snap.cluster(&key, None).ok().and_then(|c| {
                c.balancer
                    .pick(&c.endpoints, &[], tokio::time::Instant::now())
            });
            let Some(endpoint) = endpoint else {
                return respond::local(
                    LocalReply::NoHealthyUpstream,
                    &format!("no endpoint for {host}"),
                );
            };
            let known = |s: &str| if s.is_empty() { "unknown" } else { s }.to_owned();
            let meta = &endpoint.meta;
            let dest = Workload {
                workload: known(&meta.workload),
                namespace: svc.namespace.clone(),
                app: known(&meta.app),
                version: known(&meta.version),
                canonical_service: known(&meta.canonical_service),
                canonical_revision: if meta.canonical_revision.is_empty() {
                    LATEST.to_owned()
                } else {
                    meta.canonical_revision.clone()
                },
                cluster: DEFAULT_CLUSTER.to_owned(),
                ..Workload::unknown()
            };
            let name = ServiceName {
                host: host.clone(),
                name: svc.name.clone(),
                namespace: svc.namespace.clone(),
            };
            (endpoint.addr.to_string(), dest, name)
        }
        None => {
            let name = ServiceName {
                host: authority.clone(),
                name: authority.clone(),
                namespace: "unknown".to_owned(),
            };
            (authority.clone(), Workload::unknown(), name)
        }
    };
    let upstream = match TcpStream::connect(&target).await {
        Ok(s) => s,
        Err(e) => {
            return respond::local(
                LocalReply::ConnectFailure,
                &format!("connecting to {target}: {e}"),
            );
        }
    };
    let _ = upstream.set_nodelay(true);
    let labels = IstioMetrics::tcp_labels(
        Reporter::Source,
        &state.me,
        &destination,
        &service,
        Security::Unknown,
    );
    state.metrics.tcp_opened(&labels);
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let (mut upstream, metrics) = (upstream, state.metrics.clone());
        match upgrade.await {
            Ok(upgraded) => {
                let mut downstream = TokioIo::new(upgraded);
                // (downstream → upstream, upstream → downstream)
                let (received, sent) =
                    tokio::io::copy_bidirectional(&mut downstream, &mut upstream)
                        .await
                        .unwrap_or((0, 0));
                metrics.tcp_closed(&labels, sent, received);
            }
            Err(error) => {
                tracing::debug!(%error, "CONNECT upgrade failed.");
                metrics.tcp_closed(&labels, 0, 0);
            }
        }
    });
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = StatusCode::OK;
    resp
}
