//! Faults as leases: what a caller asks for (`POST /api/v1/faults`) and what it gets back.
//!
//! Besides Istio's delay and abort, a lease may carry the network faults of Toxiproxy's
//! toxics and Chaos Mesh's NetworkChaos, as the caller's sidecar can apply them to one
//! HTTP exchange: a throttled link, a cut connection, a blackhole, a slow close, and
//! delays with jitter on either direction. Their types serve the request and the listing
//! alike; the listing fills every default in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::defaults::Direction;
use crate::defaults::{
    AbortStatus, EffectiveAbort, EffectiveBandwidth, EffectiveBlackhole, EffectiveDelay,
    EffectiveFault, EffectiveReset, EffectiveSlowClose,
};
use crate::duration::parse_duration;

/// The body of `POST /api/v1/faults`. Checked by the control plane, which answers with a
/// [`FaultCreated`] or a 400 naming the field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRequest {
    /// Target service (`ratings` or a qualified host).
    pub service: String,
    /// Namespace that qualifies a short service name (default `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Only traffic routed to this subset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Delay to inject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayRequest>,
    /// Abort to inject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortRequest>,
    /// Throttle the request's or the response's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthFault>,
    /// Cut the connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetFault>,
    /// Never answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackhole: Option<BlackholeFault>,
    /// Hold the end of the response.
    #[serde(default, alias = "slowClose", skip_serializing_if = "Option::is_none")]
    pub slow_close: Option<SlowCloseFault>,
    /// Only requests carrying these headers with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Lease duration, 1 to 3600 seconds (signed, so a negative value is reported as
    /// out of range rather than as a type error).
    #[serde(default, alias = "ttlSeconds", skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<i64>,
}

/// `delay` of a fault request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelayRequest {
    /// Istio duration (`7s`, `500ms`).
    #[serde(alias = "fixedDelay")]
    pub fixed_delay: String,
    /// Share of requests, 0-100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
    /// Each delay drawn from `fixed_delay ± jitter` (Istio duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// `request` (default: before forwarding) or `response` (before relaying the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
}

/// `bandwidth` of a fault request: the body moves at this rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BandwidthFault {
    /// Rate, at least 1 (signed, so a negative value is reported as out of range).
    #[serde(alias = "bytesPerSecond")]
    pub bytes_per_second: i64,
    /// `response` (default) or `request`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Share of requests, 0-100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

/// `reset` of a fault request: the connection to the caller is cut.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetFault {
    /// Response body bytes relayed before the cut (default 0: the caller gets no response at all).
    #[serde(default, alias = "afterBytes", skip_serializing_if = "Option::is_none")]
    pub after_bytes: Option<i64>,
    /// `response` (default) or `request` (before forwarding: the service never sees it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Share of requests, 0-100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

/// `blackhole` of a fault request: the caller's connection stays open, nothing comes back
/// until it gives up or the lease ends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlackholeFault {
    /// `request` (default: never forwarded) or `response` (forwarded, answer dropped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<Direction>,
    /// Share of requests, 0-100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

/// `slow_close` of a fault request: the response's end is held back this long.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowCloseFault {
    /// Istio duration (`2s`).
    pub delay: String,
    /// Share of requests, 0-100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

/// `abort` of a fault request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbortRequest {
    /// HTTP status to answer with.
    #[serde(alias = "httpStatus")]
    pub http_status: i64,
    /// Share of requests, 0-100 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage: Option<f64>,
}

/// `delay` as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DelayView {
    /// Duration in Istio notation.
    pub fixed_delay: String,
    /// Share of requests.
    pub percentage: f64,
    /// Jitter in Istio notation, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    /// Direction, when it is `response`.
    #[serde(default, skip_serializing_if = "Direction::is_request")]
    pub direction: Direction,
}

/// `abort` as listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbortView {
    /// Status.
    pub http_status: u16,
    /// Share of requests.
    pub percentage: f64,
}

/// A lease as `GET /api/v1/faults` and `describe` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaseView {
    /// Lease id.
    pub id: String,
    /// Service as given.
    pub service: String,
    /// Namespace.
    pub namespace: String,
    /// Qualified host.
    pub host: String,
    /// Subset restriction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subset: Option<String>,
    /// Delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<DelayView>,
    /// Abort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abort: Option<AbortView>,
    /// Throttled link, defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<BandwidthFault>,
    /// Connection cut, defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reset: Option<ResetFault>,
    /// Blackhole, defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blackhole: Option<BlackholeFault>,
    /// Slow close, defaults filled in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_close: Option<SlowCloseFault>,
    /// Header matches.
    pub headers: BTreeMap<String, String>,
    /// Lease duration.
    pub ttl_seconds: u64,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// End time (ms since the epoch).
    pub expires_at_ms: u64,
    /// Time left.
    pub remaining_ms: u64,
}

/// Answer of `POST /api/v1/faults` (status 201): the lease, plus findings such as a
/// service no route or endpoint knows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultCreated {
    /// The lease created.
    #[serde(flatten)]
    pub lease: LeaseView,
    /// Non-fatal findings about the request.
    #[serde(default)]
    pub warnings: Vec<String>,
}

impl LeaseView {
    /// The lease's fault in the data plane's terms, for one-line summaries
    /// (`delay 7s (100%)`). Fields the control plane filled in are read back as written;
    /// anything unreadable counts as zero rather than failing a listing.
    pub fn effect(&self) -> EffectiveFault {
        let duration = |text: &str| parse_duration(text).unwrap_or_default();
        let count = |n: Option<i64>| n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0);
        let percent = |p: Option<f64>| p.unwrap_or(100.0);
        EffectiveFault {
            delay: self.delay.as_ref().map(|d| EffectiveDelay {
                fixed_delay: duration(&d.fixed_delay),
                percent: d.percentage,
                jitter: d.jitter.as_deref().map(duration).unwrap_or_default(),
                direction: d.direction,
            }),
            abort: self.abort.as_ref().map(|a| EffectiveAbort {
                status: AbortStatus::Http(a.http_status),
                percent: a.percentage,
            }),
            bandwidth: self.bandwidth.as_ref().map(|b| EffectiveBandwidth {
                bytes_per_second: count(Some(b.bytes_per_second)),
                direction: b.direction.unwrap_or(Direction::Response),
                percent: percent(b.percentage),
            }),
            reset: self.reset.as_ref().map(|r| EffectiveReset {
                after_bytes: count(r.after_bytes),
                direction: r.direction.unwrap_or(Direction::Response),
                percent: percent(r.percentage),
            }),
            blackhole: self.blackhole.as_ref().map(|b| EffectiveBlackhole {
                direction: b.direction.unwrap_or(Direction::Request),
                percent: percent(b.percentage),
            }),
            slow_close: self.slow_close.as_ref().map(|s| EffectiveSlowClose {
                delay: duration(&s.delay),
                percent: percent(s.percentage),
            }),
        }
    }
}
