//! The service registry: services, their ports and their endpoints with labels. In a
//! static setup it comes from a proxy's config file; the control plane builds it from
//! registered workloads and pushes it to every proxy with the routing table.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// All services and endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    /// Services by declaration order.
    #[serde(default)]
    pub services: Vec<ServiceRecord>,
}

/// One service (a Kubernetes Service, or a workload group in the local runner).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServiceRecord {
    /// Short name, e.g. `reviews`.
    pub name: String,
    /// Namespace (default `default`).
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Service ports (9080 for Bookinfo).
    #[serde(default)]
    pub ports: Vec<u16>,
    /// Endpoints: where instances of the service accept traffic.
    #[serde(default)]
    pub endpoints: Vec<EndpointRecord>,
}

/// One instance of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointRecord {
    /// Address to connect to (the instance's sidecar inbound port when it has one).
    pub address: SocketAddr,
    /// Labels (`app`, `version`, ...), matched against DestinationRule subsets.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Workload name, e.g. `reviews-v2`, for metrics.
    #[serde(default)]
    pub workload: Option<String>,
    /// Whether a sidecar of ours fronts this endpoint (auto mTLS uses it).
    #[serde(default)]
    pub sidecar: bool,
    /// The workload's service account: its SPIFFE identity, which a client verifies
    /// when it talks mTLS to the endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

impl ServiceRecord {
    /// Fully qualified host, e.g. `reviews.default.svc.cluster.local`.
    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }
}

impl Registry {
    /// The service with qualified `host`.
    pub fn service(&self, host: &str) -> Option<&ServiceRecord> {
        self.services.iter().find(|s| s.host() == host)
    }

    /// Adds the per-version services of Istio's `bookinfo-versions.yaml`: every endpoint
    /// labelled `app=<a>,version=<v>` also serves `<a>-<v>` (`reviews-v2`), with the
    /// ports of its service, which is what the Gateway API routes name in `backendRefs`
    /// (they have no subsets). A service already registered under that name is left as
    /// it is.
    pub fn add_version_services(&mut self) {
        let mut derived: BTreeMap<(String, String), ServiceRecord> = BTreeMap::new();
        for service in &self.services {
            for endpoint in &service.endpoints {
                let (Some(app), Some(version)) =
                    (endpoint.labels.get("app"), endpoint.labels.get("version"))
                else {
                    continue;
                };
                let name = format!("{app}-{version}");
                let exists = self
                    .services
                    .iter()
                    .any(|s| s.name == name && s.namespace == service.namespace);
                if exists {
                    continue;
                }
                let record = derived
                    .entry((service.namespace.clone(), name.clone()))
                    .or_insert_with(|| ServiceRecord {
                        name,
                        namespace: service.namespace.clone(),
                        ports: Vec::new(),
                        endpoints: Vec::new(),
                    });
                for port in &service.ports {
                    if !record.ports.contains(port) {
                        record.ports.push(*port);
                    }
                }
                if !record.endpoints.contains(endpoint) {
                    record.endpoints.push(endpoint.clone());
                }
            }
        }
        self.services.extend(derived.into_values());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yaml_and_finds_by_host() {
        let r: Registry = serde_norway::from_str(
            "services:\n- name: reviews\n  ports: [9080]\n  endpoints:\n  - address: 127.0.0.1:9182\n    labels: {app: reviews, version: v2}\n    sidecar: true\n",
        )
        .unwrap();
        let s = r.service("reviews.default.svc.cluster.local").unwrap();
        assert_eq!(s.endpoints[0].labels["version"], "v2");
        assert!(r.service("reviews.other.svc.cluster.local").is_none());
        let mut r = r;
        r.add_version_services();
        let v2 = r.service("reviews-v2.default.svc.cluster.local").unwrap();
        assert_eq!(v2.ports, [9080]);
        assert_eq!(v2.endpoints[0].address.port(), 9182);
        r.add_version_services();
        assert_eq!(r.services.len(), 2, "added once, never twice");
        let bad: Result<Registry, _> =
            serde_norway::from_str("services:\n- name: x\n  endpoint: []\n");
        assert!(
            bad.unwrap_err()
                .to_string()
                .contains("unknown field `endpoint`")
        );
    }
}
