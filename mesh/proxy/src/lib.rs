//! The mesh's sidecar proxy and ingress gateway.
//!
//! Building blocks first: Envoy-style response flags ([`flags`]), Istio-compatible
//! telemetry ([`telemetry`], [`access_log`]), endpoint selection ([`lb`]) and passive
//! health checking ([`outlier`]). The listeners that use them sit on top.
//!
//! HTTP on the wire: the common case (keep-alive HTTP/1.1 with small sized bodies) is
//! spoken by our own code on both sides, the listeners' fast lane ([`http1`]) and the
//! pool's client connection ([`pool`]), because on a sidecar the HTTP machinery is most
//! of the user-space cost per request. hyper serves everything else: HTTP/2, chunked
//! and large uploads, `CONNECT`, malformed requests.

pub mod access_log;
pub mod admin;
pub mod authz;
pub mod body;
pub mod breaker;
pub mod cluster;
pub mod config;
pub mod connector;
pub mod control;
pub mod fault;
pub mod flags;
pub mod headers;
pub mod http1;
pub mod inbound;
pub mod lb;
pub mod mtls;
pub mod origination;
pub mod outbound;
pub mod outlier;
pub mod pool;
pub mod respond;
pub mod retry;

/// The registry types live in `mesh-api`, shared with the control plane.
pub use mesh_api::registry;
pub mod run;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod tunnel;

/// The hash map of the per-request lookups (endpoints, clusters, host spellings, metric
/// series): foldhash instead of SipHash, which showed up in the profile of every
/// request. Their keys come from configuration or are bounded, and a request only looks
/// keys up, so seeded foldhash's weaker flooding resistance costs nothing here.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
