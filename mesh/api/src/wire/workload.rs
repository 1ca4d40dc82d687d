//! Workloads: how a proxy registers, how the registry lists it, and whether it holds the
//! configuration in force.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::ProxyScope;

/// What a proxy runs as.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Next to an application.
    #[default]
    Sidecar,
    /// An ingress gateway.
    Gateway,
}

impl Mode {
    /// `sidecar` or `gateway`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sidecar => "sidecar",
            Self::Gateway => "gateway",
        }
    }
}

/// The registration body of `POST /api/v1/workloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSpec {
    /// Unique name, e.g. `reviews-v2`.
    pub name: String,
    /// Namespace (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Service the workload serves (`reviews`); none for gateways.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Service account, the identity in its certificate (default `default`).
    #[serde(default = "default_service_account", alias = "service_account")]
    pub service_account: String,
    /// Labels (`app`, `version`, `istio`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Where the service's traffic for this workload goes (its sidecar's inbound listener).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    /// Whether a sidecar of ours fronts the address (auto mTLS).
    #[serde(default = "yes")]
    pub sidecar: bool,
    /// Sidecar or gateway.
    #[serde(default)]
    pub mode: Mode,
    /// Service ports (default 9080).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<u16>,
    /// The proxy's admin listener, where Prometheus scrapes `/stats/prometheus` and the
    /// control plane reads the metrics of the dashboard's graph; listed
    /// by `GET /api/v1/prometheus/targets`. Proxies that do not say are not listed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<SocketAddr>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

fn default_service_account() -> String {
    "default".to_owned()
}

fn yes() -> bool {
    true
}

/// A registration field that is not acceptable; Display names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InvalidWorkload {
    /// The JSON field, e.g. `serviceAccount`.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

/// Kubernetes-style names: lowercase letters, digits, `-` and `.`, 1 to 253 characters.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && !name.starts_with(['-', '.'])
}

impl WorkloadSpec {
    /// Checks the fields; the error names the field.
    pub fn validate(&self) -> Result<(), InvalidWorkload> {
        let invalid = |field, problem: String| Err(InvalidWorkload { field, problem });
        if !valid_name(&self.name) {
            return invalid(
                "name",
                format!(
                    "{:?} is not a valid workload name (lowercase letters, digits, '-' and '.')",
                    self.name
                ),
            );
        }
        if !valid_name(&self.namespace) {
            return invalid(
                "namespace",
                format!("{:?} is not a valid namespace", self.namespace),
            );
        }
        if let Some(service) = &self.service
            && !valid_name(service)
        {
            return invalid(
                "service",
                format!("{service:?} is not a valid service name"),
            );
        }
        if !valid_name(&self.service_account) {
            return invalid(
                "serviceAccount",
                format!(
                    "{:?} is not a valid service account name",
                    self.service_account
                ),
            );
        }
        if self.ports.contains(&0) {
            return invalid("ports", "0 is not a port".to_owned());
        }
        Ok(())
    }

    /// The scope the workload's routing table is compiled for.
    pub fn scope(&self) -> ProxyScope {
        ProxyScope {
            namespace: self.namespace.clone(),
            labels: self.labels.clone(),
            gateway: self.mode == Mode::Gateway,
        }
    }
}

/// A workload as `GET /api/v1/workloads` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkloadView {
    /// The registration.
    #[serde(flatten)]
    pub spec: WorkloadSpec,
    /// Last registration, poll or heartbeat, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
    /// Milliseconds since then.
    pub age_ms: u64,
    /// Registration time, in milliseconds since the Unix epoch.
    pub registered_at_ms: u64,
}

/// Whether a proxy holds the configuration in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SyncStatus {
    /// It holds the latest version.
    Synced,
    /// It holds an older one (or none yet).
    Stale,
}

impl SyncStatus {
    /// `SYNCED` or `STALE`, as `meshctl proxy-status` prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Synced => "SYNCED",
            Self::Stale => "STALE",
        }
    }
}

/// One line of `GET /api/v1/proxy-status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyStatus {
    /// Workload name.
    pub workload: String,
    /// Sidecar or gateway.
    pub mode: Mode,
    /// Version the proxy holds (empty before its first poll).
    pub version: String,
    /// Version in force.
    pub latest: String,
    /// Whether `version` is `latest`.
    pub status: SyncStatus,
    /// Last contact, in milliseconds since the Unix epoch.
    pub last_seen_ms: u64,
}

/// One target group of `GET /api/v1/prometheus/targets`, in Prometheus's HTTP service
/// discovery format (`http_sd_configs`): the scrape addresses and the labels Prometheus
/// attaches to every series scraped from them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetGroup {
    /// `host:port` addresses.
    pub targets: Vec<String>,
    /// Target labels; `__metrics_path__` sets the path scraped.
    pub labels: BTreeMap<String, String>,
}
