//! Attempts and retries: when to retry, and how long to wait in between, for a route's
//! effective [`RetryPolicy`] (computed by `mesh-api` with Istio's defaults applied), and
//! the phase that runs a request's attempts under the route timeout (`UT`), each with
//! its per-try timeout, its endpoint from the balancer (avoiding hosts already tried)
//! and its circuit-breaker slot (`UO`), reporting each outcome to outlier detection.
//!
//! Condition semantics are Envoy's: `5xx` covers any 5xx, connect failures, resets and
//! per-try timeouts; `gateway-error` covers 502/503/504 and per-try timeouts; `reset`
//! covers answers that never came; `retriable-status-codes` covers the statuses listed
//! in the policy; gRPC names look at `grpc-status`.

use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use http::Response;
use http::request::Parts;
use mesh_api::{CompiledRoute, RetryPolicy};
use opentelemetry::KeyValue;
use rand::Rng;
use tokio::time::Instant;

use crate::http::body::{self, ProxyBody};
use crate::http::headers;
use crate::http::respond::LocalReply;
use crate::outbound::Phase;
use crate::outbound::buffer::RequestBody;
use crate::outbound::ctx::Ctx;
use crate::telemetry::flags::Flag;
use crate::telemetry::peer::Exchange;
use crate::upstream::cluster::Cluster;
use crate::upstream::outlier::Outcome;
use crate::upstream::pool::{Outgoing, PooledBody};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A response head arrived.
    Response {
        /// HTTP status.
        status: u16,
        /// `grpc-status` header, if present.
        grpc_status: Option<u32>,
    },
    /// No connection could be made.
    ConnectFailure,
    /// The connection broke before a response arrived.
    Reset,
    /// The per-try timeout fired.
    PerTryTimeout,
}

impl Attempt {
    /// How the attempt ended, for the span event of the retry that follows it.
    fn reason(self) -> &'static str {
        match self {
            Attempt::Response { .. } => "response",
            Attempt::ConnectFailure => "connect_failure",
            Attempt::Reset => "reset",
            Attempt::PerTryTimeout => "per_try_timeout",
        }
    }
}

/// Whether an attempt that ended like `a` may be retried under `p` (attempts left are
/// the caller's business).
pub fn should_retry(p: &RetryPolicy, a: Attempt) -> bool {
    let on = |c: &str| p.retries_on(c);
    match a {
        Attempt::Response {
            status,
            grpc_status,
        } => {
            // The cheap status tests go first: most responses are 2xx and fail them all.
            (status >= 500 && on("5xx"))
                || (matches!(status, 502..=504) && on("gateway-error"))
                || (status == 409 && on("retriable-4xx"))
                || (p.retriable_status_codes.contains(&status) && on("retriable-status-codes"))
                || grpc_status.is_some_and(|g| {
                    (on("cancelled") && g == 1)
                        || (on("deadline-exceeded") && g == 4)
                        || (on("resource-exhausted") && g == 8)
                        || (on("internal") && g == 13)
                        || (on("unavailable") && g == 14)
                })
        }
        Attempt::ConnectFailure => {
            on("connect-failure") || on("5xx") || on("gateway-error") || on("reset")
        }
        Attempt::Reset => on("reset") || on("5xx"),
        Attempt::PerTryTimeout => on("reset") || on("5xx") || on("gateway-error"),
    }
}

/// Envoy's fully jittered exponential backoff before retry number `n` (1-based): a
/// random time in `[0, min(base * 2^(n-1), 10 * base))`.
pub fn backoff_before(p: &RetryPolicy, n: u32) -> Duration {
    let ceiling = p
        .backoff
        .saturating_mul(1u32 << n.saturating_sub(1).min(16))
        .min(p.max_backoff());
    let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    Duration::from_nanos(rand::rng().random_range(0..nanos))
}

/// The attempts phase: the request's attempts under the route timeout; the answering
/// attempt's response, or the local reply for how the last one failed.
/// `exchange` is this proxy's peer metadata, sent when the cluster's endpoints are mesh
/// peers.
pub(super) async fn forward(
    cluster: &Arc<Cluster>,
    route: &CompiledRoute,
    parts: &Parts,
    body: RequestBody,
    exchange: Option<&Exchange>,
    ctx: &mut Ctx,
) -> Phase<Response<ProxyBody>> {
    let exchange = exchange.filter(|_| cluster.mesh);
    let attempts = attempts(cluster, route, parts, body, exchange, ctx);
    let outcome = match route.timeout {
        Some(t) => match tokio::time::timeout(t, attempts).await {
            Ok(outcome) => outcome,
            Err(_) => {
                ctx.trace_event("upstream_timeout", || {
                    vec![KeyValue::new("timeout_ms", t.as_millis() as i64)]
                });
                Err(LocalReply::Timeout)
            }
        },
        None => attempts.await,
    };
    match outcome {
        Ok(resp) => ControlFlow::Continue(resp),
        Err(reply) => {
            let cause = format!("{} ({})", reply.details(), cluster.name);
            ControlFlow::Break(ctx.local(reply, &cause))
        }
    }
}

/// Runs the attempts of one request: the first try, then retries as the route's policy
/// allows. The breaker slot and the endpoint's in-flight mark of the answering attempt
/// go to `ctx`, which keeps them until the response body ends.
async fn attempts(
    cluster: &Arc<Cluster>,
    route: &CompiledRoute,
    parts: &Parts,
    mut body: RequestBody,
    exchange: Option<&Exchange>,
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
    let mut previous: Option<Attempt> = None;
    for n in 1..=max {
        if n > 1 {
            let backoff = backoff_before(policy, n - 1);
            ctx.trace_event("retry", || {
                vec![
                    KeyValue::new("attempt", i64::from(n)),
                    KeyValue::new("retry.reason", previous.map_or("-", Attempt::reason)),
                    KeyValue::new("backoff_ms", backoff.as_millis() as i64),
                ]
            });
            tokio::time::sleep(backoff).await;
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
        let slot = match cluster.breaker.admit().await {
            Ok(slot) => slot,
            Err(_) => {
                ctx.trace_event("circuit_breaker.overflow", || {
                    vec![KeyValue::new("upstream_cluster", cluster.name.to_string())]
                });
                return Err(LocalReply::Overflow);
            }
        };
        let active = endpoint.start_request();
        ctx.note_endpoint(&endpoint);
        let out = Outgoing {
            head: parts,
            attempt: Some(n),
            exchange,
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
                ctx.note_upstream_failure(&e);
                (Attempt::ConnectFailure, None)
            }
            Some(Err(e)) => {
                ctx.note_upstream_failure(&e);
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
        if attempt == Attempt::PerTryTimeout {
            ctx.trace_event("upstream_per_try_timeout", || {
                vec![KeyValue::new("attempt", i64::from(n))]
            });
        }
        previous = Some(attempt);
        let retriable = should_retry(policy, attempt);
        if retriable && n < max {
            continue;
        }
        if retriable && n > 1 {
            ctx.note_flag(Flag::UpstreamRetryLimitExceeded);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16) -> Attempt {
        Attempt::Response {
            status,
            grpc_status: None,
        }
    }

    fn policy(retry_on: &[&str], codes: &[u16]) -> RetryPolicy {
        RetryPolicy {
            attempts: 2,
            retry_on: retry_on.iter().map(|s| (*s).to_owned()).collect(),
            retriable_status_codes: codes.to_vec(),
            ..RetryPolicy::istio_default()
        }
    }

    #[test]
    fn default_conditions() {
        let p = policy(
            &[
                "connect-failure",
                "refused-stream",
                "unavailable",
                "cancelled",
                "retriable-status-codes",
            ],
            &[503],
        );
        assert!(should_retry(&p, Attempt::ConnectFailure));
        assert!(should_retry(&p, resp(503)));
        assert!(
            !should_retry(&p, resp(500)),
            "the abort-500 lab relies on 500 not being retried"
        );
        assert!(!should_retry(&p, Attempt::PerTryTimeout));
        assert!(should_retry(
            &p,
            Attempt::Response {
                status: 200,
                grpc_status: Some(14)
            }
        ));
    }

    #[test]
    fn user_conditions() {
        let p = policy(&["gateway-error"], &[]);
        assert!(should_retry(&p, resp(504)));
        assert!(should_retry(&p, Attempt::PerTryTimeout));
        assert!(!should_retry(&p, resp(500)));
        let p = policy(&["5xx"], &[]);
        assert!(should_retry(&p, resp(500)) && should_retry(&p, Attempt::Reset));
        let p = policy(&["retriable-status-codes"], &[418]);
        assert!(should_retry(&p, resp(418)) && !should_retry(&p, resp(503)));
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let p = RetryPolicy::istio_default();
        for n in 1..10 {
            assert!(backoff_before(&p, n) < p.max_backoff(), "{n}");
        }
        assert!(
            (0..200)
                .map(|_| backoff_before(&p, 1))
                .all(|d| d < p.backoff)
        );
    }
}
