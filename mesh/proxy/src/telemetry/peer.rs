//! Istio's peer metadata exchange over HTTP headers: how the server's sidecar learns
//! which workload called, so that `reporter="destination"` metrics (the ones Kiali
//! draws its graph from) name the caller.
//!
//! - The client's sidecar (and the gateway) adds two headers to every request it sends
//!   to a mesh peer (an endpoint with a sidecar; never to passthrough or ServiceEntry
//!   hosts): `x-envoy-peer-metadata-id`, its node id
//!   (`sidecar~<ip>~<workload>.<namespace>~<namespace>.svc.cluster.local`, `router~...`
//!   for a gateway), and `x-envoy-peer-metadata`, Istio's encoding: base64 of a
//!   `google.protobuf.Struct` ([`wire`]) with `NAME`, `NAMESPACE`, `CLUSTER_ID`,
//!   `WORKLOAD_NAME`, `OWNER`, `SERVICE_ACCOUNT` and `LABELS` (`app`, `version` and the
//!   canonical service and revision). Both are made once, at startup ([`Exchange`]).
//! - The server's sidecar always removes both before the app sees the request, and
//!   believes them only over mTLS, when the claimed `NAMESPACE` (and `SERVICE_ACCOUNT`,
//!   when present) is the one of the peer certificate's SPIFFE ID
//!   ([`Peer::vouched_for_by`]). Otherwise the caller is what the certificate says, or
//!   `unknown` in plaintext, as with Istio.
//! - Parsed peers are kept by id ([`PeerCache`]), so a request from a known caller costs
//!   a lookup and a comparison of the header's bytes, not a parse.
//! - The headers are large (the metadata is about 500 bytes), so the inbound listener's
//!   HTTP/1.1 fast lane sets them aside while it parses the head ([`Received`]): they never
//!   enter the request's header map, which the app's request is made from. A request
//!   hyper reads still has them in its map, and the inbound handler takes them out there.
//!   The client's side writes its pair from bytes encoded once ([`Exchange::wire`]).
//!
//! The server does not answer with its own metadata: the client already knows the
//! destination workload from the registry's endpoints.

pub mod wire;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::telemetry::metrics::{self, DEFAULT_CLUSTER, LATEST, Workload};
use wire::{Fields, Value};

/// `x-envoy-peer-metadata-id`: the caller's node id.
pub static X_ENVOY_PEER_METADATA_ID: HeaderName =
    HeaderName::from_static("x-envoy-peer-metadata-id");
/// `x-envoy-peer-metadata`: the caller's node metadata.
pub static X_ENVOY_PEER_METADATA: HeaderName = HeaderName::from_static("x-envoy-peer-metadata");

/// The labels a node sends in `LABELS` (Istio's default set).
const CANONICAL_NAME: &str = "service.istio.io/canonical-name";
const CANONICAL_REVISION: &str = "service.istio.io/canonical-revision";

/// The longest metadata header we read: a node is a few hundred bytes.
const MAX_METADATA: usize = 4096;

/// What a workload says about itself in the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeMetadata {
    /// `NAME`: the pod name (ours: the workload name).
    pub name: String,
    /// `NAMESPACE`.
    pub namespace: String,
    /// `CLUSTER_ID`.
    pub cluster_id: String,
    /// `WORKLOAD_NAME`, e.g. `reviews-v2`.
    pub workload_name: String,
    /// `OWNER`, e.g. `kubernetes://apis/apps/v1/namespaces/default/deployments/reviews-v2`.
    pub owner: String,
    /// `SERVICE_ACCOUNT`, when the node names it.
    pub service_account: Option<String>,
    /// `LABELS`.
    pub labels: BTreeMap<String, String>,
}

/// Why a peer's metadata was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The header is longer than any node's.
    #[error("the metadata header is longer than {MAX_METADATA} bytes")]
    TooLong,
    /// The header is not a base64 protobuf Struct.
    #[error("{0}")]
    Wire(#[from] wire::WireError),
    /// A value that becomes a metric label has characters a Kubernetes name cannot.
    #[error("metadata field {0} is not a Kubernetes name")]
    BadName(&'static str),
}

impl NodeMetadata {
    /// The node of a workload: its name, namespace and service account, and `labels`
    /// with the canonical service and revision added (Istio's [`metrics::canonical_names`]).
    pub fn of_workload(
        workload: &str,
        namespace: &str,
        service_account: &str,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        let label = |k: &str| labels.get(k).map(String::as_str);
        let (service, revision) = metrics::canonical_names(label, workload);
        let mut sent = BTreeMap::new();
        for key in ["app", "version"] {
            if let Some(v) = labels.get(key) {
                sent.insert(key.to_owned(), v.clone());
            }
        }
        sent.insert(CANONICAL_NAME.to_owned(), service);
        sent.insert(CANONICAL_REVISION.to_owned(), revision);
        Self {
            name: workload.to_owned(),
            namespace: namespace.to_owned(),
            cluster_id: DEFAULT_CLUSTER.to_owned(),
            workload_name: workload.to_owned(),
            owner: format!(
                "kubernetes://apis/apps/v1/namespaces/{namespace}/deployments/{workload}"
            ),
            service_account: Some(service_account.to_owned()),
            labels: sent,
        }
    }

    /// The `x-envoy-peer-metadata` text.
    pub fn encode(&self) -> String {
        let s = |v: &str| Value::Str(v.to_owned());
        let mut fields: Fields = [
            ("NAME".to_owned(), s(&self.name)),
            ("NAMESPACE".to_owned(), s(&self.namespace)),
            ("CLUSTER_ID".to_owned(), s(&self.cluster_id)),
            ("WORKLOAD_NAME".to_owned(), s(&self.workload_name)),
            ("OWNER".to_owned(), s(&self.owner)),
        ]
        .into();
        if let Some(sa) = &self.service_account {
            fields.insert("SERVICE_ACCOUNT".to_owned(), s(sa));
        }
        let labels = self.labels.iter().map(|(k, v)| (k.clone(), s(v))).collect();
        fields.insert("LABELS".to_owned(), Value::Struct(labels));
        wire::encode(&fields)
    }

    /// Reads an `x-envoy-peer-metadata` value. Missing keys are empty; the values that
    /// become metric labels must be Kubernetes names (a peer cannot put quotes or
    /// newlines into our metrics).
    pub fn decode(text: &[u8]) -> Result<Self, PeerError> {
        if text.len() > MAX_METADATA {
            return Err(PeerError::TooLong);
        }
        let fields = wire::decode(text)?;
        let get = |k: &str| match fields.get(k) {
            Some(Value::Str(s)) => s.clone(),
            _ => String::new(),
        };
        let labels: BTreeMap<String, String> = match fields.get("LABELS") {
            Some(Value::Struct(l)) => l
                .iter()
                .filter_map(|(k, v)| match v {
                    Value::Str(s) => Some((k.clone(), s.clone())),
                    Value::Struct(_) => None,
                })
                .collect(),
            _ => BTreeMap::new(),
        };
        let node = Self {
            name: get("NAME"),
            namespace: get("NAMESPACE"),
            cluster_id: get("CLUSTER_ID"),
            workload_name: get("WORKLOAD_NAME"),
            owner: get("OWNER"),
            service_account: match fields.get("SERVICE_ACCOUNT") {
                Some(Value::Str(s)) => Some(s.clone()),
                _ => None,
            },
            labels,
        };
        let checked = [
            ("NAMESPACE", node.namespace.as_str()),
            ("CLUSTER_ID", &node.cluster_id),
            ("WORKLOAD_NAME", &node.workload_name),
            (
                "SERVICE_ACCOUNT",
                node.service_account.as_deref().unwrap_or(""),
            ),
            ("LABELS.app", node.label("app").unwrap_or("")),
            ("LABELS.version", node.label("version").unwrap_or("")),
            (
                "LABELS.canonical-name",
                node.label(CANONICAL_NAME).unwrap_or(""),
            ),
            (
                "LABELS.canonical-revision",
                node.label(CANONICAL_REVISION).unwrap_or(""),
            ),
        ];
        for (field, value) in checked {
            if !is_name(value) {
                return Err(PeerError::BadName(field));
            }
        }
        Ok(node)
    }

    fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }
}

/// Whether `s` is empty or could be a Kubernetes name or label value: letters, digits,
/// `-`, `_`, `.`, at most 253 of them.
fn is_name(s: &str) -> bool {
    s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// This proxy's own pair of headers, encoded once: they are the same on every request.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `x-envoy-peer-metadata-id`.
    pub id: HeaderValue,
    /// `x-envoy-peer-metadata`.
    pub metadata: HeaderValue,
    /// Both header lines as they go out in an HTTP/1.1 head (`name: value\r\n` each),
    /// copied into a request with one copy instead of one per name, separator and value.
    wire: Bytes,
}

impl Exchange {
    /// The headers of `node`, whose node id is `id`.
    pub fn new(id: &str, node: &NodeMetadata) -> Result<Self, http::header::InvalidHeaderValue> {
        let (id, metadata) = (
            HeaderValue::from_str(id)?,
            HeaderValue::from_str(&node.encode())?,
        );
        let mut wire = Vec::with_capacity(64 + id.len() + metadata.len());
        for (name, value) in [
            (&X_ENVOY_PEER_METADATA_ID, &id),
            (&X_ENVOY_PEER_METADATA, &metadata),
        ] {
            wire.extend_from_slice(name.as_str().as_bytes());
            wire.extend_from_slice(b": ");
            wire.extend_from_slice(value.as_bytes());
            wire.extend_from_slice(b"\r\n");
        }
        Ok(Self {
            id,
            metadata,
            wire: wire.into(),
        })
    }

    /// Both headers as lines of an HTTP/1.1 request head.
    pub fn wire(&self) -> &[u8] {
        &self.wire
    }

    /// Istio's node id: `sidecar~<ip>~<pod>.<namespace>~<namespace>.svc.cluster.local`
    /// (`router~...` for a gateway).
    pub fn node_id(gateway: bool, ip: std::net::IpAddr, name: &str, namespace: &str) -> String {
        let kind = if gateway { "router" } else { "sidecar" };
        format!("{kind}~{ip}~{name}.{namespace}~{namespace}.svc.cluster.local")
    }

    /// Sets both headers on `headers`, replacing any the app sent.
    pub fn insert_into(&self, headers: &mut http::HeaderMap) {
        headers.insert(X_ENVOY_PEER_METADATA_ID.clone(), self.id.clone());
        headers.insert(X_ENVOY_PEER_METADATA.clone(), self.metadata.clone());
    }

    /// Whether `name` is one of the exchange's headers.
    pub fn is_exchange_header(name: &HeaderName) -> bool {
        name == X_ENVOY_PEER_METADATA_ID || name == X_ENVOY_PEER_METADATA
    }
}

/// The exchange's headers of one request as the inbound listener's fast lane read them,
/// set aside instead of entering the request's header map (the first of each name, as
/// `HeaderMap::remove` would give; every copy is kept from the app all the same). The
/// bytes are slices of the request head: no copy, and nothing checked yet, since in
/// plaintext they are never looked at.
#[derive(Debug, Clone, Default)]
pub struct Received {
    /// `x-envoy-peer-metadata-id`, when sent.
    pub id: Option<Bytes>,
    /// `x-envoy-peer-metadata`, when sent.
    pub metadata: Option<Bytes>,
}

impl Received {
    /// Which of the two headers `name` (as read, any letter case) is: `Some(true)` for
    /// the id, `Some(false)` for the metadata, `None` for any other header.
    pub fn which(name: &[u8]) -> Option<bool> {
        // The lengths first: most names are neither, and this is checked for every header.
        let (id, md) = (
            X_ENVOY_PEER_METADATA_ID.as_str(),
            X_ENVOY_PEER_METADATA.as_str(),
        );
        if name.len() == id.len() && name.eq_ignore_ascii_case(id.as_bytes()) {
            Some(true)
        } else if name.len() == md.len() && name.eq_ignore_ascii_case(md.as_bytes()) {
            Some(false)
        } else {
            None
        }
    }
}

/// A caller as its metadata describes it (not yet believed: see
/// [`Peer::vouched_for_by`]).
#[derive(Debug)]
pub struct Peer {
    /// The header's bytes, to tell a changed node from the cached one.
    raw: Bytes,
    /// What they say.
    pub node: NodeMetadata,
}

impl Peer {
    /// Whether the peer certificate's SPIFFE ID (`spiffe://<td>/ns/<ns>/sa/<sa>`) agrees
    /// with what the metadata claims: the same namespace, and the same service account
    /// when the metadata names one. A workload can only speak for its own identity.
    pub fn vouched_for_by(&self, spiffe_id: &str) -> bool {
        let Some((ns, sa)) = spiffe_parts(spiffe_id) else {
            return false;
        };
        self.node.namespace == ns && self.node.service_account.as_deref().is_none_or(|s| s == sa)
    }
}

/// The namespace and service account of a SPIFFE ID.
fn spiffe_parts(id: &str) -> Option<(&str, &str)> {
    let path = id.strip_prefix("spiffe://")?.split_once('/')?.1;
    let rest = path.strip_prefix("ns/")?;
    let (ns, sa) = rest.split_once("/sa/")?;
    (!ns.is_empty() && !sa.is_empty() && !sa.contains('/')).then_some((ns, sa))
}

/// The caller as `reporter="destination"` metrics name it (Istio's table): `spiffe_id`
/// is the peer certificate's (none in plaintext), `peer` the metadata it vouched for.
/// The namespace comes from the certificate first; without metadata everything but the
/// principal and namespace is `unknown` (the revision `latest`).
pub fn caller(spiffe_id: Option<&str>, peer: Option<&Peer>) -> Workload {
    let known = |s: &str| if s.is_empty() { "unknown" } else { s }.to_owned();
    let mut w = Workload::unknown();
    if let Some(id) = spiffe_id {
        w.principal = id.to_owned();
        if let Some((ns, _)) = spiffe_parts(id) {
            w.namespace = ns.to_owned();
        }
    }
    if let Some(node) = peer.map(|p| &p.node) {
        let label = |k: &str| node.label(k).unwrap_or("");
        w.workload = known(&node.workload_name);
        if spiffe_id.is_none() {
            w.namespace = known(&node.namespace);
        }
        w.app = known(label("app"));
        w.version = known(label("version"));
        w.canonical_service = known(label(CANONICAL_NAME));
        w.canonical_revision = match label(CANONICAL_REVISION) {
            "" => LATEST.to_owned(),
            r => r.to_owned(),
        };
        w.cluster = known(&node.cluster_id);
    }
    w
}

/// Callers seen lately, by node id. Bounded: when full, a quarter of the entries go (as
/// Envoy's cache does), so ids made up by a client cannot grow it.
#[derive(Debug, Default)]
pub struct PeerCache {
    peers: Mutex<crate::FastMap<Bytes, Arc<Peer>>>,
}

/// Callers kept per cache: a mesh has a few dozen workloads calling any one service.
const PEER_CACHE_LIMIT: usize = 256;

impl PeerCache {
    /// The peer of a request's two headers: the cached one when the id is known and the
    /// metadata bytes are the same, else parsed now. `None` when they do not parse.
    /// The id's bytes only key the cache; the metadata's are parsed and checked
    /// ([`NodeMetadata::decode`]).
    pub fn resolve(&self, id: &[u8], metadata: &[u8]) -> Option<Arc<Peer>> {
        let mut peers = self.peers.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = peers.get(id)
            && p.raw == metadata
        {
            return Some(p.clone());
        }
        let node = match NodeMetadata::decode(metadata) {
            Ok(node) => node,
            Err(error) => {
                tracing::debug!(%error, "Ignoring a caller's peer metadata.");
                return None;
            }
        };
        if peers.len() >= PEER_CACHE_LIMIT {
            let mut n = 0;
            peers.retain(|_, _| {
                n += 1;
                n % 4 != 0
            });
        }
        let peer = Arc::new(Peer {
            raw: Bytes::copy_from_slice(metadata),
            node,
        });
        peers.insert(Bytes::copy_from_slice(id), peer.clone());
        Some(peer)
    }

    /// How many callers are cached.
    pub fn len(&self) -> usize {
        self.peers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no caller is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A peer as a hash-map key: by identity (the cache hands out one `Arc` per node), so a
/// metric-series lookup hashes a pointer, not the node.
#[derive(Debug, Clone)]
pub struct PeerKey(pub Arc<Peer>);

impl PartialEq for PeerKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PeerKey {}

impl std::hash::Hash for PeerKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        Arc::as_ptr(&self.0).hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviews_v2() -> NodeMetadata {
        let labels = [
            ("app".to_owned(), "reviews".to_owned()),
            ("version".to_owned(), "v2".to_owned()),
        ]
        .into();
        NodeMetadata::of_workload("reviews-v2", "default", "bookinfo-reviews", &labels)
    }

    fn value(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn a_node_round_trips_with_istios_canonical_names() {
        let node = reviews_v2();
        assert_eq!(node.labels[CANONICAL_NAME], "reviews");
        assert_eq!(node.labels[CANONICAL_REVISION], "v2");
        assert_eq!(
            NodeMetadata::decode(node.encode().as_bytes()).unwrap(),
            node
        );
        let bare = NodeMetadata::of_workload("db", "default", "default", &BTreeMap::new());
        assert_eq!(bare.labels[CANONICAL_NAME], "db", "the workload name");
        assert_eq!(bare.labels[CANONICAL_REVISION], "latest");
    }

    #[test]
    fn trust_needs_the_certificates_namespace_and_service_account() {
        let peer = Peer {
            raw: Bytes::new(),
            node: reviews_v2(),
        };
        assert!(peer.vouched_for_by("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"));
        assert!(!peer.vouched_for_by("spiffe://cluster.local/ns/other/sa/bookinfo-reviews"));
        assert!(!peer.vouched_for_by("spiffe://cluster.local/ns/default/sa/bookinfo-ratings"));
        assert!(!peer.vouched_for_by("spiffe://cluster.local/default"));
        let no_sa = Peer {
            raw: Bytes::new(),
            node: NodeMetadata {
                service_account: None,
                ..reviews_v2()
            },
        };
        assert!(no_sa.vouched_for_by("spiffe://cluster.local/ns/default/sa/anyone"));
    }

    #[test]
    fn the_caller_follows_istios_table() {
        let id = "spiffe://cluster.local/ns/default/sa/bookinfo-reviews";
        let peer = Peer {
            raw: Bytes::new(),
            node: reviews_v2(),
        };
        let w = caller(Some(id), Some(&peer));
        assert_eq!(
            (
                w.workload.as_str(),
                w.namespace.as_str(),
                w.principal.as_str()
            ),
            ("reviews-v2", "default", id)
        );
        assert_eq!((w.app.as_str(), w.version.as_str()), ("reviews", "v2"));
        assert_eq!(
            (w.canonical_service.as_str(), w.canonical_revision.as_str()),
            ("reviews", "v2")
        );
        assert_eq!(w.cluster, "Kubernetes");
        let cert_only = caller(Some(id), None);
        assert_eq!(cert_only.namespace, "default");
        assert_eq!(cert_only.workload, "unknown");
        assert_eq!(cert_only.canonical_revision, "latest");
        assert_eq!(caller(None, None), Workload::unknown());
    }

    #[test]
    fn the_cache_parses_once_notices_changes_and_stays_bounded() {
        let cache = PeerCache::default();
        let id = value("sidecar~127.0.0.1~reviews-v2.default~default.svc.cluster.local");
        let md = value(&reviews_v2().encode());
        let first = cache.resolve(&id, &md).unwrap();
        let again = cache.resolve(&id, &md).unwrap();
        assert!(Arc::ptr_eq(&first, &again), "parsed once");
        let changed = NodeMetadata {
            workload_name: "reviews-v3".into(),
            ..reviews_v2()
        };
        let other = cache.resolve(&id, &value(&changed.encode())).unwrap();
        assert_eq!(other.node.workload_name, "reviews-v3", "same id, new bytes");
        assert!(cache.resolve(&id, &value("garbage!")).is_none());
        for n in 0..1000 {
            cache.resolve(&value(&format!("made-up-{n}")), &md).unwrap();
        }
        assert!(cache.len() <= PEER_CACHE_LIMIT, "{}", cache.len());
    }

    #[test]
    fn the_exchange_headers_are_told_apart_in_any_case_and_written_once() {
        assert_eq!(Received::which(b"x-envoy-peer-metadata-id"), Some(true));
        assert_eq!(Received::which(b"X-Envoy-Peer-Metadata"), Some(false));
        for other in [
            "x-envoy-peer-metadata-idx",
            "x-envoy-peer-metadat",
            "host",
            "",
        ] {
            assert_eq!(Received::which(other.as_bytes()), None, "{other}");
        }
        let exchange =
            Exchange::new("sidecar~1.2.3.4~a.b~b.svc.cluster.local", &reviews_v2()).unwrap();
        let wire = format!(
            "x-envoy-peer-metadata-id: sidecar~1.2.3.4~a.b~b.svc.cluster.local\r\n\
             x-envoy-peer-metadata: {}\r\n",
            reviews_v2().encode()
        );
        assert_eq!(exchange.wire(), wire.as_bytes());
    }

    #[test]
    fn label_values_must_be_names() {
        let mut node = reviews_v2();
        node.workload_name = "evil\"} 1\nx".into();
        // Not a valid header value either; the decoder sees the bytes all the same.
        assert_eq!(
            NodeMetadata::decode(node.encode().as_bytes()),
            Err(PeerError::BadName("WORKLOAD_NAME"))
        );
        let long = "a".repeat(MAX_METADATA + 1);
        assert_eq!(
            NodeMetadata::decode(long.as_bytes()),
            Err(PeerError::TooLong)
        );
    }
}
