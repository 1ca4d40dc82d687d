//! The inbound listener of a sidecar: traffic for the local app arrives here (from other
//! sidecars over mTLS, or plain clients where PeerAuthentication allows it), is checked
//! against the AuthorizationPolicies selecting this workload (CUSTOM, then DENY, then
//! ALLOW; a denial is `403 RBAC: access denied`), and is forwarded to the app on
//! localhost.
//!
//! Its policy lives in [`authz`]: PeerAuthentication (the mTLS mode per port, enforced
//! when a connection is accepted) and AuthorizationPolicy (per request). Before either,
//! [`ratelimit`] applies the local rate limits of EnvoyFilters (`429 local_rate_limited`).

pub mod authz;
pub mod ratelimit;

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, Uri, header};

use crate::http::body::{self, ProxyBody};
use crate::http::headers;
use crate::http::http1::DownstreamBody;
use crate::http::respond::{self, LocalReply};
use crate::http::server::ConnInfo;
use crate::inbound::authz::{DENIED_BODY, DENIED_STATUS, Decision, RequestAttributes};
use crate::state::ProxyState;
use crate::telemetry::access_log::Entry;
use crate::telemetry::flags::{Flag, Flags};
use crate::telemetry::metrics::{
    Call, Reporter, RequestProtocol, Security, Series, SeriesCache, ServiceName,
};
use crate::telemetry::peer::{self, PeerCache, PeerKey};
use crate::telemetry::record::RequestRecord;
use crate::telemetry::trace;
use crate::upstream::connector::MeshConnector;
use crate::upstream::pool::{Pool, PoolSettings, Protocol};

/// The inbound side of one sidecar.
#[derive(Debug)]
pub struct Inbound {
    /// Shared proxy state (metrics, identity, policies).
    pub state: Arc<ProxyState>,
    /// Where the app listens.
    pub app: SocketAddr,
    /// Connections to the app (HTTP/1.1, kept alive).
    pub pool: Pool,
    /// The service this workload serves, for metrics.
    pub service: ServiceName,
    /// Metric series by peer identity, the caller's metadata it vouched for, status,
    /// flags and protocol.
    pub series: SeriesCache<SeriesKey>,
    /// Callers' metadata from the peer metadata exchange, parsed once per caller.
    pub peers: PeerCache,
}

/// What tells one inbound metric series from another.
pub type SeriesKey = (
    Option<Arc<str>>,
    Option<PeerKey>,
    u16,
    Flags,
    RequestProtocol,
);

impl Inbound {
    /// The pool of connections to the local app: plain HTTP/1.1 on localhost, kept alive.
    pub fn app_pool() -> Pool {
        Pool::new(
            MeshConnector::new(
                hyper_util::client::legacy::connect::HttpConnector::new(),
                None,
            ),
            PoolSettings {
                protocol: Protocol::Http1 { keep_alive: true },
                connect_timeout: mesh_api::defaults::DEFAULT_CONNECT_TIMEOUT,
                idle_timeout: Some(mesh_api::defaults::DEFAULT_IDLE_TIMEOUT),
            },
        )
    }

    /// Handles one request for the local app.
    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<DownstreamBody>,
        conn: ConnInfo,
    ) -> Response<ProxyBody> {
        // HTTP/2 (a sidecar upgrading) names the service in `:authority`; the app and
        // the policies read `Host`.
        if !req.headers().contains_key(header::HOST)
            && let Some(v) = req
                .uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
        let caller = self.caller(&mut req, &conn);
        let grpc = RequestProtocol::is_grpc(req.headers());
        let mut record = RequestRecord::new(self.state.access_log, || Entry {
            upstream_cluster: format!("inbound|{}||", self.app.port()),
            upstream_host: self.app.to_string(),
            ..Entry::for_request(&req, conn.local, conn.remote)
        });
        if let Some(tracing) = &self.state.tracing {
            let (peer, port) = (conn.peer.as_deref(), self.app.port());
            let span = trace::inbound(
                tracing,
                &mut req,
                conn.remote,
                peer,
                &self.service.host,
                port,
            );
            record.set_trace(span);
        }
        let limits = &self.state.store.load().table.local_rate_limits;
        let resp = if let Some(limited) = self.state.rate_limits.check(limits, &mut record) {
            limited
        } else {
            match self.authorize(&req, &conn) {
                Decision::Deny { policy } => {
                    record
                        .note_details(format_args!("rbac_access_denied_matched_policy[{policy}]"));
                    respond::plain(DENIED_STATUS, DENIED_BODY)
                }
                Decision::Allow => self.forward(req, &mut record).await,
            }
        };
        let (me, spiffe_id) = (self.clone(), conn.peer);
        body::on_end(resp, grpc, move |code, bytes, protocol| {
            record.finish(code, bytes, |flags, measured| {
                me.series(spiffe_id, caller, code, flags, protocol)
                    .observe(measured);
            });
        })
    }

    /// Takes the peer metadata exchange's headers off the request (the app never sees
    /// them) and gives the caller they describe, when the connection's peer
    /// certificate vouches for it: over mTLS, with the namespace and service account of
    /// its SPIFFE ID. Anything else (plaintext, a mismatch, bytes that do not parse) is
    /// ignored, and the caller is what the certificate alone says.
    ///
    /// The fast lane has set them aside already ([`ConnInfo::exchange`]: they never
    /// entered the header map); a request hyper read still has them in its map.
    fn caller(&self, req: &mut Request<DownstreamBody>, conn: &ConnInfo) -> Option<PeerKey> {
        let taken;
        let (id, metadata) = match &conn.exchange {
            Some(aside) => (aside.id.as_deref(), aside.metadata.as_deref()),
            None => {
                let headers = req.headers_mut();
                taken = (
                    headers.remove(&peer::X_ENVOY_PEER_METADATA_ID),
                    headers.remove(&peer::X_ENVOY_PEER_METADATA),
                );
                (
                    taken.0.as_ref().map(HeaderValue::as_bytes),
                    taken.1.as_ref().map(HeaderValue::as_bytes),
                )
            }
        };
        let (spiffe_id, id, metadata) = (conn.peer.as_deref()?, id?, metadata?);
        let peer = self.peers.resolve(id, metadata)?;
        if !peer.vouched_for_by(spiffe_id) {
            tracing::debug!(
                spiffe_id,
                claimed = %peer.node.namespace,
                "Ignoring peer metadata its certificate does not vouch for."
            );
            return None;
        }
        Some(PeerKey(peer))
    }

    /// The metric series of a request from the peer `spiffe_id` (none in plaintext)
    /// whose metadata named `caller`.
    fn series(
        &self,
        spiffe_id: Option<Arc<str>>,
        caller: Option<PeerKey>,
        code: u16,
        flags: &Flags,
        protocol: RequestProtocol,
    ) -> Series {
        let key = (spiffe_id, caller, code, flags.clone(), protocol);
        self.series.get(key, |key| {
            let (spiffe_id, caller) = (key.0.as_deref(), key.1.as_ref().map(|k| &*k.0));
            let source = peer::caller(spiffe_id, caller);
            self.state.metrics.series(&Call {
                reporter: Reporter::Destination,
                source: &source,
                destination: &self.state.me,
                service: &self.service,
                code,
                protocol,
                flags: flags.to_string(),
                security: if spiffe_id.is_some() {
                    Security::MutualTls
                } else {
                    Security::None
                },
            })
        })
    }

    /// Evaluates the AuthorizationPolicies of the current configuration.
    fn authorize(&self, req: &Request<DownstreamBody>, conn: &ConnInfo) -> Decision {
        let snap = self.state.store.load();
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        snap.authorizer().authorize(&RequestAttributes {
            peer: conn.peer.as_deref(),
            source_ip: conn.remote.ip(),
            method: req.method().as_str(),
            path: req.uri().path(),
            host,
            port: self.app.port(),
            headers: req.headers(),
        })
    }

    async fn forward(
        &self,
        req: Request<DownstreamBody>,
        record: &mut RequestRecord,
    ) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        parts.uri = Uri::from(path);
        match self
            .pool
            .send(self.app, Request::from_parts(parts, body::boxed(body)))
            .await
        {
            Ok(resp) => {
                let (mut parts, body) = resp.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body::boxed(body))
            }
            Err(e) => {
                record.note_flag(Flag::UpstreamConnectionFailure);
                record.note_details(LocalReply::ConnectFailure.details());
                record.note_upstream_failure(&e);
                let mut r =
                    respond::local(LocalReply::ConnectFailure, "the local app did not answer");
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
        }
    }
}
