//! `ServiceEntry`: adds a service (usually outside the mesh) to the registry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::Object;

/// A `ServiceEntry` object.
pub type ServiceEntry = Object<ServiceEntrySpec>;

/// `spec` of a ServiceEntry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEntrySpec {
    /// Host names (required).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// Virtual IPs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Ports.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
    /// `MESH_EXTERNAL` (default) or `MESH_INTERNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// How endpoints are found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// Static endpoints.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<WorkloadEntry>,
    /// Workload selector for mesh-internal entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<super::destination_rule::WorkloadSelector>,
    /// Visibility.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub export_to: Vec<String>,
    /// SANs to verify.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subject_alt_names: Vec<String>,
}

/// A service port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Port number (required).
    #[serde(default)]
    pub number: u32,
    /// `HTTP`, `HTTPS`, `TCP`, `TLS`, `GRPC`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
    /// Name (required).
    #[serde(default)]
    pub name: String,
    /// Endpoint port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}

/// `location`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Location {
    /// Outside the mesh: no mTLS.
    MeshExternal,
    /// Part of the mesh.
    MeshInternal,
}

/// `resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Resolution {
    /// Forward to the original destination address.
    None,
    /// Use `endpoints` addresses.
    Static,
    /// Resolve the hosts (or endpoint addresses) by DNS.
    Dns,
    /// DNS, using only the first address.
    DnsRoundRobin,
}

/// One endpoint of a ServiceEntry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadEntry {
    /// IP or DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Port name → number overrides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ports: BTreeMap<String, u32>,
    /// Labels (for subsets).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Network.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Locality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locality: Option<String>,
    /// Weight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    /// Service account (identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}
