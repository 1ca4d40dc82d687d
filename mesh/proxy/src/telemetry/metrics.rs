//! Istio's standard metrics, with Istio's names, label names and Envoy's default
//! histogram buckets, so Prometheus queries, Grafana dashboards and Kiali written for
//! Istio work unchanged against our proxies.

use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Envoy's default histogram buckets (Istio sets none of its own); used for the
/// duration histogram in milliseconds and for the byte-size histograms alike.
pub const ENVOY_BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Which side of the call reports: the client's proxy (`source`) or the server's
/// (`destination`). Gateways report as `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reporter {
    /// The caller's proxy (outbound, gateway).
    Source,
    /// The callee's proxy (inbound).
    Destination,
}

impl Reporter {
    fn label(self) -> &'static str {
        match self {
            Self::Source => "source",
            Self::Destination => "destination",
        }
    }
}

/// One end of a call as metrics describe it. Missing values are the string `unknown`
/// (the canonical revision's is `latest`, as Istio's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// Workload name, e.g. `reviews-v2`.
    pub workload: String,
    /// Namespace.
    pub namespace: String,
    /// SPIFFE principal with the `spiffe://` prefix, or `unknown` without mTLS.
    pub principal: String,
    /// `app` label.
    pub app: String,
    /// `version` label.
    pub version: String,
    /// Canonical service ([`canonical_names`]), e.g. `reviews`.
    pub canonical_service: String,
    /// Canonical revision ([`canonical_names`]), e.g. `v2`.
    pub canonical_revision: String,
    /// Cluster name (`Kubernetes` unless a multi-cluster setup names it).
    pub cluster: String,
}

/// The cluster id Istio reports when none is configured.
pub const DEFAULT_CLUSTER: &str = "Kubernetes";

/// The canonical revision of a workload nobody told us about (Istio's default).
pub const LATEST: &str = "latest";

impl Workload {
    /// A peer we know nothing about.
    pub fn unknown() -> Self {
        let u = || "unknown".to_owned();
        Self {
            workload: u(),
            namespace: u(),
            principal: u(),
            app: u(),
            version: u(),
            canonical_service: u(),
            canonical_revision: LATEST.to_owned(),
            cluster: u(),
        }
    }
}

/// Istio's canonical service and revision of a workload from its labels (`label` looks
/// one up): the first of `service.istio.io/canonical-name`, `app.kubernetes.io/name`,
/// `app`, else the workload name; the first of `service.istio.io/canonical-revision`,
/// `app.kubernetes.io/version`, `version`, else `latest`. So `reviews-v2` with Bookinfo's
/// labels is `reviews` / `v2`.
pub fn canonical_names<'a>(
    label: impl Fn(&str) -> Option<&'a str>,
    workload: &str,
) -> (String, String) {
    let first = |keys: [&str; 3]| {
        keys.into_iter()
            .find_map(|k| label(k).filter(|v| !v.is_empty()))
    };
    let service = first([
        "service.istio.io/canonical-name",
        "app.kubernetes.io/name",
        "app",
    ])
    .unwrap_or(workload);
    let revision = first([
        "service.istio.io/canonical-revision",
        "app.kubernetes.io/version",
        "version",
    ])
    .unwrap_or(LATEST);
    (service.to_owned(), revision.to_owned())
}

/// What the request spoke, as `request_protocol` and `grpc_response_status` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestProtocol {
    /// Plain HTTP.
    Http,
    /// gRPC (a request whose `content-type` is `application/grpc...`), with the status
    /// its response ended with, when it named one (or the HTTP status maps to one).
    Grpc(Option<u32>),
}

impl RequestProtocol {
    /// Whether a request with these headers is gRPC.
    pub fn is_grpc(headers: &http::HeaderMap) -> bool {
        headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
    }

    /// The protocol of a request (`grpc` says whether it was gRPC) that ended with HTTP
    /// status `code` and `grpc-status` `status`: without a `grpc-status`, a non-200
    /// status maps to a gRPC one as Envoy maps it (`httpToGrpcStatus`).
    pub fn of(grpc: bool, code: u16, status: Option<u32>) -> Self {
        if !grpc {
            return Self::Http;
        }
        Self::Grpc(status.or(match code {
            0 | 200 => None,
            400 => Some(13),
            401 => Some(16),
            403 => Some(7),
            404 => Some(12),
            429 | 502 | 503 | 504 => Some(14),
            _ => Some(2),
        }))
    }

    fn label(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Grpc(_) => "grpc",
        }
    }

    fn status(self) -> String {
        match self {
            Self::Grpc(Some(s)) => s.to_string(),
            _ => String::new(),
        }
    }
}

/// The service a request was addressed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName {
    /// Fully qualified host, e.g. `reviews.default.svc.cluster.local`.
    pub host: String,
    /// Short name, e.g. `reviews`.
    pub name: String,
    /// Namespace.
    pub namespace: String,
}

impl ServiceName {
    /// `reviews.default.svc.cluster.local` → name `reviews`, namespace `default`.
    pub fn from_host(host: &str) -> Self {
        let mut parts = host.split('.');
        let name = parts.next().unwrap_or(host).to_owned();
        let namespace = parts.next().unwrap_or("unknown").to_owned();
        Self {
            host: host.to_owned(),
            name,
            namespace,
        }
    }

    /// A destination we know nothing about.
    pub fn unknown() -> Self {
        Self {
            host: "unknown".into(),
            name: "unknown".into(),
            namespace: "unknown".into(),
        }
    }
}

/// How the connection was secured, as the `connection_security_policy` label says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Mutual TLS between sidecars.
    MutualTls,
    /// Plaintext.
    None,
    /// Not known at this side (the source side reports this).
    Unknown,
}

impl Security {
    fn label(self) -> &'static str {
        match self {
            Self::MutualTls => "mutual_tls",
            Self::None => "none",
            Self::Unknown => "unknown",
        }
    }
}

/// Labels of the HTTP request metrics, in Istio's order.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    reporter: &'static str,
    source_workload: String,
    source_canonical_service: String,
    source_canonical_revision: String,
    source_workload_namespace: String,
    source_principal: String,
    source_app: String,
    source_version: String,
    source_cluster: String,
    destination_service: String,
    destination_service_namespace: String,
    destination_service_name: String,
    destination_workload: String,
    destination_canonical_service: String,
    destination_canonical_revision: String,
    destination_workload_namespace: String,
    destination_principal: String,
    destination_app: String,
    destination_version: String,
    destination_cluster: String,
    request_protocol: &'static str,
    response_code: u16,
    response_flags: String,
    grpc_response_status: String,
    connection_security_policy: &'static str,
}

/// Labels of the TCP metrics: Istio's set, the HTTP one without the response code and
/// gRPC status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TcpLabels {
    reporter: &'static str,
    source_workload: String,
    source_canonical_service: String,
    source_canonical_revision: String,
    source_workload_namespace: String,
    source_principal: String,
    source_app: String,
    source_version: String,
    source_cluster: String,
    destination_service: String,
    destination_service_namespace: String,
    destination_service_name: String,
    destination_workload: String,
    destination_canonical_service: String,
    destination_canonical_revision: String,
    destination_workload_namespace: String,
    destination_principal: String,
    destination_app: String,
    destination_version: String,
    destination_cluster: String,
    request_protocol: &'static str,
    response_flags: String,
    connection_security_policy: &'static str,
}

/// Who called whom, and how it ended: the labels of one HTTP request's metrics.
#[derive(Debug, Clone)]
pub struct Call<'a> {
    /// Who reports.
    pub reporter: Reporter,
    /// The caller.
    pub source: &'a Workload,
    /// The callee (as far as known; `unknown` fields otherwise).
    pub destination: &'a Workload,
    /// The service addressed.
    pub service: &'a ServiceName,
    /// HTTP status sent downstream.
    pub code: u16,
    /// HTTP or gRPC (with its status).
    pub protocol: RequestProtocol,
    /// Envoy response flags, printed (`-` for none).
    pub flags: String,
    /// Connection security.
    pub security: Security,
}

/// What one finished HTTP request measured.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// Time from request start to the end of the response, in milliseconds.
    pub duration_ms: f64,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Response body bytes.
    pub response_bytes: u64,
}

/// The four request metrics of one label set, looked up once and kept: recording into a
/// series touches no labels (building and hashing 24 label strings per metric is what a
/// lookup by labels costs).
#[derive(Debug, Clone)]
pub struct Series {
    requests: Counter,
    duration: Histogram,
    request_bytes: Histogram,
    response_bytes: Histogram,
}

impl Series {
    /// Records one finished request.
    pub fn observe(&self, m: Measured) {
        self.duration.observe(m.duration_ms);
        self.request_bytes.observe(m.request_bytes as f64);
        self.response_bytes.observe(m.response_bytes as f64);
        self.requests.inc();
    }
}

/// Resolved series by a key the hot path has at hand (an endpoint, a status, flags), so
/// the label set is built only the first time a combination occurs.
#[derive(Debug)]
pub struct SeriesCache<K> {
    series: Mutex<crate::FastMap<K, Series>>,
}

/// Combinations kept per cache; past this (a scan of odd status codes, say) it starts
/// over, so a cache never grows without bound.
const SERIES_CACHE_LIMIT: usize = 1024;

impl<K: Hash + Eq> Default for SeriesCache<K> {
    fn default() -> Self {
        Self {
            series: Mutex::new(crate::FastMap::default()),
        }
    }
}

impl<K: Hash + Eq> SeriesCache<K> {
    /// The series of `key`, resolved by `resolve` when the key is new.
    pub fn get(&self, key: K, resolve: impl FnOnce(&K) -> Series) -> Series {
        let mut series = self.series.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = series.get(&key) {
            return s.clone();
        }
        if series.len() >= SERIES_CACHE_LIMIT {
            series.clear();
        }
        series.entry(key).or_insert_with_key(resolve).clone()
    }
}

/// Istio's standard metric families.
#[derive(Debug, Clone)]
pub struct IstioMetrics {
    requests: Family<RequestLabels, Counter>,
    duration: Family<RequestLabels, Histogram>,
    request_bytes: Family<RequestLabels, Histogram>,
    response_bytes: Family<RequestLabels, Histogram>,
    tcp_opened: Family<TcpLabels, Counter>,
    tcp_closed: Family<TcpLabels, Counter>,
    tcp_sent: Family<TcpLabels, Counter>,
    tcp_received: Family<TcpLabels, Counter>,
}

fn envoy_histogram() -> Histogram {
    Histogram::new(ENVOY_BUCKETS)
}

impl IstioMetrics {
    /// Registers the families in `registry` under their Istio names.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(envoy_histogram),
            request_bytes: Family::new_with_constructor(envoy_histogram),
            response_bytes: Family::new_with_constructor(envoy_histogram),
            tcp_opened: Family::default(),
            tcp_closed: Family::default(),
            tcp_sent: Family::default(),
            tcp_received: Family::default(),
        };
        registry.register(
            "istio_requests",
            "Requests handled by the proxy",
            m.requests.clone(),
        );
        registry.register(
            "istio_request_duration_milliseconds",
            "Request duration",
            m.duration.clone(),
        );
        registry.register(
            "istio_request_bytes",
            "Request body sizes",
            m.request_bytes.clone(),
        );
        registry.register(
            "istio_response_bytes",
            "Response body sizes",
            m.response_bytes.clone(),
        );
        registry.register(
            "istio_tcp_connections_opened",
            "TCP connections opened",
            m.tcp_opened.clone(),
        );
        registry.register(
            "istio_tcp_connections_closed",
            "TCP connections closed",
            m.tcp_closed.clone(),
        );
        registry.register(
            "istio_tcp_sent_bytes",
            "Bytes sent to the downstream on TCP connections",
            m.tcp_sent.clone(),
        );
        registry.register(
            "istio_tcp_received_bytes",
            "Bytes received from the downstream on TCP connections",
            m.tcp_received.clone(),
        );
        m
    }

    /// The series of one label set.
    pub fn series(&self, c: &Call<'_>) -> Series {
        let (s, d) = (c.source, c.destination);
        let labels = RequestLabels {
            reporter: c.reporter.label(),
            source_workload: s.workload.clone(),
            source_canonical_service: s.canonical_service.clone(),
            source_canonical_revision: s.canonical_revision.clone(),
            source_workload_namespace: s.namespace.clone(),
            source_principal: s.principal.clone(),
            source_app: s.app.clone(),
            source_version: s.version.clone(),
            source_cluster: s.cluster.clone(),
            destination_service: c.service.host.clone(),
            destination_service_namespace: c.service.namespace.clone(),
            destination_service_name: c.service.name.clone(),
            destination_workload: d.workload.clone(),
            destination_canonical_service: d.canonical_service.clone(),
            destination_canonical_revision: d.canonical_revision.clone(),
            destination_workload_namespace: d.namespace.clone(),
            destination_principal: d.principal.clone(),
            destination_app: d.app.clone(),
            destination_version: d.version.clone(),
            destination_cluster: d.cluster.clone(),
            request_protocol: c.protocol.label(),
            response_code: c.code,
            response_flags: c.flags.clone(),
            grpc_response_status: c.protocol.status(),
            connection_security_policy: c.security.label(),
        };
        Series {
            requests: self.requests.get_or_create(&labels).clone(),
            duration: self.duration.get_or_create(&labels).clone(),
            request_bytes: self.request_bytes.get_or_create(&labels).clone(),
            response_bytes: self.response_bytes.get_or_create(&labels).clone(),
        }
    }

    /// Records one finished HTTP request (looking its series up by labels).
    pub fn record_request(&self, c: &Call<'_>, m: Measured) {
        self.series(c).observe(m);
    }

    /// Labels for a TCP connection's counters.
    pub fn tcp_labels(
        reporter: Reporter,
        source: &Workload,
        destination: &Workload,
        service: &ServiceName,
        security: Security,
    ) -> TcpLabels {
        let (s, d) = (source, destination);
        TcpLabels {
            reporter: reporter.label(),
            source_workload: s.workload.clone(),
            source_canonical_service: s.canonical_service.clone(),
            source_canonical_revision: s.canonical_revision.clone(),
            source_workload_namespace: s.namespace.clone(),
            source_principal: s.principal.clone(),
            source_app: s.app.clone(),
            source_version: s.version.clone(),
            source_cluster: s.cluster.clone(),
            destination_service: service.host.clone(),
            destination_service_namespace: service.namespace.clone(),
            destination_service_name: service.name.clone(),
            destination_workload: d.workload.clone(),
            destination_canonical_service: d.canonical_service.clone(),
            destination_canonical_revision: d.canonical_revision.clone(),
            destination_workload_namespace: d.namespace.clone(),
            destination_principal: d.principal.clone(),
            destination_app: d.app.clone(),
            destination_version: d.version.clone(),
            destination_cluster: d.cluster.clone(),
            request_protocol: "tcp",
            response_flags: "-".to_owned(),
            connection_security_policy: security.label(),
        }
    }

    /// Counts an opened TCP connection.
    pub fn tcp_opened(&self, labels: &TcpLabels) {
        self.tcp_opened.get_or_create(labels).inc();
    }

    /// Counts a closed TCP connection and the bytes it carried each way.
    pub fn tcp_closed(&self, labels: &TcpLabels, sent: u64, received: u64) {
        self.tcp_closed.get_or_create(labels).inc();
        self.tcp_sent.get_or_create(labels).inc_by(sent);
        self.tcp_received.get_or_create(labels).inc_by(received);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode;

    #[test]
    fn canonical_names_follow_istios_order() {
        let labels: std::collections::BTreeMap<&str, &str> = [
            ("app", "reviews"),
            ("version", "v2"),
            ("app.kubernetes.io/name", "reviews-app"),
        ]
        .into();
        let got = canonical_names(|k| labels.get(k).copied(), "reviews-v2");
        assert_eq!(got, ("reviews-app".to_owned(), "v2".to_owned()));
        assert_eq!(
            canonical_names(|_| None, "mysqldb"),
            ("mysqldb".to_owned(), "latest".to_owned())
        );
    }

    #[test]
    fn grpc_requests_carry_their_status() {
        assert_eq!(
            RequestProtocol::of(false, 503, Some(14)),
            RequestProtocol::Http
        );
        assert_eq!(
            RequestProtocol::of(true, 200, Some(5)),
            RequestProtocol::Grpc(Some(5))
        );
        assert_eq!(
            RequestProtocol::of(true, 200, None),
            RequestProtocol::Grpc(None)
        );
        assert_eq!(
            RequestProtocol::of(true, 503, None),
            RequestProtocol::Grpc(Some(14))
        );
        assert_eq!(RequestProtocol::Grpc(Some(5)).status(), "5");
        assert_eq!(RequestProtocol::Grpc(None).status(), "");
        let mut h = http::HeaderMap::new();
        assert!(!RequestProtocol::is_grpc(&h));
        h.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(RequestProtocol::is_grpc(&h));
    }

    #[test]
    fn exposes_istio_names_labels_and_buckets() {
        let mut registry = Registry::default();
        let m = IstioMetrics::register(&mut registry);
        let src = Workload {
            workload: "productpage-v1".into(),
            namespace: "default".into(),
            principal: "spiffe://cluster.local/ns/default/sa/bookinfo-productpage".into(),
            app: "productpage".into(),
            version: "v1".into(),
            canonical_service: "productpage".into(),
            canonical_revision: "v1".into(),
            cluster: "Kubernetes".into(),
        };
        let dst = Workload {
            workload: "reviews-v3".into(),
            app: "reviews".into(),
            version: "v3".into(),
            ..Workload::unknown()
        };
        let svc = ServiceName {
            host: "reviews.default.svc.cluster.local".into(),
            name: "reviews".into(),
            namespace: "default".into(),
        };
        for _ in 0..3 {
            m.record_request(
                &Call {
                    reporter: Reporter::Source,
                    source: &src,
                    destination: &dst,
                    service: &svc,
                    code: 200,
                    protocol: RequestProtocol::Http,
                    flags: "-".into(),
                    security: Security::Unknown,
                },
                Measured {
                    duration_ms: 3.0,
                    request_bytes: 0,
                    response_bytes: 420,
                },
            );
        }
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("istio_requests_total{"))
            .unwrap();
        assert!(line.contains(r#"reporter="source""#), "{line}");
        assert!(
            line.contains(r#"destination_service="reviews.default.svc.cluster.local""#),
            "{line}"
        );
        assert!(line.contains(r#"destination_version="v3""#), "{line}");
        assert!(line.contains(r#"response_code="200""#), "{line}");
        assert!(line.contains(r#"response_flags="-""#), "{line}");
        assert!(line.ends_with(" 3"), "{line}");
        assert!(line.contains(r#"grpc_response_status="""#), "{line}");
        assert!(line.contains(r#"request_protocol="http""#), "{line}");
        assert!(
            line.contains(r#"source_canonical_service="productpage""#)
                && line.contains(r#"destination_canonical_revision="latest""#),
            "{line}"
        );
        assert!(text.contains(r#"istio_request_duration_milliseconds_bucket{"#));
        assert!(
            text.contains(r#"le="3600000.0""#),
            "Envoy's largest default bucket"
        );
    }
}
