//! The configuration a proxy runs with, swapped atomically.
//!
//! A [`Snapshot`] is immutable routing (the compiled table) plus the registry; clusters
//! are built from it lazily, the first time a request needs them. A new configuration is
//! a new snapshot: requests in flight keep the `Arc` of the one they started with, new
//! requests see the new one, and nothing is dropped.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use mesh_api::networking::service_entry::Resolution;
use mesh_api::security::WorkloadSecurity;
use mesh_api::{CompiledRoute, EffectivePolicy, RouteTable};
use mesh_api::{EndpointRecord, ServiceRecord};
use serde::Serialize;

use crate::authz::Authorizer;
use crate::cluster::{Cluster, ClusterKey};
use crate::mtls::Mtls;
use crate::registry::Registry;

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
    clusters: Mutex<HashMap<ClusterKey, Arc<Cluster>>>,
    /// The default route of every registry service that no VirtualService routes,
    /// built once instead of per request.
    #[serde(skip)]
    default_routes: HashMap<String, Vec<CompiledRoute>>,
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
            .collect();
        Self {
            version: version.into(),
            table,
            registry,
            security: WorkloadSecurity::default(),
            clusters: Mutex::new(HashMap::new()),
            default_routes,
            authorizer: OnceLock::new(),
        }
    }

    /// The routes of a registry service that no VirtualService routes (qualified host).
    pub fn default_routes(&self, host: &str) -> Option<&[CompiledRoute]> {
        self.default_routes.get(host).map(Vec::as_slice)
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
