//! The outbound listener: where the app's calls arrive (through `HTTP_PROXY`), and
//! where Istio's client-side traffic management happens, in Envoy's order, one phase
//! per file:
//!
//! 1. `matching`: find the destination service from the request's authority, and the
//!    first route whose `match` accepts the request (none: 404 `NR`); a gateway first
//!    applies its AuthorizationPolicies (`authorize`);
//! 2. `action`: redirect / direct response, or pick a weighted destination;
//! 3. [`fault`]: fault injection: delay (`DI`), then abort (`FI`), and a fault lease's
//!    network faults (throttling, resets, blackholes, slow closes; their response side
//!    is applied to the response in step 8);
//! 4. `rewrite`: rewrite and header manipulation;
//! 5. `passthrough`: the destination's cluster (a ServiceEntry's outside the registry),
//!    or, for a host nobody declared, passthrough;
//! 6. `buffer` and `mirror`: the request body, buffered for retries, and the mirrors'
//!    copies;
//! 7. [`retry`]: under the route timeout (`UT`): attempts with per-try timeouts, retries
//!    with jittered backoff avoiding hosts already tried, load balancing, circuit
//!    breaking (`UO`) and outlier detection;
//! 8. relay the response; metrics and the access log are written when its body ends
//!    (`ctx`).
//!
//! `CONNECT` (a sidecar's app asking for a raw TCP stream) goes to [`tunnel`] instead.

mod action;
mod authorize;
mod buffer;
mod ctx;
pub mod fault;
mod matching;
mod mirror;
mod passthrough;
pub mod retry;
mod rewrite;
pub mod tunnel;

use std::ops::ControlFlow;
use std::sync::Arc;

use http::{Method, Request, Response};

use crate::http::body::ProxyBody;
use crate::http::http1::DownstreamBody;
use crate::http::respond::{self, LocalReply};
pub use crate::http::server::ConnInfo;
use crate::state::ProxyState;
pub use buffer::RETRY_BUFFER_LIMIT;
use ctx::{Ctx, Pending};

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
    let ctx = Ctx::new(&req, conn, &state);
    let mut pending = Pending {
        state,
        ctx: Some(ctx),
    };
    let resp = match pending.ctx.as_mut() {
        Some(ctx) => match route(&pending.state, req, ctx).await {
            ControlFlow::Continue(resp) | ControlFlow::Break(resp) => resp,
        },
        None => respond::local(LocalReply::BadRequest, "internal: request context missing"),
    };
    pending.finish(resp)
}

/// What a phase gives: `Continue` with what the next phases need, or `Break` with the
/// response that ends the request (a local reply, a redirect, an injected abort).
/// (Not a `Result`: these answers are not errors, and a response is too large for one.)
type Phase<T> = ControlFlow<Response<ProxyBody>, T>;

/// The phases of one request, in order.
async fn route(
    state: &ProxyState,
    req: Request<DownstreamBody>,
    ctx: &mut Ctx,
) -> Phase<Response<ProxyBody>> {
    let (mut parts, body) = req.into_parts();
    let authority = matching::authority(&mut parts, ctx)?;
    let authority = authority.as_str();
    let snap = state.store.load();
    if state.gateway {
        authorize::gateway(&snap, &parts, authority, ctx)?;
    }
    // A handle on the target (shared bytes, no copy) that outlives changes to `parts`.
    let target = parts.uri.path_and_query().cloned();
    let path = target.as_ref().map_or("/", |p| p.as_str());
    let Some(routes) = snap.routes(authority) else {
        return ControlFlow::Continue(
            passthrough::forward(state, parts, body, authority, path, ctx).await,
        );
    };
    let route = matching::route(routes, &parts, authority, path, ctx)?;
    let dest = action::destination(route, &parts, authority, ctx)?;
    ctx.note_route_span(route);
    let network = match &route.fault {
        Some(fault) => fault::inject(fault, route.expires_at_ms, ctx).await?,
        None => fault::network::Network::default(),
    };
    rewrite::request(route, dest, &mut parts, path);
    ctx.inject_trace(&mut parts.headers);
    // The cluster key lives in `ctx` (its host names the metrics' service if no endpoint
    // answers); it is lent out for the lookup and put back whatever the outcome.
    let Some(key) = ctx.destination.take() else {
        return ControlFlow::Break(ctx.local(
            LocalReply::NoCluster,
            "internal: the route picked no destination",
        ));
    };
    let cluster = passthrough::cluster(state, &snap, &key, ctx).await;
    ctx.destination = Some(key);
    let cluster = cluster?;
    let body = buffer::read(&parts, body, ctx).await?;
    ctx.rec.request_bytes = body.len();
    network.throttle_request(body.len(), ctx).await;
    ctx.cluster = Some(cluster.clone());
    mirror::send(state, &snap, route, &parts, &body);
    let exchange = state.exchange.as_ref();
    let mut resp = retry::forward(&cluster, route, &parts, body, exchange, ctx).await?;
    // The request's headers are done with: their map serves the next request.
    crate::http::headers::recycle(std::mem::take(&mut parts.headers));
    rewrite::response(route, dest, &mut resp);
    if network != fault::network::Network::default() {
        resp = network.on_response(resp, ctx).await;
    }
    ControlFlow::Continue(resp)
}
