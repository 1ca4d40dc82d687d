//! The configuration a proxy runs with, swapped atomically.
//!
//! A [`Snapshot`] is immutable routing (the compiled table) plus the registry; clusters
//! are built from it lazily, the first time a request needs them. A new configuration is
//! a new snapshot: requests in flight keep the `Arc` of the one they started with, new
//! requests see the new one, and nothing is dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use mesh_api::networking::service_entry::Resolution;
use mesh_api::security::WorkloadSecurity;
use mesh_api::{CompiledRoute, EffectivePolicy, RouteTable};
use mesh_api::{EndpointRecord, ServiceRecord};
use serde::Serialize;

use crate::FastMap;
use crate::inbound::authz::Authorizer;
use crate::mtls::Mtls;
use crate::registry::Registry;
use crate::upstream::cluster::{Cluster, ClusterKey};

/// Why no cluster could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    /// The host is not in the registry.
    #[error("no service {0} in the registry")]
    UnknownService(String),
    /// The route names a subset that no DestinationRule defines.
    #[error("subset {subset:?} of {host} is not defined by any DestinationRule")]
    UnknownSubset {
        /// Qualified host.
        host: String,
        /// Subset name.
        subset: String,
    },
}

/// The spellings of `hosts` (qualified) that qualify to them from `namespace`.
fn spellings<'a>(
    hosts: impl Iterator<Item = &'a String>,
    namespace: &str,
) -> FastMap<String, String> {
    let mut names = FastMap::default();
    for host in hosts {
        let mut candidates = vec![host.as_str()];
        if let Some(base) = host.strip_suffix(".cluster.local") {
            candidates.push(base);
            if let Some(base) = base.strip_suffix(".svc") {
                candidates.push(base);
                candidates.extend(base.split('.').next());
            }
        }
        for spelling in candidates {
            // Only what qualifies back to the host itself: `name.ns` with `ns` a public
            // suffix (`example.com`) is an external name, not this service.
            if mesh_api::host::qualify(spelling, namespace) == *host {
                names.insert(spelling.to_owned(), host.clone());
            }
        }
    }
    names
}

/// One version of the proxy's configuration.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    /// Version label (from the control plane, or a counter of file reloads).
    pub version: String,
    /// Compiled routing.
    pub table: RouteTable,
    /// Services and endpoints.
    pub registry: Registry,
    /// PeerAuthentications and AuthorizationPolicies that may apply to this workload.
    pub security: WorkloadSecurity,
    #[serde(skip)]
    clusters: Mutex<FastMap<ClusterKey, Arc<Cluster>>>,
    /// The default route of every registry service that no VirtualService routes,
    /// built once instead of per request.
    #[serde(skip)]
    default_routes: FastMap<String, Vec<CompiledRoute>>,
    /// Every spelling of a routed host that an app in this namespace may put in an
    /// authority (`reviews`, `reviews.default`, `reviews.default.svc`, the FQDN), with
    /// the qualified host it names: a request then finds its routes without qualifying
    /// (and allocating) its host name.
    #[serde(skip)]
    spellings: FastMap<String, String>,
    #[serde(skip)]
    authorizer: OnceLock<Authorizer>,
}

impl Snapshot {
    /// A snapshot of `table` and `registry`.
    pub fn new(version: impl Into<String>, table: RouteTable, registry: Registry) -> Self {
        let default_routes = registry
            .services
            .iter()
            .map(|s| s.host())
            .filter(|host| table.lookup(host).is_none())
            .map(|host| {
                let route = CompiledRoute::default_to(&host);
                (host, vec![route])
            })
            .collect::<FastMap<_, _>>();
        let routed = table
            .services
            .keys()
            .chain(default_routes.keys())
            .filter(|host| !host.starts_with('*'));
        let spellings = spellings(routed, &table.namespace);
        Self {
            version: version.into(),
            table,
            registry,
            security: WorkloadSecurity::default(),
            clusters: Mutex::new(FastMap::default()),
            default_routes,
            spellings,
            authorizer: OnceLock::new(),
        }
    }

    /// The routes for a request's authority (`reviews:9080`, `reviews.default`, an FQDN,
    /// ...): those of the VirtualService host it names (exact host first, then the most
    /// specific wildcard), else the default route of a registry service. `None`: a host
    /// the mesh does not know.
    pub fn routes(&self, authority: &str) -> Option<&[CompiledRoute]> {
        let (host, _) = mesh_api::host::split_authority(authority);
        if let Some(qualified) = self.spellings.get(host) {
            if let Some(service) = self.table.destination(qualified) {
                return Some(&service.routes);
            }
            if let Some(routes) = self.default_routes.get(qualified) {
                return Some(routes);
            }
        }
        // Spellings not listed: other letter case, a trailing dot, wildcard hosts.
        if let Some(service) = self.table.lookup(authority) {
            return Some(&service.routes);
        }
        let qualified = mesh_api::host::authority_to_host(authority, &self.table.namespace);
        self.default_routes.get(&qualified).map(Vec::as_slice)
    }

    /// The same snapshot with `security`.
    pub fn with_security(mut self, security: WorkloadSecurity) -> Self {
        self.security = security;
        self
    }

    /// Where a host known only from a ServiceEntry is: its static endpoints, or a name to
    /// resolve. `None` for hosts that are not ServiceEntries.
    pub fn external_target(&self, key: &ClusterKey) -> Option<ExternalTarget> {
        let external = self.table.destination(&key.host)?.external.as_ref()?;
        let port = key
            .port
            .or_else(|| {
                external
                    .ports
                    .first()
                    .and_then(|p| u16::try_from(p.number).ok())
            })
            .unwrap_or(80);
        let port_name = external
            .ports
            .iter()
            .find(|p| u32::from(port) == p.number)
            .map(|p| p.name.as_str());
        let statics: Vec<SocketAddr> = external
            .endpoints
            .iter()
            .filter_map(|e| {
                let ip: IpAddr = e.address.as_deref()?.parse().ok()?;
                let mapped = port_name
                    .and_then(|n| e.ports.get(n))
                    .and_then(|p| u16::try_from(*p).ok());
                Some(SocketAddr::new(ip, mapped.unwrap_or(port)))
            })
            .collect();
        if !statics.is_empty() {
            return Some(ExternalTarget::Addrs(statics));
        }
        match external.resolution {
            Resolution::Static => None,
            _ => Some(ExternalTarget::Resolve(key.host.clone(), port)),
        }
    }

    /// The cluster of a ServiceEntry host, with endpoints the caller resolved.
    pub fn external_cluster(
        &self,
        key: &ClusterKey,
        addrs: Vec<SocketAddr>,
        mesh_tls: Option<&Arc<Mtls>>,
    ) -> Arc<Cluster> {
        let policy = self
            .table
            .destination(&key.host)
            .map(|c| {
                c.policy_for(key.subset.as_deref(), key.port.map(u32::from))
                    .clone()
            })
            .unwrap_or_default();
        let service = ServiceRecord {
            name: key.host.clone(),
            namespace: "external".to_owned(),
            ports: key.port.into_iter().collect(),
            endpoints: addrs
                .into_iter()
                .map(|address| EndpointRecord {
                    address,
                    labels: BTreeMap::new(),
                    workload: None,
                    sidecar: false,
                    service_account: None,
                })
                .collect(),
        };
        let cluster = Arc::new(Cluster::build(
            key,
            &service,
            &BTreeMap::new(),
            &policy,
            mesh_tls,
        ));
        match self.clusters.lock() {
            Ok(mut clusters) => clusters.entry(key.clone()).or_insert(cluster).clone(),
            Err(_) => cluster,
        }
    }

    /// The AuthorizationPolicies of this snapshot, ready to evaluate.
    pub fn authorizer(&self) -> &Authorizer {
        self.authorizer
            .get_or_init(|| Authorizer::new(&self.security.authorization_policies))
    }

    /// An empty snapshot (before the first configuration arrives).
    pub fn empty() -> Self {
        Self::new("", RouteTable::default(), Registry::default())
    }

    /// The cluster for `key`, built on first use.
    pub fn cluster(
        &self,
        key: &ClusterKey,
        mesh_tls: Option<&Arc<Mtls>>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        if let Ok(clusters) = self.clusters.lock()
            && let Some(c) = clusters.get(key)
        {
            return Ok(c.clone());
        }
        let service = self
            .registry
            .service(&key.host)
            .ok_or_else(|| ClusterError::UnknownService(key.host.clone()))?;
        let compiled = self.table.destination(&key.host);
        let (labels, policy) = match (&key.subset, compiled) {
            (None, Some(c)) => (
                BTreeMap::new(),
                c.policy_for(None, key.port.map(u32::from)).clone(),
            ),
            (None, None) => (BTreeMap::new(), EffectivePolicy::default()),
            (Some(subset), compiled) => {
                let found = compiled.and_then(|c| c.subsets.get(subset).map(|s| (c, s)));
                let Some((c, s)) = found else {
                    return Err(ClusterError::UnknownSubset {
                        host: key.host.clone(),
                        subset: subset.clone(),
                    });
                };
                (
                    s.labels.clone(),
                    c.policy_for(Some(subset), key.port.map(u32::from)).clone(),
                )
            }
        };
        let cluster = Arc::new(Cluster::build(key, service, &labels, &policy, mesh_tls));
        if let Ok(mut clusters) = self.clusters.lock() {
            return Ok(clusters.entry(key.clone()).or_insert(cluster).clone());
        }
        Ok(cluster)
    }
}

/// How to reach a ServiceEntry host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExternalTarget {
    /// Its static endpoints.
    Addrs(Vec<SocketAddr>),
    /// Resolve this name and port (DNS).
    Resolve(String, u16),
}

/// Holds the current snapshot.
#[derive(Debug)]
pub struct Store(RwLock<Arc<Snapshot>>);

impl Store {
    /// A store starting with `snapshot`.
    pub fn new(snapshot: Snapshot) -> Self {
        Self(RwLock::new(Arc::new(snapshot)))
    }

    /// The current snapshot.
    pub fn load(&self) -> Arc<Snapshot> {
        match self.0.read() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the current snapshot.
    pub fn store(&self, snapshot: Snapshot) {
        let new = Arc::new(snapshot);
        match self.0.write() {
            Ok(mut s) => *s = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use mesh_api::compile::{ProxyScope, compile};
    use mesh_api::config::MeshConfig;
    use mesh_api::registry::Registry;

    use super::*;

    const RULES: &str = "
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - name: to-v1
    route: [{destination: {host: reviews}}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: shop}
spec:
  hosts: ['*.shop.example.com']
  http:
  - name: shop
    route: [{destination: {host: www.shop.example.com}}]
";

    fn snapshot() -> Snapshot {
        let loaded = MeshConfig::load([("rules.yaml", RULES)]).unwrap();
        let table = compile(&loaded.config, &ProxyScope::sidecar("default", &[]));
        let registry: Registry = serde_norway::from_str(
            "services:
             - {name: reviews, ports: [9080]}
             - {name: ratings, ports: [9080]}
             - {name: details, namespace: other, ports: [9080]}",
        )
        .unwrap();
        Snapshot::new("1", table, registry)
    }

    /// The route names `authority` resolves to the slow way: qualify, then the table
    /// (exact host, then wildcards), then the registry's default routes.
    fn resolved_in_full(snap: &Snapshot, authority: &str) -> Option<Vec<Option<String>>> {
        let routes = match snap.table.lookup(authority) {
            Some(service) => &service.routes,
            None => {
                let host = mesh_api::host::authority_to_host(authority, &snap.table.namespace);
                snap.default_routes.get(&host)?
            }
        };
        Some(routes.iter().map(|r| r.name.clone()).collect())
    }

    #[test]
    fn every_spelling_finds_the_routes_the_full_resolution_finds() {
        let snap = snapshot();
        let authorities = [
            "reviews",
            "reviews:9080",
            "reviews.default",
            "reviews.default.svc:9080",
            "reviews.default.svc.cluster.local",
            "REVIEWS.default:9080",
            "reviews.default.svc.cluster.local.",
            "ratings:9080",
            "ratings.default.svc.cluster.local",
            "details:9080",
            "details.other:9080",
            "details.other.svc.cluster.local",
            "www.shop.example.com",
            "reviews.other",
            "nothing:80",
            "10.0.0.1:9080",
            "[::1]:9080",
        ];
        for authority in authorities {
            let fast = snap
                .routes(authority)
                .map(|routes| routes.iter().map(|r| r.name.clone()).collect());
            assert_eq!(
                fast,
                resolved_in_full(&snap, authority),
                "authority {authority}"
            );
        }
        let names = |a: &str| snap.routes(a).map(|r| r[0].name.clone());
        assert_eq!(
            names("reviews.default:9080"),
            Some(Some("to-v1".to_owned()))
        );
        assert_eq!(names("www.shop.example.com"), Some(Some("shop".to_owned())));
        assert!(snap.routes("ratings").is_some());
        assert!(
            snap.routes("details").is_none(),
            "details lives in another namespace"
        );
        assert!(snap.routes("nothing").is_none());
    }

    #[test]
    fn a_public_suffix_is_not_a_namespace() {
        let names = spellings(["svc.com.svc.cluster.local".to_owned()].iter(), "default");
        assert!(names.contains_key("svc.com.svc"));
        assert!(
            !names.contains_key("svc.com"),
            "svc.com is an external name"
        );
        assert!(!names.contains_key("svc"), "svc would qualify into default");
    }
}
