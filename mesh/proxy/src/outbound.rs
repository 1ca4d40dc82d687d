//! The outbound listener: where the app's calls arrive (through `HTTP_PROXY`), and
//! where Istio's client-side traffic management happens, in Envoy's order:
//!
//! 1. find the destination service from the request's authority;
//! 2. pick the first route whose `match` accepts the request (none: 404 `NR`);
//! 3. redirect / direct response, or pick a weighted destination;
//! 4. fault injection: delay (`DI`), then abort (`FI`);
//! 5. rewrite and header manipulation;
//! 6. under the route timeout (`UT`): attempts with per-try timeouts, retries with
//!    jittered backoff avoiding hosts already tried, load balancing, circuit breaking
//!    (`UO`) and outlier detection;
//! 7. relay the response; metrics and the access log are written when its body ends.

pub mod fault;
pub mod retry;
pub mod tunnel;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Limited};
use mesh_api::matching::matches_any;
use mesh_api::{CompiledRoute, RequestInfo, RouteAction};
use tokio::time::Instant;

use crate::http::body::{self, Observed, ProxyBody};
use crate::http::headers;
use crate::http::http1::DownstreamBody;
use crate::http::respond::{self, LocalReply};
pub use crate::http::server::ConnInfo;
use crate::inbound::authz::{DENIED_BODY, Decision, RequestAttributes};
use crate::outbound::fault::Abort;
use crate::outbound::retry::Attempt;
use crate::snapshot::{ClusterError, ExternalTarget, Snapshot};
use crate::state::ProxyState;
use crate::telemetry::access_log::Entry;
use crate::telemetry::flags::{Flag, Flags};
use crate::telemetry::metrics::{Call, Measured, Reporter, Security, ServiceName, Workload};
use crate::upstream::breaker::Slot;
use crate::upstream::cluster::{Cluster, ClusterKey};
use crate::upstream::lb::{ActiveGuard, Endpoint};
use crate::upstream::outlier::Outcome;
use crate::upstream::pool::{Outgoing, PooledBody};

/// Request bodies up to this size are buffered so a retry can resend them; larger or
/// unsized bodies are streamed and get a single attempt (Linkerd does the same).
pub const RETRY_BUFFER_LIMIT: usize = 64 * 1024;

/// What we learn about a request on its way through, for telemetry. The access-log
/// entry is filled in only when the log is on: its strings cost more than the rest of
/// the bookkeeping together.
#[derive(Debug)]
struct Ctx {
    start: Instant,
    /// Boxed: most sidecars run with the log off, and inline it would add half a KB to
    /// every request's future.
    log: Option<Box<Entry>>,
    flags: Flags,
    /// The destination host, once a route picked one.
    host: Option<String>,
    /// The service for metrics when it is not a cluster's (passthrough traffic).
    service: Option<ServiceName>,
    /// The cluster and endpoint the request went to, which resolve its metric series.
    cluster: Option<Arc<Cluster>>,
    endpoint: Option<Arc<Endpoint>>,
    request_bytes: u64,
    remote_ip: std::net::IpAddr,
    /// The breaker slot and the endpoint's in-flight mark of the response being relayed:
    /// they are let go of with this context, when the response body ends.
    upstream: Option<(Slot, ActiveGuard)>,
}

impl Ctx {
    fn new(req: &Request<DownstreamBody>, conn: ConnInfo, logging: bool) -> Self {
        Self {
            start: Instant::now(),
            log: logging.then(|| Box::new(Entry::for_request(req, conn.local, conn.remote))),
            flags: Flags::none(),
            host: None,
            service: None,
            cluster: None,
            endpoint: None,
            request_bytes: 0,
            remote_ip: conn.remote.ip(),
            upstream: None,
        }
    }

    fn local(&mut self, reply: LocalReply, cause: &str) -> Response<ProxyBody> {
        if let (_, Some(flag), _) = reply.parts() {
            self.flags.set(flag);
        }
        if let Some(log) = self.log() {
            log.details = reply.details().to_owned();
        }
        respond::local(reply, cause)
    }

    /// The access-log entry, when the log is on.
    fn log(&mut self) -> Option<&mut Entry> {
        self.log.as_deref_mut()
    }
}

/// Handles one request from the app. Never fails: every problem becomes a response.
pub async fn handle(
    state: Arc<ProxyState>,
    req: Request<DownstreamBody>,
    conn: ConnInfo,
) -> Response<ProxyBody> {
    if req.method() == Method::CONNECT && !state.gateway {
        // Boxed, like the other rare paths, to keep the common request's future small.
        return Box::pin(tunnel::open(state, req)).await;
    }
    let ctx = Ctx::new(&req, conn, state.access_log);
    let mut pending = Pending {
        state,
        ctx: Some(ctx),
    };
    let resp = match pending.ctx.as_mut() {
        Some(ctx) => route(&pending.state, req, ctx).await,
        None => respond::local(LocalReply::BadRequest, "internal: request context missing"),
    };
    pending.finish(resp)
}

/// A request whose telemetry is not written yet. If the client goes away before we
/// answer (the future is dropped), it is still recorded, with code 0 and flag `DC`,
/// as Envoy does: that is how a cancelled call shows up in the metrics.
struct Pending {
    state: Arc<ProxyState>,
    ctx: Option<Ctx>,
}

impl Pending {
    /// Wraps the response body so metrics and the access log are written when it ends.
    fn finish(mut self, resp: Response<ProxyBody>) -> Response<ProxyBody> {
        let Some(ctx) = self.ctx.take() else {
            return resp;
        };
        let state = self.state.clone();
        let (parts, body) = resp.into_parts();
        let code = parts.status.as_u16();
        let done = move |bytes: u64| record(&state, ctx, code, bytes);
        Response::from_parts(parts, body::boxed(Observed::new(body, done)))
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(mut ctx) = self.ctx.take() {
            ctx.flags.set(Flag::DownstreamConnectionTermination);
            if let Some(log) = ctx.log() {
                log.details = "downstream_remote_disconnect".to_owned();
            }
            record(&self.state, ctx, 0, 0);
        }
    }
}

/// Writes the metrics and the access log line of a finished request.
fn record(state: &ProxyState, ctx: Ctx, code: u16, bytes: u64) {
    let elapsed = ctx.start.elapsed();
    let measured = Measured {
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        request_bytes: ctx.request_bytes,
        response_bytes: bytes,
    };
    match (&ctx.cluster, &ctx.endpoint) {
        (Some(cluster), Some(endpoint)) => cluster
            .series(&state.metrics, &state.me, endpoint, code, &ctx.flags)
            .observe(measured),
        _ => {
            let service = match (&ctx.service, &ctx.host) {
                (Some(s), _) => s.clone(),
                (None, Some(host)) => ServiceName::from_host(host),
                (None, None) => ServiceName::unknown(),
            };
            let call = Call {
                reporter: Reporter::Source,
                source: &state.me,
                destination: &Workload::unknown(),
                service: &service,
                code,
                flags: ctx.flags.to_string(),
                security: Security::Unknown,
            };
            state.metrics.record_request(&call, measured);
        }
    }
    if let Some(mut log) = ctx.log {
        log.code = code;
        log.flags = ctx.flags.to_string();
        log.bytes_received = ctx.request_bytes;
        log.bytes_sent = bytes;
        log.duration_ms = elapsed.as_millis() as u64;
        if log.details.is_empty() {
            log.details = "via_upstream".to_owned();
        }
        println!("{log}");
    }
}

/// The authority a request is addressed to: absolute-form URI first (an `HTTP_PROXY`
/// client), then the `Host` header (a gateway, or an app calling us directly).
pub fn authority_of(parts: &Parts) -> Option<String> {
    if let Some(a) = parts.uri.authority() {
        return Some(a.as_str().to_owned());
    }
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
}

async fn route(
    state: &ProxyState,
    req: Request<DownstreamBody>,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    let (mut parts, body) = req.into_parts();
    if parts.method == Method::CONNECT {
        return ctx.local(LocalReply::BadRequest, "a gateway does not accept CONNECT");
    }
    let Some(authority) = authority_of(&parts) else {
        return ctx.local(LocalReply::BadRequest, "the request names no host");
    };
    headers::strip_hop_by_hop(&mut parts.headers);
    headers::ensure_request_id(&mut parts.headers);
    if let Some(log) = ctx.log() {
        log.authority = authority.clone();
        log.request_id = headers::text(&parts.headers, headers::X_REQUEST_ID.as_str());
    }
    if !parts.headers.contains_key(header::HOST)
        && let Ok(v) = HeaderValue::from_str(&authority)
    {
        parts.headers.insert(header::HOST, v);
    }

    let snap = state.store.load();
    if state.gateway
        && let Some(denied) = authorize(&snap, &parts, &authority, ctx)
    {
        return denied;
    }
    // A handle on the target (shared bytes, no copy) that outlives changes to `parts`.
    let target = parts.uri.path_and_query().cloned();
    let path = target.as_ref().map_or("/", |p| p.as_str());
    let Some(routes) = snap.routes(&authority) else {
        return passthrough(state, parts, body, &authority, path, ctx).await;
    };
    let info = RequestInfo {
        method: parts.method.as_str(),
        scheme: "http",
        authority: &authority,
        path,
        // A plain http:// authority without a port addresses port 80 (`match: port: 80`).
        port: Some(mesh_api::host::split_authority(&authority).1.unwrap_or(80)),
        headers: &parts.headers,
    };
    // Only routes on a lease (a fault from `meshctl`) need the clock.
    let live =
        |r: &CompiledRoute| r.expires_at_ms.is_none() || r.is_live(mesh_api::compile::now_ms());
    let Some(route) = routes
        .iter()
        .find(|r| live(r) && matches_any(&r.matches, &info))
    else {
        return ctx.local(
            LocalReply::NoRoute,
            &format!("no route for {authority}{path}"),
        );
    };
    if let Some(log) = ctx.log() {
        log.route_name = route.name.clone().unwrap_or_default();
    }

    let destinations = match &route.action {
        RouteAction::Forward(d) => d,
        RouteAction::Redirect(r) => return redirect(r, &parts, &authority, ctx),
        RouteAction::DirectResponse(d) => return direct_response(d, ctx),
        RouteAction::Delegate(_) => {
            return ctx.local(LocalReply::NoRoute, "delegated routes are not supported");
        }
    };
    let Some(dest) = destinations.pick(rand::random()) else {
        return ctx.local(
            LocalReply::NoRoute,
            "every destination of the route has weight 0",
        );
    };
    let (_, authority_port) = mesh_api::host::split_authority(&authority);
    let key = ClusterKey {
        host: dest.host.clone(),
        subset: dest.subset.clone(),
        port: dest
            .port
            .and_then(|p| u16::try_from(p).ok())
            .or(authority_port),
    };
    ctx.host = Some(key.host.clone());
    if let Some(log) = ctx.log() {
        log.upstream_cluster = key.to_string();
    }

    if let Some(f) = &route.fault {
        let decision = fault::decide(f, &mut rand::rng());
        if let Some(delay) = decision.delay {
            ctx.flags.set(Flag::DelayInjected);
            tokio::time::sleep(delay).await;
        }
        if let Some(abort) = decision.abort {
            ctx.flags.set(Flag::FaultInjected);
            if let Some(log) = ctx.log() {
                log.details = "fault_filter_abort".to_owned();
            }
            return aborted(abort);
        }
    }

    // Rewrite and header manipulation happen on the copy we send.
    if let Some(rw) = &route.rewrite {
        rewrite(rw, route, &mut parts, path);
    }
    headers::apply(
        route.headers.as_ref().and_then(|h| h.request.as_ref()),
        &mut parts.headers,
    );
    headers::apply(
        dest.headers.as_ref().and_then(|h| h.request.as_ref()),
        &mut parts.headers,
    );

    let cluster = match snap.cluster(&key, state.mtls()) {
        Ok(c) => c,
        Err(e @ ClusterError::UnknownSubset { .. }) => {
            return ctx.local(LocalReply::NoCluster, &e.to_string());
        }
        Err(e @ ClusterError::UnknownService(_)) => {
            match external_cluster(state, &snap, &key).await {
                Some(c) => c,
                None => return ctx.local(LocalReply::NoHealthyUpstream, &e.to_string()),
            }
        }
    };
    if let Some(error) = &cluster.tls_error {
        let cause = format!("TLS origination for {}: {error}", cluster.name);
        return ctx.local(LocalReply::ConnectFailure, &cause);
    }
    let body = match RequestBody::read(&parts, body).await {
        Ok(b) => b,
        Err(e) => {
            return ctx.local(
                LocalReply::BadRequest,
                &format!("reading the request body failed: {e}"),
            );
        }
    };
    ctx.request_bytes = body.len();
    ctx.cluster = Some(cluster.clone());
    mirror(state, &snap, route, &parts, &body);

    let attempts = attempts(&cluster, route, &parts, body, ctx);
    let outcome = match route.timeout {
        Some(t) => tokio::time::timeout(t, attempts)
            .await
            .unwrap_or(Err(LocalReply::Timeout)),
        None => attempts.await,
    };
    let mut resp = match outcome {
        Ok(resp) => resp,
        Err(reply) => {
            let cause = format!("{} ({})", reply.details(), cluster.name);
            return ctx.local(reply, &cause);
        }
    };
    headers::apply(
        route.headers.as_ref().and_then(|h| h.response.as_ref()),
        resp.headers_mut(),
    );
    headers::apply(
        dest.headers.as_ref().and_then(|h| h.response.as_ref()),
        resp.headers_mut(),
    );
    resp
}

/// A gateway applies the AuthorizationPolicies selecting it to the requests it receives
/// (Istio's `allow-nothing` in the gateway's namespace answers 403 at the front door).
fn authorize(
    snap: &Snapshot,
    parts: &Parts,
    authority: &str,
    ctx: &mut Ctx,
) -> Option<Response<ProxyBody>> {
    let (_, port) = mesh_api::host::split_authority(authority);
    let attrs = RequestAttributes {
        peer: None,
        source_ip: ctx.remote_ip,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        host: authority,
        port: port.unwrap_or(80),
        headers: &parts.headers,
    };
    match snap.authorizer().authorize(&attrs) {
        Decision::Allow => None,
        Decision::Deny { policy } => {
            let details = format!("rbac_access_denied_matched_policy[{policy}]");
            let cause = format!("- {details}: {policy}");
            if let Some(log) = ctx.log() {
                log.details = details;
            }
            Some(respond::text(StatusCode::FORBIDDEN, DENIED_BODY, &cause))
        }
    }
}

/// How long resolving a ServiceEntry host may take.
const RESOLVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

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

/// The request body: buffered (replayable) when small and sized, streamed otherwise.
enum RequestBody {
    Buffered(Bytes),
    Streaming(Option<DownstreamBody>),
}

impl RequestBody {
    async fn read(
        parts: &Parts,
        body: DownstreamBody,
    ) -> Result<Self, crate::http::body::BoxError> {
        // The fast lane read the whole body already (at most the retry buffer's size).
        let body = match body {
            DownstreamBody::Complete(bytes) => {
                return Ok(Self::Buffered(bytes.unwrap_or_default()));
            }
            streamed => streamed,
        };
        let length = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let chunked = parts.headers.contains_key(header::TRANSFER_ENCODING);
        match (length, chunked) {
            (Some(n), _) if n <= RETRY_BUFFER_LIMIT => Ok(Self::Buffered(
                Limited::new(body, RETRY_BUFFER_LIMIT)
                    .collect()
                    .await?
                    .to_bytes(),
            )),
            (None, false) => Ok(Self::Buffered(
                Limited::new(body, RETRY_BUFFER_LIMIT)
                    .collect()
                    .await?
                    .to_bytes(),
            )),
            _ => Ok(Self::Streaming(Some(body))),
        }
    }

    fn len(&self) -> u64 {
        match self {
            Self::Buffered(b) => b.len() as u64,
            Self::Streaming(_) => 0,
        }
    }

    fn replayable(&self) -> bool {
        matches!(self, Self::Buffered(_))
    }

    fn take(&mut self) -> ProxyBody {
        match self {
            Self::Buffered(b) => body::full(b.clone()),
            Self::Streaming(s) => s.take().map_or_else(body::empty, body::boxed),
        }
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
    req.headers_mut().insert(
        headers::X_ENVOY_ATTEMPT_COUNT.clone(),
        HeaderValue::from_static("1"),
    );
    Ok(req)
}

/// Runs the attempts of one request: the first try, then retries as the route's policy
/// allows. The breaker slot and the endpoint's in-flight mark of the answering attempt
/// go to `ctx`, which keeps them until the response body ends.
async fn attempts(
    cluster: &Arc<Cluster>,
    route: &CompiledRoute,
    parts: &Parts,
    mut body: RequestBody,
    ctx: &mut Ctx,
) -> Result<Response<ProxyBody>, LocalReply> {
    let policy = &route.retry;
    let max = if body.replayable() {
        1 + policy.attempts
    } else {
        1
    };
    // The hosts of earlier tries, filled only once there is a retry (most requests
    // succeed on the first try and need no list).
    let mut tried = Vec::new();
    let mut last = None;
    for n in 1..=max {
        if n > 1 {
            tokio::time::sleep(retry::backoff_before(policy, n - 1)).await;
            if policy.retry_ignore_previous_hosts {
                tried.extend(last);
            }
        }
        let avoid: &[SocketAddr] = if policy.retry_ignore_previous_hosts {
            &tried
        } else {
            &[]
        };
        let Some(endpoint) = cluster
            .balancer
            .pick(&cluster.endpoints, avoid, Instant::now())
        else {
            return Err(LocalReply::NoHealthyUpstream);
        };
        last = Some(endpoint.addr);
        let slot = cluster
            .breaker
            .admit()
            .await
            .map_err(|_| LocalReply::Overflow)?;
        let active = endpoint.start_request();
        if let Some(log) = ctx.log() {
            log.upstream_host = endpoint.addr.to_string();
        }
        ctx.endpoint = Some(endpoint.clone());
        let out = Outgoing {
            head: parts,
            attempt: Some(n),
            body: body.take(),
        };
        let started = Instant::now();
        let sent = cluster
            .pool_for(parts.version)
            .send_outgoing(endpoint.addr, out);
        let result = match policy.per_try_timeout {
            Some(t) => tokio::time::timeout(t, sent).await.ok(),
            None => Some(sent.await),
        };
        let (attempt, resp) = match result {
            None => (Attempt::PerTryTimeout, None),
            Some(Err(e)) if e.is_connect() => {
                if let Some(log) = ctx.log() {
                    log.upstream_failure = root_cause(&e);
                }
                (Attempt::ConnectFailure, None)
            }
            Some(Err(e)) => {
                if let Some(log) = ctx.log() {
                    log.upstream_failure = root_cause(&e);
                }
                (Attempt::Reset, None)
            }
            Some(Ok(r)) => {
                let grpc_status = r
                    .headers()
                    .get(&headers::GRPC_STATUS)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                (
                    Attempt::Response {
                        status: r.status().as_u16(),
                        grpc_status,
                    },
                    Some(r),
                )
            }
        };
        cluster.report(
            &endpoint,
            match attempt {
                Attempt::Response { status, .. } => Outcome::Status(status),
                Attempt::PerTryTimeout => Outcome::Status(504),
                Attempt::ConnectFailure | Attempt::Reset => Outcome::ConnectFailure,
            },
        );
        let retriable = retry::should_retry(policy, attempt);
        if retriable && n < max {
            continue;
        }
        if retriable && n > 1 {
            ctx.flags.set(Flag::UpstreamRetryLimitExceeded);
        }
        return match (attempt, resp) {
            (_, Some(r)) => {
                ctx.upstream = Some((slot, active));
                Ok(relay(r, started))
            }
            (Attempt::ConnectFailure, None) => Err(LocalReply::ConnectFailure),
            (Attempt::PerTryTimeout, None) => Err(LocalReply::Timeout),
            (_, None) => Err(LocalReply::ConnectionTerminated),
        };
    }
    Err(LocalReply::NoHealthyUpstream)
}

/// The upstream's response as we send it downstream.
fn relay(resp: Response<PooledBody>, started: Instant) -> Response<ProxyBody> {
    let (mut parts, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        headers::X_ENVOY_UPSTREAM_SERVICE_TIME.clone(),
        headers::decimal(started.elapsed().as_millis() as u64),
    );
    Response::from_parts(parts, body::boxed(body))
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn aborted(abort: Abort) -> Response<ProxyBody> {
    match abort {
        Abort::Http(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            respond::text(
                status,
                "fault filter abort",
                "FI fault_filter_abort: injected by the route's fault",
            )
        }
        Abort::Grpc(code) => {
            let mut r = respond::text(
                StatusCode::OK,
                "",
                "FI fault_filter_abort: injected by the route's fault",
            );
            r.headers_mut()
                .insert(headers::GRPC_STATUS.clone(), HeaderValue::from(code));
            r
        }
    }
}

fn redirect(
    r: &mesh_api::networking::virtual_service::HttpRedirect,
    parts: &Parts,
    authority: &str,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    let (host, port) = mesh_api::host::split_authority(authority);
    let host = r.authority.clone().unwrap_or_else(|| host.to_owned());
    let port = r
        .port
        .map(|p| format!(":{p}"))
        .or_else(|| port.map(|p| format!(":{p}")))
        .unwrap_or_default();
    let scheme = r.scheme.clone().unwrap_or_else(|| "http".to_owned());
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
    if let Some(log) = ctx.log() {
        log.details = "direct_response".to_owned();
    }
    let mut resp = Response::new(body::empty());
    *resp.status_mut() = code;
    if let Ok(v) = HeaderValue::from_str(&format!("{scheme}://{host}{port}{path}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

fn direct_response(
    d: &mesh_api::networking::virtual_service::HttpDirectResponse,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    if let Some(log) = ctx.log() {
        log.details = "direct_response".to_owned();
    }
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

/// `rewrite.uri` replaces the matched prefix when the route matched by prefix, else the
/// whole path; `rewrite.authority` replaces the Host header.
fn rewrite(
    rw: &mesh_api::networking::virtual_service::HttpRewrite,
    route: &CompiledRoute,
    parts: &mut Parts,
    path: &str,
) {
    if let Some(new) = &rw.uri {
        let prefix = route
            .matches
            .iter()
            .filter_map(|m| m.uri.as_ref().and_then(|u| u.prefix.clone()))
            .find(|p| path.starts_with(p.as_str()));
        let rewritten = match prefix {
            Some(p) => format!("{new}{}", &path[p.len()..]),
            None => new.clone(),
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

/// Fire-and-forget copies for the route's mirrors (buffered bodies only; the answers
/// are discarded).
fn mirror(
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
        let Ok(req) = mirrored_request(parts, body::full(bytes.clone())) else {
            continue;
        };
        let version = parts.version;
        tokio::spawn(async move {
            if let Ok(resp) = cluster.pool_for(version).send(endpoint.addr, req).await {
                let _ = resp.into_body().collect().await;
            }
        });
    }
}

/// A host outside the registry: forwarded as is (Istio's `ALLOW_ANY` outbound policy).
async fn passthrough(
    state: &ProxyState,
    parts: Parts,
    body: DownstreamBody,
    authority: &str,
    path: &str,
    ctx: &mut Ctx,
) -> Response<ProxyBody> {
    if let Some(log) = ctx.log() {
        log.upstream_cluster = "PassthroughCluster".to_owned();
    }
    ctx.service = Some(ServiceName {
        host: authority.to_owned(),
        name: authority.to_owned(),
        namespace: "unknown".to_owned(),
    });
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
            if let Some(log) = ctx.log() {
                log.upstream_failure = root_cause(&e);
            }
            ctx.local(
                LocalReply::ConnectFailure,
                &format!("connecting to {authority} failed"),
            )
        }
        Err(e) => {
            if let Some(log) = ctx.log() {
                log.upstream_failure = root_cause(&e);
            }
            ctx.local(
                LocalReply::ConnectionTerminated,
                &format!("{authority} closed the connection"),
            )
        }
    }
}
