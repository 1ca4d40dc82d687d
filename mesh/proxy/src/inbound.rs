//! The inbound listener of a sidecar: traffic for the local app arrives here (from other
//! sidecars or plain clients) and is forwarded to the app on localhost. The server-side
//! policy (mTLS termination, PeerAuthentication, AuthorizationPolicy) plugs in at
//! [`InboundPolicy`] before forwarding.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use hyper::body::Incoming;
use tokio::time::Instant;

use crate::access_log::Entry;
use crate::body::{self, Observed, ProxyBody};
use crate::cluster::UpstreamClient;
use crate::headers;
use crate::outbound::ConnInfo;
use crate::state::ProxyState;
use crate::telemetry::{Reporter, RequestRecord, Security, ServiceName, Workload};

/// Decides whether an inbound request may reach the app.
pub trait InboundPolicy: Send + Sync + std::fmt::Debug {
    /// `Err(status, body)` refuses the request.
    fn check(
        &self,
        req: &Request<Incoming>,
        conn: &ConnInfo,
    ) -> Result<(), (StatusCode, &'static str)>;
}

/// Lets everything through (no AuthorizationPolicy applies).
#[derive(Debug, Default)]
pub struct AllowAll;

impl InboundPolicy for AllowAll {
    fn check(&self, _: &Request<Incoming>, _: &ConnInfo) -> Result<(), (StatusCode, &'static str)> {
        Ok(())
    }
}

/// The inbound side of one sidecar.
#[derive(Debug)]
pub struct Inbound {
    /// Shared proxy state (metrics, identity).
    pub state: Arc<ProxyState>,
    /// Where the app listens.
    pub app: SocketAddr,
    /// Pooled client to the app.
    pub client: UpstreamClient,
    /// Server-side policy.
    pub policy: Box<dyn InboundPolicy>,
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
            start: Some(SystemTime::now()),
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            protocol: format!("{:?}", req.version()),
            user_agent: headers::text(req.headers(), "user-agent"),
            request_id: headers::text(req.headers(), "x-request-id"),
            authority: headers::text(req.headers(), "host"),
            upstream_cluster: format!("inbound|{}||", self.app.port()),
            upstream_host: self.app.to_string(),
            downstream_local: conn.local.to_string(),
            downstream_remote: conn.remote.to_string(),
            ..Entry::default()
        };
        let resp = match self.policy.check(&req, &conn) {
            Err((status, text)) => {
                log.details = "rbac_access_denied".to_owned();
                let mut r = Response::new(body::full(text));
                *r.status_mut() = status;
                r
            }
            Ok(()) => self.forward(req, &mut log).await,
        };
        let (parts, body) = resp.into_parts();
        let code = parts.status.as_u16();
        let me = self.clone();
        let done = move |bytes: u64| {
            log.code = code;
            log.bytes_sent = bytes;
            log.duration_ms = start.elapsed().as_millis() as u64;
            me.state.metrics.record_request(&RequestRecord {
                reporter: Reporter::Destination,
                source: &Workload::unknown(),
                destination: &me.state.me,
                service: &me.service,
                code,
                flags: if log.flags.is_empty() {
                    "-".to_owned()
                } else {
                    log.flags.clone()
                },
                security: Security::None,
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
