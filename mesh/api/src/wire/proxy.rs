//! What a proxy fetches: its configuration (the watch API) and its certificate.

use serde::{Deserialize, Serialize};

use crate::{Registry, RouteTable};

/// One answer of the watch API, `GET /api/v1/proxy-config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyConfig {
    /// Version of this configuration (a string so proxies treat it as opaque).
    pub version: String,
    /// The workload's routing table.
    pub table: RouteTable,
    /// Services and endpoints.
    pub registry: Registry,
    /// PeerAuthentications and AuthorizationPolicies that may apply to the workload
    /// (absent = none).
    #[serde(default)]
    pub security: crate::security::WorkloadSecurity,
}

/// Body of `POST /api/v1/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    /// The registered workload asking; its registration decides the identity.
    pub workload: String,
    /// PEM certificate signing request made with the proxy's own key.
    pub csr: String,
    /// Requested lifetime (default: the control plane's `--cert-ttl`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u64>,
}

/// Answer of `POST /api/v1/certificates`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    /// Leaf then root, PEM.
    pub chain: Vec<String>,
    /// The identity in the leaf.
    pub spiffe_id: String,
    /// End of validity, ms since the Unix epoch.
    pub expires_at_ms: u64,
}
