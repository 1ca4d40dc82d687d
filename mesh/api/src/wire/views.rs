//! Read-only views: one service described (`GET /api/v1/describe/{service}`), the mesh at
//! a glance for the dashboard (`GET /api/v1/overview`), and the resources in force.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::security::authorization_policy::AuthorizationPolicy;
use crate::security::peer_authentication::PeerAuthentication;
use crate::wire::LeaseView;
use crate::{CompiledRoute, CompiledSubset, EffectivePolicy, EndpointRecord, Kind};

/// Everything about one service, for `meshctl describe`: the routing a sidecar in the
/// asking namespace applies to it, its endpoints, the faults on it and the security
/// policies selecting its workloads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceDescription {
    /// The qualified host.
    pub host: String,
    /// HTTP routes in order (empty when no configuration mentions the host).
    pub routes: Vec<CompiledRoute>,
    /// Subsets by name.
    pub subsets: BTreeMap<String, CompiledSubset>,
    /// Traffic policy without a subset (`null` when no configuration mentions the host).
    pub policy: Option<EffectivePolicy>,
    /// Registered instances.
    pub endpoints: Vec<EndpointRecord>,
    /// Fault leases on the host.
    pub faults: Vec<LeaseView>,
    /// AuthorizationPolicies selecting the service's workloads.
    pub authorization: Vec<AuthorizationPolicy>,
    /// PeerAuthentications selecting them.
    pub peer_authentication: Vec<PeerAuthentication>,
    /// `namespace/name` of the VirtualServices the routes come from.
    pub virtual_services: Vec<String>,
    /// `namespace/name` of the DestinationRule applied.
    pub destination_rule: Option<String>,
    /// The configuration version described.
    pub version: String,
}

/// The mesh at a glance, as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    /// The configuration version in force.
    pub version: String,
    /// How many resources are in force.
    pub resources: usize,
    /// The routing of a sidecar in the default namespace, per service.
    pub services: Vec<ServiceOverview>,
    /// Recently rejected changes.
    pub errors: Vec<ErrorRecord>,
    /// Recent changes taken (configuration applied, deleted or reloaded, faults added or
    /// ended), oldest first.
    #[serde(default)]
    pub changes: Vec<ChangeRecord>,
}

/// A change the control plane took, remembered for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The version it produced.
    pub version: String,
    /// What changed, in words (`applied virtual-service-reviews-v3.yaml: VirtualService default/reviews`).
    pub change: String,
}

/// One service of the [`Overview`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceOverview {
    /// The qualified host.
    pub host: String,
    /// `namespace/name` of the VirtualServices the routes come from.
    pub virtual_services: Vec<String>,
    /// `namespace/name` of the DestinationRule applied.
    pub destination_rule: Option<String>,
    /// The routes, one line each.
    pub routes: Vec<RouteSummary>,
}

/// A route in words, for people: `match`, where it goes, its timeout and fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteSummary {
    /// Route name.
    pub name: Option<String>,
    /// `any`, or the matches (`uri = /x & end-user = jason | ...`).
    #[serde(rename = "match")]
    pub matches: String,
    /// Destinations with weights (`reviews v1 50%, reviews v3 50%`), or the action.
    pub to: String,
    /// Route timeout, if any.
    pub timeout: Option<String>,
    /// Injected fault, if any (`delay "7s" (100%)`).
    pub fault: Option<String>,
    /// When the route ends (fault leases), ms since the Unix epoch.
    pub expires_at_ms: Option<u64>,
}

/// A rejected change, remembered for the dashboard (`GET /api/v1/config-errors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorRecord {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// Which change (`config-dir`, `apply bookinfo.yaml`, ...).
    pub change: String,
    /// The one-line summary.
    pub error: String,
    /// Every problem.
    pub errors: Vec<String>,
}

/// One resource in force and where it came from (`GET /api/v1/resources`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceEntry {
    /// `VirtualService`, ...
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// `api` or the name of the configuration source (`config-dir`).
    pub source: String,
    /// File name as given by the source or the `file` parameter of apply.
    pub file: String,
    /// The resource as parsed, in its Istio YAML shape (any kind).
    pub resource: serde_json::Value,
}
