//! Retries with Istio's effective semantics.
//!
//! A route without `retries` gets Istio's default policy, which is *not* Envoy's:
//! 2 retries on `connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes`
//! with 503 as the retriable status, a 25 ms base backoff and "previous hosts" avoidance.
//! `retries.attempts: 0` disables retries. A `retryOn` given by the user replaces the
//! conditions *and* the status list (numbers in it become retriable statuses); `retries`
//! without `retryOn` keeps the default conditions including 503.

use std::time::Duration;

use rand::Rng;

/// Istio's default conditions.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

/// Envoy's default backoff base when none is configured.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(25);

/// Retry conditions, as flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `5xx`: any 5xx, a connect failure, a reset or a per-try timeout.
    pub five_xx: bool,
    /// `gateway-error`: 502, 503, 504 (and per-try timeouts, which answer 504).
    pub gateway_error: bool,
    /// `reset`: no response at all (disconnect, reset, per-try timeout).
    pub reset: bool,
    /// `reset-before-request`: the connection broke before the request was sent.
    pub reset_before_request: bool,
    /// `connect-failure`.
    pub connect_failure: bool,
    /// `retriable-4xx`: 409.
    pub retriable_4xx: bool,
    /// `refused-stream`: HTTP/2 REFUSED_STREAM.
    pub refused_stream: bool,
    /// `retriable-status-codes`: the statuses listed in the policy.
    pub retriable_status_codes: bool,
    /// gRPC `cancelled` (1).
    pub grpc_cancelled: bool,
    /// gRPC `deadline-exceeded` (4).
    pub grpc_deadline_exceeded: bool,
    /// gRPC `resource-exhausted` (8).
    pub grpc_resource_exhausted: bool,
    /// gRPC `internal` (13).
    pub grpc_internal: bool,
    /// gRPC `unavailable` (14).
    pub grpc_unavailable: bool,
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// A response head arrived.
    Response {
        /// HTTP status.
        status: u16,
        /// `grpc-status` trailer-in-header, if present.
        grpc_status: Option<u32>,
    },
    /// No connection could be made.
    ConnectFailure,
    /// The connection broke before the request was written.
    ResetBeforeRequest,
    /// The connection broke after the request was sent, before a response.
    Reset,
    /// The upstream refused the HTTP/2 stream.
    RefusedStream,
    /// The per-try timeout fired.
    PerTryTimeout,
}

/// The effective retry policy of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub attempts: u32,
    /// Timeout of each attempt, including the first.
    pub per_try_timeout: Option<Duration>,
    /// When to retry.
    pub conditions: Conditions,
    /// Statuses retried under `retriable-status-codes`.
    pub status_codes: Vec<u16>,
    /// Base of the jittered exponential backoff.
    pub backoff: Duration,
    /// Prefer endpoints not tried yet.
    pub avoid_previous_hosts: bool,
}

/// A `retryOn` entry we do not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown retryOn condition {0:?}")]
pub struct UnknownCondition(pub String);

/// Parses a `retryOn` list into conditions and retriable statuses.
pub fn parse_retry_on(s: &str) -> Result<(Conditions, Vec<u16>), UnknownCondition> {
    let mut c = Conditions::default();
    let mut codes = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if let Ok(code) = part.parse::<u16>() {
            if (100..=599).contains(&code) {
                codes.push(code);
                continue;
            }
        }
        match part {
            "5xx" => c.five_xx = true,
            "gateway-error" => c.gateway_error = true,
            "reset" => c.reset = true,
            "reset-before-request" => c.reset_before_request = true,
            "connect-failure" => c.connect_failure = true,
            "retriable-4xx" => c.retriable_4xx = true,
            "refused-stream" => c.refused_stream = true,
            "retriable-status-codes" => c.retriable_status_codes = true,
            "cancelled" => c.grpc_cancelled = true,
            "deadline-exceeded" => c.grpc_deadline_exceeded = true,
            "resource-exhausted" => c.grpc_resource_exhausted = true,
            "internal" => c.grpc_internal = true,
            "unavailable" => c.grpc_unavailable = true,
            // Accepted by Istio's validation; nothing in our proxy produces them.
            "retriable-headers" | "envoy-ratelimited" | "http3-post-connect-failure" => {}
            other => return Err(UnknownCondition(other.to_owned())),
        }
    }
    // Istio appends `retriable-status-codes` when the user listed bare codes.
    if !codes.is_empty() {
        c.retriable_status_codes = true;
    }
    Ok((c, codes))
}

impl RetryPolicy {
    /// Istio's default policy, used for routes without `retries`.
    pub fn istio_default() -> Self {
        let (conditions, _) = parse_retry_on(DEFAULT_RETRY_ON).unwrap_or_default();
        Self {
            attempts: 2,
            per_try_timeout: None,
            conditions,
            status_codes: vec![503],
            backoff: DEFAULT_BACKOFF,
            avoid_previous_hosts: true,
        }
    }

    /// The policy for a route's `retries` block, applying Istio's overrides onto the
    /// default. `None` when `attempts <= 0` (retries disabled).
    pub fn from_route(
        attempts: i32,
        per_try_timeout: Option<Duration>,
        retry_on: Option<&str>,
        backoff: Option<Duration>,
        ignore_previous_hosts: Option<bool>,
    ) -> Result<Option<Self>, UnknownCondition> {
        if attempts <= 0 {
            return Ok(None);
        }
        let mut p = Self::istio_default();
        p.attempts = attempts.unsigned_abs();
        if let Some(on) = retry_on.filter(|s| !s.trim().is_empty()) {
            let (conditions, codes) = parse_retry_on(on)?;
            p.conditions = conditions;
            p.status_codes = codes;
        }
        p.per_try_timeout = per_try_timeout;
        if let Some(b) = backoff {
            p.backoff = b;
        }
        if let Some(ignore) = ignore_previous_hosts {
            p.avoid_previous_hosts = ignore;
        }
        Ok(Some(p))
    }

    /// Whether an attempt that ended like `a` may be retried under this policy.
    pub fn should_retry(&self, a: Attempt) -> bool {
        let c = &self.conditions;
        match a {
            Attempt::Response {
                status,
                grpc_status,
            } => {
                (c.five_xx && status >= 500)
                    || (c.gateway_error && matches!(status, 502..=504))
                    || (c.retriable_4xx && status == 409)
                    || (c.retriable_status_codes && self.status_codes.contains(&status))
                    || grpc_status.is_some_and(|g| {
                        (c.grpc_cancelled && g == 1)
                            || (c.grpc_deadline_exceeded && g == 4)
                            || (c.grpc_resource_exhausted && g == 8)
                            || (c.grpc_internal && g == 13)
                            || (c.grpc_unavailable && g == 14)
                    })
            }
            Attempt::ConnectFailure => c.connect_failure || c.five_xx || c.gateway_error || c.reset,
            Attempt::ResetBeforeRequest => c.reset_before_request || c.reset || c.five_xx,
            Attempt::Reset => c.reset || c.five_xx,
            Attempt::RefusedStream => c.refused_stream || c.reset || c.five_xx,
            Attempt::PerTryTimeout => c.reset || c.five_xx || c.gateway_error,
        }
    }

    /// Envoy's fully jittered exponential backoff before retry number `n` (1-based):
    /// a random time in `[0, min(base * 2^(n-1), 10 * base))`.
    pub fn backoff_before(&self, n: u32) -> Duration {
        let cap = self.backoff.saturating_mul(10);
        let ceiling = self
            .backoff
            .saturating_mul(1u32 << n.saturating_sub(1).min(16))
            .min(cap);
        if ceiling.is_zero() {
            return Duration::ZERO;
        }
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rand::rng().random_range(0..nanos))
    }
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

    #[test]
    fn istio_default_retries_connect_failures_and_503_only() {
        let p = RetryPolicy::istio_default();
        assert_eq!(p.attempts, 2);
        assert!(p.should_retry(Attempt::ConnectFailure));
        assert!(
            p.should_retry(resp(503)),
            "Istio lists 503 as retriable by default"
        );
        assert!(
            !p.should_retry(resp(500)),
            "the abort-500 lab relies on 500 not being retried"
        );
        assert!(!p.should_retry(resp(504)));
        assert!(!p.should_retry(Attempt::PerTryTimeout));
        assert!(p.should_retry(Attempt::Response {
            status: 200,
            grpc_status: Some(14)
        }));
    }

    #[test]
    fn user_policy_overrides() {
        let p = RetryPolicy::from_route(
            3,
            Some(Duration::from_secs(2)),
            Some("gateway-error,connect-failure"),
            None,
            None,
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.attempts, 3);
        assert!(p.should_retry(resp(504)));
        assert!(p.should_retry(Attempt::PerTryTimeout));
        assert!(!p.should_retry(resp(500)));
        assert!(
            p.status_codes.is_empty(),
            "a user retryOn replaces the default 503"
        );

        let codes = RetryPolicy::from_route(1, None, Some("500,connect-failure"), None, None)
            .unwrap()
            .unwrap();
        assert!(codes.conditions.retriable_status_codes);
        assert!(codes.should_retry(resp(500)));
        assert!(!codes.should_retry(resp(503)));

        let kept = RetryPolicy::from_route(5, None, None, None, Some(false))
            .unwrap()
            .unwrap();
        assert!(
            kept.should_retry(resp(503)),
            "retries without retryOn keep the default conditions"
        );
        assert!(!kept.avoid_previous_hosts);

        assert_eq!(
            RetryPolicy::from_route(0, None, None, None, None).unwrap(),
            None
        );
        assert!(RetryPolicy::from_route(1, None, Some("sometimes"), None, None).is_err());
    }

    #[test]
    fn backoff_is_jittered_and_capped() {
        let p = RetryPolicy::istio_default();
        for n in 1..10 {
            let d = p.backoff_before(n);
            assert!(d < Duration::from_millis(250), "{n}: {d:?}");
        }
        assert!(
            (0..200)
                .map(|_| p.backoff_before(1))
                .all(|d| d < Duration::from_millis(25))
        );
    }
}
