//! The outbound request context: what a request's way through the phases decides (the
//! destination, cluster and endpoint, the breaker slot it holds), its telemetry record,
//! and the access-log notes the phases leave, as methods so the traffic logic carries no
//! logging branches. A request's telemetry is written when its response body ends, or
//! when the client goes away first ([`Pending`]).

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::{HeaderMap, Request, Response};
use mesh_api::CompiledRoute;

use crate::http::body::{self, ProxyBody};
use crate::http::headers;
use crate::http::http1::DownstreamBody;
use crate::http::respond::{self, LocalReply};
use crate::http::server::ConnInfo;
use crate::state::ProxyState;
use crate::telemetry::access_log::Entry;
use crate::telemetry::flags::Flag;
use crate::telemetry::metrics::{Call, Reporter, RequestProtocol, Security, ServiceName, Workload};
use crate::telemetry::record::{RequestRecord, RootCause};
use crate::telemetry::trace::{self, HopKind, RequestInfo};
use crate::upstream::breaker::Slot;
use crate::upstream::cluster::{Cluster, ClusterKey};
use crate::upstream::lb::{ActiveGuard, Endpoint};
use opentelemetry::KeyValue;

/// What we learn about a request on its way through, for telemetry.
#[derive(Debug)]
pub(super) struct Ctx {
    /// Start, flags, request bytes and the access-log entry (when the log is on).
    pub(super) rec: RequestRecord,
    /// The destination a route picked, whose host names the metrics' service when the
    /// request reaches no endpoint; moved here rather than copied.
    pub(super) destination: Option<ClusterKey>,
    /// The service for metrics when it is not a cluster's (passthrough traffic).
    service: Option<ServiceName>,
    /// The cluster and endpoint the request went to, which resolve its metric series.
    pub(super) cluster: Option<Arc<Cluster>>,
    endpoint: Option<Arc<Endpoint>>,
    pub(super) remote_ip: IpAddr,
    /// Whether the request is gRPC (its metrics then carry the `grpc-status`).
    grpc: bool,
    /// The breaker slot and the endpoint's in-flight mark of the response being relayed:
    /// they are let go of with this context, when the response body ends.
    pub(super) upstream: Option<(Slot, ActiveGuard)>,
}

impl Ctx {
    pub(super) fn new(req: &Request<DownstreamBody>, conn: ConnInfo, state: &ProxyState) -> Self {
        let mut rec = RequestRecord::new(state.access_log, || {
            Entry::for_request(req, conn.local, conn.remote)
        });
        if let Some(tracing) = &state.tracing {
            let kind = if state.gateway {
                HopKind::Gateway
            } else {
                HopKind::SidecarOutbound
            };
            rec.set_trace(tracing.start_hop(
                kind,
                RequestInfo {
                    headers: req.headers(),
                    method: req.method(),
                    version: req.version(),
                    target: req.uri(),
                    remote: conn.remote,
                    peer: conn.peer.as_deref(),
                },
            ));
        }
        Self {
            rec,
            destination: None,
            service: None,
            cluster: None,
            endpoint: None,
            remote_ip: conn.remote.ip(),
            grpc: RequestProtocol::is_grpc(req.headers()),
            upstream: None,
        }
    }

    /// A reply of our own, with its flag and details noted.
    pub(super) fn local(&mut self, reply: LocalReply, cause: &str) -> Response<ProxyBody> {
        if let (_, Some(flag), _) = reply.parts() {
            self.note_flag(flag);
        }
        self.note_details(reply.details());
        respond::local(reply, cause)
    }

    /// Sets a response flag.
    pub(super) fn note_flag(&mut self, flag: Flag) {
        self.rec.note_flag(flag);
    }

    /// The access log's `RESPONSE_CODE_DETAILS`.
    pub(super) fn note_details(&mut self, details: impl fmt::Display) {
        self.rec.note_details(details);
    }

    /// The authority and request ID, once the request's headers are normalised.
    pub(super) fn note_request(&mut self, authority: &str, headers: &HeaderMap) {
        if let Some(log) = self.rec.log() {
            log.authority = authority.to_owned();
            log.request_id = headers::text(headers, headers::X_REQUEST_ID.as_str());
        }
    }

    /// The route that matched.
    pub(super) fn note_route(&mut self, route: &CompiledRoute) {
        if let Some(log) = self.rec.log() {
            log.route_name = route.name.clone().unwrap_or_default();
        }
    }

    /// The destination the route picked: its host names the metrics' service.
    pub(super) fn note_destination(&mut self, key: ClusterKey) {
        if let Some(log) = self.rec.log() {
            log.upstream_cluster = key.to_string();
        }
        if let Some(span) = self.rec.trace()
            && span.recording()
        {
            span.upstream_cluster(key.to_string());
        }
        self.destination = Some(key);
    }

    /// A host outside the registry, forwarded as is: `authority` is its service.
    pub(super) fn note_passthrough(&mut self, authority: &str) {
        if let Some(log) = self.rec.log() {
            log.upstream_cluster = "PassthroughCluster".to_owned();
        }
        if let Some(span) = self.rec.trace()
            && span.recording()
        {
            span.name(format!("{authority}/*"));
            span.upstream_cluster("PassthroughCluster".to_owned());
        }
        self.service = Some(ServiceName {
            host: authority.to_owned(),
            name: authority.to_owned(),
            namespace: "unknown".to_owned(),
        });
    }

    /// The endpoint an attempt goes to (the last one is the request's).
    pub(super) fn note_endpoint(&mut self, endpoint: &Arc<Endpoint>) {
        if let Some(log) = self.rec.log() {
            log.upstream_host = endpoint.addr.to_string();
        }
        if let Some(span) = self.rec.trace() {
            span.upstream_address(endpoint.addr);
        }
        self.endpoint = Some(endpoint.clone());
    }

    /// The route's operation name on the spans (istiod's route decorator), and the
    /// fault lease that added the route, if one did.
    pub(super) fn note_route_span(&mut self, route: &CompiledRoute) {
        let Some(span) = self.rec.trace() else {
            return;
        };
        if !span.recording() {
            return;
        }
        if let Some(key) = &self.destination {
            let uri = route.matches.first().and_then(|m| m.uri.as_ref());
            span.name(trace::operation(&key.host, key.port, uri));
        }
        if let Some(lease) = trace::lease_id(route.name.as_deref(), route.expires_at_ms.is_some()) {
            span.attribute("fault.lease_id", lease.to_owned());
        }
    }

    /// An event on the request's span: a retry, an injected fault, a timeout, a
    /// circuit-breaker rejection. `attributes` is only called when the span is sampled.
    pub(super) fn trace_event(
        &mut self,
        name: &'static str,
        attributes: impl FnOnce() -> Vec<KeyValue>,
    ) {
        if let Some(span) = self.rec.trace()
            && span.recording()
        {
            span.event(name, attributes());
        }
    }

    /// Writes the trace context of this hop into the request going upstream.
    pub(super) fn inject_trace(&mut self, headers: &mut HeaderMap) {
        if let Some(span) = self.rec.trace() {
            span.inject(headers);
        }
    }

    /// Why the upstream connection failed: the innermost cause of `e`.
    pub(super) fn note_upstream_failure(&mut self, e: &(dyn std::error::Error + 'static)) {
        self.rec.note_upstream_failure(RootCause(e));
    }
}

/// A request whose telemetry is not written yet. If the client goes away before we
/// answer (the future is dropped), it is still recorded, with code 0 and flag `DC`,
/// as Envoy does: that is how a cancelled call shows up in the metrics.
pub(super) struct Pending {
    pub(super) state: Arc<ProxyState>,
    pub(super) ctx: Option<Ctx>,
}

impl Pending {
    /// Wraps the response body so metrics and the access log are written when it ends.
    pub(super) fn finish(mut self, resp: Response<ProxyBody>) -> Response<ProxyBody> {
        let Some(ctx) = self.ctx.take() else {
            return resp;
        };
        let state = self.state.clone();
        body::on_end(resp, ctx.grpc, move |code, bytes, protocol| {
            record(&state, ctx, code, bytes, protocol)
        })
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut ctx) = self.ctx.take() {
            ctx.note_flag(Flag::DownstreamConnectionTermination);
            ctx.note_details("downstream_remote_disconnect");
            let protocol = RequestProtocol::of(ctx.grpc, 0, None);
            record(&self.state, ctx, 0, 0, protocol);
        }
    }
}

/// Writes the metrics and the access log line of a finished request. The breaker slot
/// and in-flight mark go with `ctx`, after both are written.
fn record(state: &ProxyState, ctx: Ctx, code: u16, bytes: u64, protocol: RequestProtocol) {
    let Ctx {
        rec,
        destination,
        service,
        cluster,
        endpoint,
        ..
    } = ctx;
    rec.finish(code, bytes, |flags, measured| match (&cluster, &endpoint) {
        (Some(cluster), Some(endpoint)) => cluster
            .series(&state.metrics, &state.me, endpoint, code, flags, protocol)
            .observe(measured),
        _ => {
            let service = match (&service, &destination) {
                (Some(s), _) => s.clone(),
                (None, Some(key)) => ServiceName::from_host(&key.host),
                (None, None) => ServiceName::unknown(),
            };
            let call = Call {
                reporter: Reporter::Source,
                source: &state.me,
                destination: &Workload::unknown(),
                service: &service,
                code,
                protocol,
                flags: flags.to_string(),
                security: Security::Unknown,
            };
            state.metrics.record_request(&call, measured);
        }
    });
}
