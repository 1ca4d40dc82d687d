//! The live service graph (`GET /api/v1/graph`): every workload, and per edge the request
//! rate, error rate and p99 latency the proxies measured over the last seconds, whether
//! the edge runs over mutual TLS, and each version's share of a service's traffic.

use serde::{Deserialize, Serialize};

use crate::wire::Mode;

/// Error rate from which an edge is [`Health::Degraded`] (1 %).
pub const DEGRADED_ERROR_RATE: f64 = 0.01;
/// Error rate from which an edge is [`Health::Failing`] (20 %, Kiali's default).
pub const FAILING_ERROR_RATE: f64 = 0.2;

/// The graph at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Graph {
    /// When it was computed, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// How many milliseconds of samples the rates cover (0 before the second scrape).
    pub window_ms: u64,
    /// Every registered workload, plus any destination the proxies reported.
    pub nodes: Vec<GraphNode>,
    /// Source workload to destination workload, as the caller's proxy reported it.
    pub edges: Vec<GraphEdge>,
    /// Proxies whose metrics could not be read at the last scrape, and why.
    pub unreachable: Vec<ScrapeProblem>,
}

/// One workload of the [`Graph`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphNode {
    /// Workload name (`reviews-v2`, `istio-ingressgateway`).
    pub workload: String,
    /// Its `app` label (or service, or workload name).
    pub app: String,
    /// Its `version` label, if any.
    pub version: Option<String>,
    /// Sidecar or gateway.
    pub mode: Mode,
    /// Requests per second arriving from the mesh (for a gateway: leaving it).
    pub rps: f64,
    /// Whether the workload is registered with the control plane now.
    pub registered: bool,
}

/// How an edge is doing, by its error rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// No request in the window.
    Idle,
    /// Error rate below [`DEGRADED_ERROR_RATE`].
    Healthy,
    /// Error rate from [`DEGRADED_ERROR_RATE`] to [`FAILING_ERROR_RATE`].
    Degraded,
    /// Error rate from [`FAILING_ERROR_RATE`] up.
    Failing,
}

impl Health {
    /// The health of an edge with `rps` requests per second, `error_rate` of them failed.
    pub fn of(rps: f64, error_rate: f64) -> Self {
        if rps <= 0.0 {
            Self::Idle
        } else if error_rate >= FAILING_ERROR_RATE {
            Self::Failing
        } else if error_rate >= DEGRADED_ERROR_RATE {
            Self::Degraded
        } else {
            Self::Healthy
        }
    }
}

/// Calls from one workload to one workload of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Calling workload.
    pub source: String,
    /// Service called (short name, `reviews`).
    pub service: String,
    /// Workload that answered (`reviews-v3`; `unknown` when no endpoint was reached).
    pub destination: String,
    /// Its version (`v3`, or `unknown`).
    pub version: String,
    /// Requests per second.
    pub rps: f64,
    /// Share of the requests that failed (5xx, or no response), 0 to 1.
    pub error_rate: f64,
    /// 99th percentile of the duration in milliseconds (none without requests).
    pub p99_ms: Option<f64>,
    /// This destination's share of the source's requests to the service, 0 to 1.
    pub share: f64,
    /// Whether the destination's proxy saw this caller over mutual TLS in the window
    /// (none when it reported no request from it).
    pub mtls: Option<bool>,
    /// By the error rate.
    pub health: Health,
}

/// A proxy whose metrics could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrapeProblem {
    /// Workload name.
    pub workload: String,
    /// What went wrong.
    pub error: String,
}
