//! The inbound listener of a sidecar: traffic for the local app arrives here (from other
//! sidecars over mTLS, or plain clients where PeerAuthentication allows it), is checked
//! against the AuthorizationPolicies selecting this workload (CUSTOM, then DENY, then
//! ALLOW; a denial is `403 RBAC: access denied`), and is forwarded to the app on
//! localhost.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access_log::Entry;
use crate::authz::{DENIED_BODY, Decision, RequestAttributes};
use crate::body::{self, Observed, ProxyBody};
use crate::cluster::UpstreamClient;
use crate::headers;
use crate::server::ConnInfo;
use crate::state::ProxyState;
use crate::telemetry::{Reporter, RequestRecord, Security, ServiceName, Workload};

/// The inbound side of one sidecar.
#[derive(Debug)]
pub struct Inbound {
    /// Shared proxy state (metrics, identity, policies).
    pub state: Arc<ProxyState>,
    /// Where the app listens.
    pub app: SocketAddr,
    /// Pooled client to the app.
    pub client: UpstreamClient,
    /// The service this workload serves, for metrics.
    pub service: ServiceName,
}

impl Inbound {
    /// Handles one request for the local app.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: ConnInfo,
    ) -> Response<ProxyBody> {
        let start = Instant::now();
        let mut log = Entry {
            upstream_cluster: format!("inbound|{}||", self.app.port()),
            upstream_host: self.app.to_string(),
            ..Entry::for_request(&req, &conn)
        };
        let resp = match self.authorize(&req, &conn) {
            Decision::Deny { policy } => {
                log.details = format!("rbac_access_denied_matched_policy[{policy}]");
                let mut r = Response::new(body::full(DENIED_BODY));
                *r.status_mut() = StatusCode::FORBIDDEN;
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                r
            }
            Decision::Allow => self.forward(req, &mut log).await,
        };
        let (parts, body) = resp.into_parts();
        let code = parts.status.as_u16();
        let me = self.clone();
        let done = move |bytes: u64| {
            log.code = code;
            log.bytes_sent = bytes;
            log.duration_ms = start.elapsed().as_millis() as u64;
            if log.flags.is_empty() {
                log.flags = "-".to_owned();
            }
            // The caller's identity is its SPIFFE ID; its workload name is not known here.
            let source = Workload {
                principal: conn
                    .peer
                    .as_deref()
                    .map_or_else(|| "unknown".to_owned(), str::to_owned),
                namespace: conn
                    .peer
                    .as_deref()
                    .and_then(|p| p.split("/ns/").nth(1))
                    .and_then(|rest| rest.split('/').next())
                    .map_or_else(|| "unknown".to_owned(), str::to_owned),
                ..Workload::unknown()
            };
            me.state.metrics.record_request(&RequestRecord {
                reporter: Reporter::Destination,
                source: &source,
                destination: &me.state.me,
                service: &me.service,
                code,
                flags: log.flags.clone(),
                security: if conn.peer.is_some() {
                    Security::MutualTls
                } else {
                    Security::None
                },
                duration_ms: start.elapsed().as_secs_f64() * 1000.0,
                request_bytes: 0,
                response_bytes: bytes,
            });
            if me.state.access_log {
                println!("{log}");
            }
        };
        Response::from_parts(parts, body::boxed(Observed::new(body, done)))
    }

    /// Evaluates the AuthorizationPolicies of the current configuration.
    fn authorize(&self, req: &Request<Incoming>, conn: &ConnInfo) -> Decision {
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

    async fn forward(&self, req: Request<Incoming>, log: &mut Entry) -> Response<ProxyBody> {
        let (mut parts, body) = req.into_parts();
        headers::strip_hop_by_hop(&mut parts.headers);
        let path = parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let Ok(uri) = format!("http://{}{path}", self.app).parse::<Uri>() else {
            return crate::respond::local(
                crate::respond::LocalReply::BadRequest,
                "unusable request path",
            );
        };
        parts.uri = uri;
        match self
            .client
            .request(Request::from_parts(parts, body::boxed(body)))
            .await
        {
            Ok(resp) => {
                log.details = "via_upstream".to_owned();
                let (mut parts, body) = resp.into_parts();
                headers::strip_hop_by_hop(&mut parts.headers);
                Response::from_parts(parts, body::boxed(body))
            }
            Err(e) => {
                log.flags = "UF".to_owned();
                log.details =
                    "upstream_reset_before_response_started{connection_failure}".to_owned();
                log.upstream_failure = e.to_string();
                let mut r = crate::respond::local(
                    crate::respond::LocalReply::ConnectFailure,
                    "the local app did not answer",
                );
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                r
            }
        }
    }
}
