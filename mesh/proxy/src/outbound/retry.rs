//! When to retry, and how long to wait in between, for a route's effective
//! [`RetryPolicy`] (computed by `mesh-api` with Istio's defaults applied).
//!
//! Condition semantics are Envoy's: `5xx` covers any 5xx, connect failures, resets and
//! per-try timeouts; `gateway-error` covers 502/503/504 and per-try timeouts; `reset`
//! covers answers that never came; `retriable-status-codes` covers the statuses listed
//! in the policy; gRPC names look at `grpc-status`.

use std::time::Duration;

use mesh_api::RetryPolicy;
use rand::Rng;

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
