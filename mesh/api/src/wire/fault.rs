//! Faults as leases: what a caller asks for (`POST /api/v1/faults`) and what it gets back.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
