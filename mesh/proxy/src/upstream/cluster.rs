//! A cluster: the endpoints of one destination (service, subset, port) with the
//! DestinationRule policy that applies to them, and the runtime state that policy needs
//! (balancer, circuit breaker, outlier detection, connection pool).

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use http::Version;
use hyper_util::client::legacy::connect::HttpConnector;
use mesh_api::defaults::{ConnectionPool, EffectivePolicy, LoadBalancer, UpstreamTls};
use mesh_api::networking::destination_rule::TlsMode;
use tokio::time::Instant;

use crate::mtls::{Mtls, TRUST_DOMAIN};
use crate::registry::ServiceRecord;
use crate::telemetry::flags::Flags;
use crate::telemetry::metrics::{
    Call, DEFAULT_CLUSTER, IstioMetrics, LATEST, Reporter, RequestProtocol, Security, Series,
    SeriesCache, ServiceName, Workload, canonical_names,
};
use crate::tls::SpiffeId;
use crate::upstream::breaker::{Breaker, Limits};
use crate::upstream::connector::MeshConnector;
use crate::upstream::lb::{Algorithm, Balancer, Endpoint, EndpointMeta};
use crate::upstream::origination;
use crate::upstream::outlier::{self, Outcome, OutlierPolicy};
use crate::upstream::pool::{Pool, PoolSettings, Protocol};

/// Identifies a cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClusterKey {
    /// Qualified host.
    pub host: String,
    /// Subset name.
    pub subset: Option<String>,
    /// Destination port, when the route names one.
    pub port: Option<u16>,
}

impl fmt::Display for ClusterKey {
    /// Istio's cluster name: `outbound|9080|v2|reviews.default.svc.cluster.local`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = self.port.map(|p| p.to_string()).unwrap_or_default();
        write!(
            f,
            "outbound|{port}|{}|{}",
            self.subset.as_deref().unwrap_or(""),
            self.host
        )
    }
}

/// Runtime state of one cluster.
#[derive(Debug)]
pub struct Cluster {
    /// Istio-style name for logs.
    pub name: String,
    /// Endpoints (already filtered by subset labels).
    pub endpoints: Vec<Arc<Endpoint>>,
    /// Endpoint selection.
    pub balancer: Balancer,
    /// Connection-pool limits.
    pub breaker: Breaker,
    /// Passive health checking, when configured.
    pub outlier: Option<OutlierPolicy>,
    /// HTTP/1.1 connections to the endpoints.
    pub http1: Pool,
    /// HTTP/2 connections to the endpoints, when the DestinationRule asks for them.
    pub http2: Option<Pool>,
    /// `useClientProtocol`: HTTP/2 only for requests that arrived over HTTP/2.
    pub use_client_protocol: bool,
    /// The service, as metrics name it.
    pub service: ServiceName,
    /// Why the TLS the DestinationRule asks for (`SIMPLE`, `MUTUAL`) cannot be set up:
    /// requests get `503 UF` naming it rather than going out unprotected.
    pub tls_error: Option<String>,
    /// Whether the endpoints are mesh peers, which get the peer metadata exchange's
    /// headers.
    pub mesh: bool,
    /// The SPIFFE ID the endpoints prove over mTLS (`unknown` without it).
    principal: String,
    /// Metric series of the requests sent to this cluster's endpoints.
    series: SeriesCache<(SocketAddr, u16, Flags, RequestProtocol)>,
}

impl Cluster {
    /// Builds the cluster for `key` from the registry entry and the effective policy.
    /// `subset_labels` filters endpoints (empty = all endpoints of the service).
    pub fn build(
        key: &ClusterKey,
        service: &ServiceRecord,
        subset_labels: &BTreeMap<String, String>,
        policy: &EffectivePolicy,
        mesh_tls: Option<&Arc<Mtls>>,
    ) -> Self {
        let endpoints = service
            .endpoints
            .iter()
            .filter(|e| {
                subset_labels
                    .iter()
                    .all(|(k, v)| e.labels.get(k) == Some(v))
            })
            .map(|e| {
                let label = |k: &str| e.labels.get(k).cloned().unwrap_or_default();
                let workload = e.workload.clone().unwrap_or_default();
                let (canonical_service, canonical_revision) =
                    canonical_names(|k| e.labels.get(k).map(String::as_str), &workload);
                Endpoint::with_meta(
                    e.address,
                    EndpointMeta {
                        workload,
                        app: label("app"),
                        version: label("version"),
                        canonical_service,
                        canonical_revision,
                        sidecar: e.sidecar,
                    },
                )
            })
            .collect::<Vec<_>>();
        // Auto mTLS: with no TLS setting in the DestinationRule, talk mTLS to endpoints
        // that have a sidecar; `ISTIO_MUTUAL` forces it, `DISABLE` turns it off. SIMPLE and
        // MUTUAL are TLS to servers outside the mesh, originated below.
        let wants_mtls = match &policy.tls {
            UpstreamTls::Auto => !endpoints.is_empty() && endpoints.iter().all(|e| e.meta.sidecar),
            UpstreamTls::Explicit(t) => t.mode == TlsMode::IstioMutual,
        };
        // SIMPLE and MUTUAL: originate TLS to a server outside the mesh, checked by its DNS
        // name (MUTUAL also presents a client certificate).
        // A rule that asks for TLS it cannot have fails closed: sending the request in
        // plaintext instead would put on the wire what the rule meant to protect.
        let mut server_name = None;
        let mut originate = None;
        let mut tls_error = None;
        if let UpstreamTls::Explicit(t) = &policy.tls {
            match t.mode {
                TlsMode::Simple | TlsMode::Mutual => match origination::client_config(t) {
                    Ok(config) => {
                        server_name = Some(t.sni.clone().unwrap_or_else(|| key.host.clone()));
                        originate = Some(config);
                    }
                    Err(error) => {
                        tracing::warn!(cluster = %key, %error, "Cannot originate TLS; requests to this cluster get 503 UF until the DestinationRule is fixed.");
                        tls_error = Some(error.to_string());
                    }
                },
                TlsMode::Disable | TlsMode::IstioMutual => {}
            }
        }
        // The server must prove the identity of the workloads behind this cluster, when
        // they all run as one service account (as every Bookinfo version does).
        let accounts: std::collections::BTreeSet<&str> = service
            .endpoints
            .iter()
            .filter_map(|e| e.service_account.as_deref())
            .collect();
        let expected = match (accounts.len(), accounts.first()) {
            (1, Some(sa)) => SpiffeId::new(TRUST_DOMAIN, &service.namespace, sa).ok(),
            _ => None,
        };
        let tls = if wants_mtls {
            mesh_tls.map(|m| m.client_for(expected.as_ref()))
        } else {
            originate
        };
        // The identity the server proves, for `destination_principal`.
        let principal = match (&expected, wants_mtls && mesh_tls.is_some()) {
            (Some(id), true) => id.to_string(),
            _ => "unknown".to_owned(),
        };
        // Mesh peers get our peer metadata: endpoints all fronted by a sidecar (never
        // passthrough or a ServiceEntry's hosts).
        let mesh = !endpoints.is_empty() && endpoints.iter().all(|e| e.meta.sidecar);
        let pool = &policy.connection_pool;
        let pools = Pools::new(pool, tls, server_name, wants_mtls);
        let algorithm = match policy.load_balancer {
            LoadBalancer::RoundRobin => Algorithm::RoundRobin,
            LoadBalancer::Random => Algorithm::Random,
            // Consistent hashing and passthrough fall back to Istio's default algorithm.
            _ => Algorithm::LeastRequest,
        };
        let outlier = policy.outlier_detection.as_ref().map(|o| OutlierPolicy {
            consecutive_5xx: o.consecutive_5xx_errors,
            consecutive_gateway: o.consecutive_gateway_errors,
            base_ejection: o.base_ejection_time,
            max_ejection_percent: o.max_ejection_percent,
        });
        Self {
            name: key.to_string(),
            endpoints,
            balancer: Balancer::new(algorithm),
            breaker: Breaker::new(Limits {
                max_connections: pool.max_connections,
                max_pending: pool.http1_max_pending_requests,
            }),
            outlier,
            http1: pools.http1,
            http2: pools.http2,
            use_client_protocol: pool.use_client_protocol,
            service: ServiceName::from_host(&key.host),
            tls_error,
            mesh,
            principal,
            series: SeriesCache::default(),
        }
    }

    /// The metric series of a request this proxy sent to `endpoint` and answered with
    /// `code` and `flags`.
    pub fn series(
        &self,
        metrics: &IstioMetrics,
        source: &Workload,
        endpoint: &Endpoint,
        code: u16,
        flags: &Flags,
        protocol: RequestProtocol,
    ) -> Series {
        self.series
            .get((endpoint.addr, code, flags.clone(), protocol), |_| {
                let known = |s: &str| if s.is_empty() { "unknown" } else { s }.to_owned();
                let meta = &endpoint.meta;
                let destination = Workload {
                    workload: known(&meta.workload),
                    namespace: self.service.namespace.clone(),
                    principal: self.principal.clone(),
                    app: known(&meta.app),
                    version: known(&meta.version),
                    canonical_service: known(&meta.canonical_service),
                    canonical_revision: if meta.canonical_revision.is_empty() {
                        LATEST.to_owned()
                    } else {
                        meta.canonical_revision.clone()
                    },
                    cluster: DEFAULT_CLUSTER.to_owned(),
                };
                metrics.series(&Call {
                    reporter: Reporter::Source,
                    source,
                    destination: &destination,
                    service: &self.service,
                    code,
                    protocol,
                    flags: flags.to_string(),
                    security: Security::Unknown,
                })
            })
    }

    /// The pool for a request that arrived with `version`: HTTP/2 when the
    /// DestinationRule upgrades, or uses the client's protocol and the client spoke h2.
    pub fn pool_for(&self, version: Version) -> &Pool {
        match &self.http2 {
            Some(h2) if !self.use_client_protocol || version == Version::HTTP_2 => h2,
            _ => &self.http1,
        }
    }

    /// Records how an attempt against `endpoint` ended, for outlier detection.
    pub fn report(&self, endpoint: &Endpoint, outcome: Outcome) {
        let Some(policy) = &self.outlier else { return };
        let now = Instant::now();
        let ejected = self
            .endpoints
            .iter()
            .filter(|e| e.health.is_ejected(now))
            .count();
        if outlier::report(
            policy,
            &endpoint.health,
            outcome,
            ejected,
            self.endpoints.len(),
            now,
        ) {
            tracing::warn!(cluster = %self.name, endpoint = %endpoint.addr, "Outlier detection ejected an endpoint.");
        }
    }
}

/// The connection pools of a cluster.
struct Pools {
    http1: Pool,
    http2: Option<Pool>,
}

impl Pools {
    fn new(
        pool: &ConnectionPool,
        tls: Option<Arc<rustls::ClientConfig>>,
        server_name: Option<String>,
        mesh: bool,
    ) -> Self {
        let settings = |protocol| PoolSettings {
            protocol,
            connect_timeout: pool.connect_timeout,
            idle_timeout: pool.idle_timeout,
        };
        let connector = |tls| {
            MeshConnector::new(HttpConnector::new(), tls).with_server_name(server_name.clone())
        };
        let keep_alive = pool.max_requests_per_connection != 1;
        let http1 = Pool::new(
            connector(tls.clone()),
            settings(Protocol::Http1 { keep_alive }),
        );
        // Between sidecars, h2 inside mTLS announces itself by ALPN, as Istio's does.
        let h2_tls = tls.map(|t| {
            if mesh {
                let mut c = (*t).clone();
                c.alpn_protocols = vec![crate::tls::ALPN_ISTIO_H2.to_vec()];
                Arc::new(c)
            } else {
                t
            }
        });
        let http2 = (pool.h2_upgrade || pool.use_client_protocol)
            .then(|| Pool::new(connector(h2_tls), settings(Protocol::Http2)));
        Self { http1, http2 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::EndpointRecord;

    #[test]
    fn subset_labels_filter_endpoints_and_names_follow_istio() {
        let ep = |port: u16, v: &str| EndpointRecord {
            address: ([127, 0, 0, 1], port).into(),
            labels: [
                ("app".to_owned(), "reviews".to_owned()),
                ("version".to_owned(), v.to_owned()),
            ]
            .into(),
            workload: Some(format!("reviews-{v}")),
            sidecar: true,
            service_account: Some("bookinfo-reviews".to_owned()),
        };
        let svc = ServiceRecord {
            name: "reviews".into(),
            namespace: "default".into(),
            ports: vec![9080],
            endpoints: vec![ep(1, "v1"), ep(2, "v2"), ep(3, "v2")],
        };
        let key = ClusterKey {
            host: svc.host(),
            subset: Some("v2".into()),
            port: Some(9080),
        };
        let labels = [("version".to_owned(), "v2".to_owned())].into();
        let c = Cluster::build(&key, &svc, &labels, &EffectivePolicy::default(), None);
        assert_eq!(c.endpoints.len(), 2);
        assert_eq!(c.endpoints[0].meta.workload, "reviews-v2");
        assert_eq!(c.name, "outbound|9080|v2|reviews.default.svc.cluster.local");
        assert!(c.outlier.is_none(), "off unless the rule sets it");
        let all = Cluster::build(
            &ClusterKey {
                subset: None,
                ..key
            },
            &svc,
            &BTreeMap::new(),
            &EffectivePolicy::default(),
            None,
        );
        assert_eq!(all.endpoints.len(), 3);
    }
}
