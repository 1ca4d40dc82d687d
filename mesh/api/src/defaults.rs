//! Istio's *effective* defaults, computed once so the proxy never re-derives them.
//!
//! These are what istiod actually programs into Envoy, which often differs from Envoy's own
//! defaults: no route timeout (Envoy would use 15 s), 2 retries on connection-level failures,
//! LEAST_REQUEST balancing, unlimited circuit breakers, 10 s connect timeout, and no
//! outlier detection unless a DestinationRule asks for it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::networking::destination_rule::{
    ClientTlsSettings, ConnectionPoolSettings, LoadBalancerSettings, OutlierDetection,
    PortTrafficPolicy, SimpleLb, TrafficPolicy,
};
use crate::networking::virtual_service::{Destination, HttpFaultInjection, HttpRoute};

mod fault_text;
pub use fault_text::{format_rate, parse_rate};

/// Retries when a route has no `retries` block.
pub const DEFAULT_RETRY_ATTEMPTS: u32 = 2;
/// `retryOn` when a route has no `retries`, or has `retries` without `retryOn`.
pub const DEFAULT_RETRY_ON: &str =
    "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";
/// Statuses retried under `retriable-status-codes` by the default policy. istiod adds
/// 503 to its default retry policy (unless told otherwise), and keeps it when a route sets
/// `retries` without `retryOn`; a user `retryOn` replaces the list with its own numbers.
pub const DEFAULT_RETRIABLE_STATUS_CODES: [u16; 1] = [503];
/// Base backoff between retries (exponential, jittered, capped at 10× base).
pub const DEFAULT_RETRY_BACKOFF: Duration = Duration::from_millis(25);
/// Upstream connect timeout (meshConfig `connectTimeout`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle timeout of upstream connections.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// "Unlimited" as Istio writes it into circuit breakers (2^32-1).
pub const UNLIMITED: u32 = u32::MAX;
/// Outlier detection: consecutive 5xx before ejection.
pub const DEFAULT_CONSECUTIVE_5XX: u32 = 5;
/// Outlier detection: sweep interval.
pub const DEFAULT_OUTLIER_INTERVAL: Duration = Duration::from_secs(10);
/// Outlier detection: base ejection time.
pub const DEFAULT_BASE_EJECTION_TIME: Duration = Duration::from_secs(30);
/// Outlier detection: at most this share of hosts ejected (Envoy still ejects one).
pub const DEFAULT_MAX_EJECTION_PERCENT: u32 = 10;
/// Outlier detection: Envoy's cap on a single ejection.
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);
/// Default redirect status.
pub const DEFAULT_REDIRECT_CODE: u16 = 301;
/// Share of traffic mirrored when no percentage is given.
pub const DEFAULT_MIRROR_PERCENT: f64 = 100.0;
/// Share of requests faulted when no percentage is given.
pub const DEFAULT_FAULT_PERCENT: f64 = 0.0;

/// The timeout a route really has: `None` means no timeout (not Envoy's 15 s). An explicit
/// `0s` also disables it.
pub fn effective_timeout(route: &HttpRoute) -> Option<Duration> {
    route.timeout.map(|t| t.get()).filter(|t| !t.is_zero())
}

/// A route's retry policy as it takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Retries after the first try (0 = no retries).
    pub attempts: u32,
    /// Named conditions (`connect-failure`, `5xx`, `unavailable`, ...).
    pub retry_on: Vec<String>,
    /// Upstream status codes that are retried (from numeric `retryOn` entries).
    pub retriable_status_codes: Vec<u16>,
    /// Timeout of each try; `None` = the route timeout (if any) bounds the whole thing.
    pub per_try_timeout: Option<Duration>,
    /// Base backoff interval.
    pub backoff: Duration,
    /// Prefer hosts not tried before.
    pub retry_ignore_previous_hosts: bool,
    /// Retry in other localities.
    pub retry_remote_localities: bool,
}

impl RetryPolicy {
    /// No retries at all.
    pub fn disabled() -> Self {
        Self {
            attempts: 0,
            retry_on: Vec::new(),
            retriable_status_codes: Vec::new(),
            per_try_timeout: None,
            backoff: DEFAULT_RETRY_BACKOFF,
            retry_ignore_previous_hosts: true,
            retry_remote_localities: false,
        }
    }

    /// Istio's default policy (route without `retries`).
    pub fn istio_default() -> Self {
        let (retry_on, _) = split_retry_on(DEFAULT_RETRY_ON);
        let retriable_status_codes = DEFAULT_RETRIABLE_STATUS_CODES.to_vec();
        Self {
            attempts: DEFAULT_RETRY_ATTEMPTS,
            retry_on,
            retriable_status_codes,
            ..Self::disabled()
        }
    }

    /// The policy a route really has:
    /// * no `retries` → [`RetryPolicy::istio_default`];
    /// * `attempts <= 0` → disabled;
    /// * `retryOn` absent or empty → the default `retryOn`;
    /// * numeric `retryOn` entries become retriable status codes (and
    ///   `retriable-status-codes` is added, as istiod does).
    pub fn effective(route: &HttpRoute) -> Self {
        let Some(retries) = &route.retries else {
            return Self::istio_default();
        };
        let Ok(attempts) = u32::try_from(retries.attempts) else {
            return Self::disabled();
        };
        if attempts == 0 {
            return Self::disabled();
        }
        let user_retry_on = retries.retry_on.as_deref().filter(|s| !s.trim().is_empty());
        let (mut conditions, codes) = match user_retry_on {
            Some(on) => split_retry_on(on),
            None => (
                split_retry_on(DEFAULT_RETRY_ON).0,
                DEFAULT_RETRIABLE_STATUS_CODES.to_vec(),
            ),
        };
        if !codes.is_empty() && !conditions.iter().any(|c| c == "retriable-status-codes") {
            conditions.push("retriable-status-codes".to_owned());
        }
        Self {
            attempts,
            retry_on: conditions,
            retriable_status_codes: codes,
            per_try_timeout: retries.per_try_timeout.map(|d| d.get()),
            backoff: retries.backoff.map_or(DEFAULT_RETRY_BACKOFF, |d| d.get()),
            retry_ignore_previous_hosts: retries.retry_ignore_previous_hosts.unwrap_or(true),
            retry_remote_localities: retries.retry_remote_localities.unwrap_or(false),
        }
    }

    /// Does the policy name this condition?
    pub fn retries_on(&self, condition: &str) -> bool {
        self.retry_on.iter().any(|c| c == condition)
    }

    /// Longest backoff (Envoy: 10× base).
    pub fn max_backoff(&self) -> Duration {
        self.backoff.saturating_mul(10)
    }
}

/// `"5xx, 503,connect-failure"` → (`["5xx", "connect-failure"]`, `[503]`).
fn split_retry_on(text: &str) -> (Vec<String>, Vec<u16>) {
    let mut conditions = Vec::new();
    let mut codes = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match item.parse::<u16>() {
            Ok(code) => codes.push(code),
            Err(_) => conditions.push(item.to_owned()),
        }
    }
    (conditions, codes)
}

/// Injected faults as they take effect. The proxy applies them before the route's timeout
/// and retries start: an injected delay is not cut by the route timeout and an injected
/// abort is never retried (in Envoy the fault filter runs before the router).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EffectiveFault {
    /// Delay, if any.
    pub delay: Option<EffectiveDelay>,
    /// Abort, if any.
    pub abort: Option<EffectiveAbort>,
    /// Throttled link (fault leases only, like the three below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<EffectiveBandwidth>,
    /// Connection cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<EffectiveReset>,
    /// No answer at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackhole: Option<EffectiveBlackhole>,
    /// End of the response held back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_close: Option<EffectiveSlowClose>,
}

/// An injected delay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveDelay {
    /// How long.
    pub fixed_delay: Duration,
    /// Share of requests, 0-100 (absent in YAML = 0).
    pub percent: f64,
    /// Each delay is drawn uniformly from `fixed_delay ± jitter` (fault leases only).
    #[serde(default, skip_serializing_if = "Duration::is_zero")]
    pub jitter: Duration,
    /// Before the request is forwarded (Istio's delay) or before the response is relayed.
    #[serde(default, skip_serializing_if = "Direction::is_request")]
    pub direction: Direction,
}

/// Which way a network fault acts: on the way to the service, or on the way back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Caller to service.
    #[default]
    Request,
    /// Service to caller.
    Response,
}

impl Direction {
    /// True for [`Direction::Request`] (what a field left out means).
    pub fn is_request(&self) -> bool {
        *self == Direction::Request
    }

    /// `request` or `response`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Request => "request",
            Direction::Response => "response",
        }
    }
}

/// A throttled link: the body of the request or of the response moves at this rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveBandwidth {
    /// Rate.
    pub bytes_per_second: u64,
    /// Which body is throttled.
    pub direction: Direction,
    /// Share of requests, 0-100.
    pub percent: f64,
}

/// A connection cut: on the request's way (the service never sees it, the caller gets
/// no answer), or on the response's way after `after_bytes` bytes of its body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveReset {
    /// Body bytes relayed before the cut (response direction).
    pub after_bytes: u64,
    /// Where the connection is cut.
    pub direction: Direction,
    /// Share of requests, 0-100.
    pub percent: f64,
}

/// A blackhole: the connection stays open and nothing comes back, until the caller gives
/// up or the fault ends. On the response's way the service does the work first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveBlackhole {
    /// Where the traffic disappears.
    pub direction: Direction,
    /// Share of requests, 0-100.
    pub percent: f64,
}

/// A slow close: the whole response is relayed, but its end (the last chunk) only after
/// this delay, so a caller that reads to the end waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveSlowClose {
    /// How long the end is held.
    pub delay: Duration,
    /// Share of requests, 0-100.
    pub percent: f64,
}

/// An injected abort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveAbort {
    /// What to answer.
    pub status: AbortStatus,
    /// Share of requests, 0-100 (absent in YAML = 0).
    pub percent: f64,
}

/// The error an abort returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AbortStatus {
    /// HTTP status code.
    Http(u16),
    /// gRPC status name, e.g. `UNAVAILABLE`.
    Grpc(String),
}

impl EffectiveFault {
    /// The fault of a route; `None` when there is none or nothing could ever fire.
    /// A missing percentage means **0 %** (current Istio), unlike mirroring.
    pub fn effective(fault: Option<&HttpFaultInjection>) -> Option<Self> {
        let fault = fault?;
        let delay = fault.delay.as_ref().and_then(|d| {
            let percent = d
                .percentage
                .map(|p| p.value)
                .or(d.percent.map(f64::from))
                .unwrap_or(DEFAULT_FAULT_PERCENT);
            d.fixed_delay.map(|fixed| EffectiveDelay {
                fixed_delay: fixed.get(),
                percent,
                jitter: Duration::ZERO,
                direction: Direction::Request,
            })
        });
        let abort = fault.abort.as_ref().and_then(|a| {
            let percent = a.percentage.map_or(DEFAULT_FAULT_PERCENT, |p| p.value);
            let status = match (&a.http_status, &a.grpc_status) {
                (Some(code), _) => AbortStatus::Http(u16::try_from(*code).ok()?),
                (None, Some(name)) => AbortStatus::Grpc(name.clone()),
                (None, None) => return None,
            };
            Some(EffectiveAbort { status, percent })
        });
        if delay.is_none() && abort.is_none() {
            return None;
        }
        Some(Self {
            delay,
            abort,
            ..Self::default()
        })
    }
}

/// A mirror target as it takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectiveMirror {
    /// Target.
    pub destination: Destination,
    /// Share of requests copied, 0-100 (absent in YAML = 100).
    pub percent: f64,
}

/// Mirrors of a route: the single `mirror` (with `mirrorPercentage`, or the deprecated
/// `mirrorPercent`, default 100 %) or each `mirrors[]` entry (default 100 %).
pub fn effective_mirrors(route: &HttpRoute) -> Vec<EffectiveMirror> {
    if let Some(mirror) = &route.mirror {
        let percent = route
            .mirror_percentage
            .map(|p| p.value)
            .or(route.mirror_percent.map(f64::from))
            .unwrap_or(DEFAULT_MIRROR_PERCENT);
        return vec![EffectiveMirror {
            destination: mirror.clone(),
            percent,
        }];
    }
    route
        .mirrors
        .iter()
        .map(|m| EffectiveMirror {
            destination: m.destination.clone(),
            percent: m.percentage.map_or(DEFAULT_MIRROR_PERCENT, |p| p.value),
        })
        .collect()
}

/// Load-balancing algorithm as it takes effect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LoadBalancer {
    /// Fewest active requests among two random picks (Istio's default).
    LeastRequest,
    /// Round robin.
    RoundRobin,
    /// Uniform random.
    Random,
    /// Use the original destination address.
    Passthrough,
    /// Session affinity on a request attribute.
    ConsistentHash(HashKey),
}

/// What consistent hashing hashes on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum HashKey {
    /// A request header.
    Header(String),
    /// A cookie (generated when a TTL is set).
    Cookie {
        /// Cookie name.
        name: String,
        /// Cookie path.
        path: Option<String>,
        /// Lifetime.
        ttl: Option<Duration>,
    },
    /// The client IP.
    SourceIp,
    /// A query parameter.
    QueryParameter(String),
}

impl LoadBalancer {
    /// From `loadBalancer` (absent → LEAST_REQUEST; `UNSPECIFIED`/`LEAST_CONN` too).
    pub fn effective(settings: Option<&LoadBalancerSettings>) -> Self {
        let Some(settings) = settings else {
            return Self::LeastRequest;
        };
        if let Some(hash) = &settings.consistent_hash {
            let key = if let Some(header) = &hash.http_header_name {
                Some(HashKey::Header(header.to_ascii_lowercase()))
            } else if let Some(cookie) = &hash.http_cookie {
                Some(HashKey::Cookie {
                    name: cookie.name.clone(),
                    path: cookie.path.clone(),
                    ttl: cookie.ttl.map(|t| t.get()),
                })
            } else if hash.use_source_ip == Some(true) {
                Some(HashKey::SourceIp)
            } else {
                hash.http_query_parameter_name
                    .clone()
                    .map(HashKey::QueryParameter)
            };
            if let Some(key) = key {
                return Self::ConsistentHash(key);
            }
        }
        match settings.simple {
            Some(SimpleLb::RoundRobin) => Self::RoundRobin,
            Some(SimpleLb::Random) => Self::Random,
            Some(SimpleLb::Passthrough) => Self::Passthrough,
            Some(SimpleLb::LeastRequest | SimpleLb::LeastConn | SimpleLb::Unspecified) | None => {
                Self::LeastRequest
            }
        }
    }
}

/// Connection pool limits as they take effect (per upstream host).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectionPool {
    /// Maximum TCP connections.
    pub max_connections: u32,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Upstream connection idle timeout (`None` = disabled by `0s`).
    pub idle_timeout: Option<Duration>,
    /// Maximum connection lifetime.
    pub max_connection_duration: Option<Duration>,
    /// Maximum requests waiting for a connection.
    pub http1_max_pending_requests: u32,
    /// Maximum active requests.
    pub http2_max_requests: u32,
    /// Requests per connection; 0 = unlimited.
    pub max_requests_per_connection: u32,
    /// Outstanding retries across the host.
    pub max_retries: u32,
    /// `h2UpgradePolicy: UPGRADE`: HTTP/1.1 requests go to the endpoints over HTTP/2
    /// (Istio's mesh-wide default is `DO_NOT_UPGRADE`).
    #[serde(default)]
    pub h2_upgrade: bool,
    /// `useClientProtocol`: HTTP/2 clients are served over HTTP/2 upstream too.
    #[serde(default)]
    pub use_client_protocol: bool,
}

impl Default for ConnectionPool {
    fn default() -> Self {
        Self {
            max_connections: UNLIMITED,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            idle_timeout: Some(DEFAULT_IDLE_TIMEOUT),
            max_connection_duration: None,
            http1_max_pending_requests: UNLIMITED,
            http2_max_requests: UNLIMITED,
            max_requests_per_connection: 0,
            max_retries: UNLIMITED,
            h2_upgrade: false,
            use_client_protocol: false,
        }
    }
}

/// A positive i32 setting or the default (Istio treats 0 as "unset").
fn limit(value: Option<i32>, default: u32) -> u32 {
    match value {
        Some(v) if v > 0 => v.unsigned_abs(),
        _ => default,
    }
}

impl ConnectionPool {
    /// From `connectionPool` (absent fields → unlimited / 10 s connect timeout / 1 h idle).
    pub fn effective(settings: Option<&ConnectionPoolSettings>) -> Self {
        let defaults = Self::default();
        let Some(settings) = settings else {
            return defaults;
        };
        let tcp = settings.tcp.as_ref();
        let http = settings.http.as_ref();
        let idle = http
            .and_then(|h| h.idle_timeout)
            .or(tcp.and_then(|t| t.idle_timeout))
            .map(|d| d.get());
        Self {
            max_connections: limit(tcp.and_then(|t| t.max_connections), UNLIMITED),
            connect_timeout: tcp
                .and_then(|t| t.connect_timeout)
                .map_or(DEFAULT_CONNECT_TIMEOUT, |d| d.get()),
            idle_timeout: match idle {
                Some(d) if d.is_zero() => None,
                Some(d) => Some(d),
                None => defaults.idle_timeout,
            },
            max_connection_duration: tcp.and_then(|t| t.max_connection_duration).map(|d| d.get()),
            http1_max_pending_requests: limit(
                http.and_then(|h| h.http1_max_pending_requests),
                UNLIMITED,
            ),
            http2_max_requests: limit(http.and_then(|h| h.http2_max_requests), UNLIMITED),
            max_requests_per_connection: limit(http.and_then(|h| h.max_requests_per_connection), 0),
            max_retries: limit(http.and_then(|h| h.max_retries), UNLIMITED),
            h2_upgrade: http.and_then(|h| h.h2_upgrade_policy.as_deref()) == Some("UPGRADE"),
            use_client_protocol: http.and_then(|h| h.use_client_protocol) == Some(true),
        }
    }
}

/// Outlier detection as it takes effect (only when a DestinationRule sets it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outlier {
    /// Consecutive 5xx before ejection; 0 = this trigger is off.
    pub consecutive_5xx_errors: u32,
    /// Consecutive 502/503/504 before ejection; 0 = off.
    pub consecutive_gateway_errors: u32,
    /// Sweep interval.
    pub interval: Duration,
    /// Base ejection time (multiplied by the number of ejections, capped at 300 s).
    pub base_ejection_time: Duration,
    /// Maximum share of ejected hosts (at least one host may always be ejected).
    pub max_ejection_percent: u32,
    /// Panic threshold; 0 = never route to ejected hosts because of low health.
    pub min_health_percent: u32,
}

impl Outlier {
    /// `None` unless `outlierDetection` is present; missing fields get Istio's defaults.
    pub fn effective(settings: Option<&OutlierDetection>) -> Option<Self> {
        let od = settings?;
        let percent =
            |v: Option<i32>, default: u32| v.map_or(default, |v| v.clamp(0, 100).unsigned_abs());
        Some(Self {
            consecutive_5xx_errors: od.consecutive_5xx_errors.unwrap_or(DEFAULT_CONSECUTIVE_5XX),
            consecutive_gateway_errors: od
                .consecutive_gateway_errors
                .or(od.consecutive_errors.and_then(|v| u32::try_from(v).ok()))
                .unwrap_or(0),
            interval: od.interval.map_or(DEFAULT_OUTLIER_INTERVAL, |d| d.get()),
            base_ejection_time: od
                .base_ejection_time
                .map_or(DEFAULT_BASE_EJECTION_TIME, |d| d.get()),
            max_ejection_percent: percent(od.max_ejection_percent, DEFAULT_MAX_EJECTION_PERCENT),
            min_health_percent: percent(od.min_health_percent, 0),
        })
    }

    /// How long the `n`-th ejection (1-based) of a host lasts.
    pub fn ejection_time(&self, times_ejected: u32) -> Duration {
        self.base_ejection_time
            .saturating_mul(times_ejected.max(1))
            .min(MAX_EJECTION_TIME.max(self.base_ejection_time))
    }
}

/// Upstream TLS as it takes effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpstreamTls {
    /// No DR setting: mesh mTLS iff the endpoint has a sidecar, else plaintext.
    Auto,
    /// Explicit settings from the DestinationRule.
    Explicit(ClientTlsSettings),
}

/// Everything a DestinationRule decides for one (subset, port), defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EffectivePolicy {
    /// Balancing algorithm.
    pub load_balancer: LoadBalancer,
    /// Pool limits and timeouts.
    pub connection_pool: ConnectionPool,
    /// Passive health checking, if configured.
    pub outlier_detection: Option<Outlier>,
    /// Upstream TLS.
    pub tls: UpstreamTls,
}

impl Default for EffectivePolicy {
    fn default() -> Self {
        Self::from_policy(None)
    }
}

impl EffectivePolicy {
    /// Applies defaults to a (possibly absent) traffic policy, ignoring port-level settings.
    pub fn from_policy(policy: Option<&TrafficPolicy>) -> Self {
        Self {
            load_balancer: LoadBalancer::effective(policy.and_then(|p| p.load_balancer.as_ref())),
            connection_pool: ConnectionPool::effective(
                policy.and_then(|p| p.connection_pool.as_ref()),
            ),
            outlier_detection: Outlier::effective(
                policy.and_then(|p| p.outlier_detection.as_ref()),
            ),
            tls: policy
                .and_then(|p| p.tls.clone())
                .map_or(UpstreamTls::Auto, UpstreamTls::Explicit),
        }
    }

    /// A `portLevelSettings` entry: **no inheritance** from the rule-level fields; what the
    /// entry leaves out gets the defaults.
    pub fn from_port(port: &PortTrafficPolicy) -> Self {
        Self::from_policy(Some(&TrafficPolicy {
            load_balancer: port.load_balancer.clone(),
            connection_pool: port.connection_pool.clone(),
            outlier_detection: port.outlier_detection.clone(),
            tls: port.tls.clone(),
            ..TrafficPolicy::default()
        }))
    }
}

/// Subset policy merged over the rule policy **field by field**: each of loadBalancer,
/// connectionPool, outlierDetection, tls and portLevelSettings set on the subset replaces
/// the rule's; unset ones are inherited.
pub fn merge_subset_policy(
    rule: Option<&TrafficPolicy>,
    subset: Option<&TrafficPolicy>,
) -> Option<TrafficPolicy> {
    let Some(subset) = subset else {
        return rule.cloned();
    };
    let base = rule.cloned().unwrap_or_default();
    Some(TrafficPolicy {
        load_balancer: subset.load_balancer.clone().or(base.load_balancer),
        connection_pool: subset.connection_pool.clone().or(base.connection_pool),
        outlier_detection: subset.outlier_detection.clone().or(base.outlier_detection),
        tls: subset.tls.clone().or(base.tls),
        port_level_settings: if subset.port_level_settings.is_empty() {
            base.port_level_settings
        } else {
            subset.port_level_settings.clone()
        },
        tunnel: subset.tunnel.clone().or(base.tunnel),
        proxy_protocol: subset.proxy_protocol.clone().or(base.proxy_protocol),
        retry_budget: subset.retry_budget.clone().or(base.retry_budget),
    })
}
