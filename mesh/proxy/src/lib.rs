//! The mesh's sidecar proxy and ingress gateway (one binary, two modes).
//!
//! Module map, bottom up; a module uses only what is listed before it (the one known
//! exception is noted at the end):
//!
//! - [`tls`]: workload identities, the mesh CA, rustls configurations, the inbound
//!   accept step (uses nothing of ours).
//! - [`telemetry`]: response flags, Istio's metrics, the access log, and the one
//!   recorder of a finished request.
//! - [`http`]: the accept loop, our HTTP/1.1 fast lane, body types, headers, and the
//!   replies the proxy makes itself.
//! - [`upstream`]: clusters and what they are made of: load balancing, circuit breaker,
//!   outlier detection, the connection pool and connector, TLS origination, and the
//!   general-purpose client.
//! - [`inbound`]: the sidecar's inbound listener: peer authentication and authorization
//!   ([`inbound::authz`], which uses only `tls`), then forwarding to the app.
//! - [`outbound`]: the outbound listener (and the gateway's): Envoy's client-side
//!   phases, one file each, and `CONNECT` tunnels.
//! - At the root, the pieces that tie the folders together:
//!   - [`config`]: environment variables and the YAML file;
//!   - [`snapshot`]: one configuration as the listeners read it (routes, clusters,
//!     policies; uses `upstream` and `inbound::authz`);
//!   - [`state`]: what every listener shares (the current snapshot, identity, metrics);
//!   - [`mtls`] and [`control`]: this proxy's mesh identity, and the control-plane client
//!     that issues it and streams configurations;
//!   - [`admin`]: the admin listener;
//!   - [`run`]: startup, at the top.
//!
//! The exception: `mtls` and `control` use each other, and `upstream::cluster` asks
//! `mtls` for the mesh client configuration, so through `control` (which reads `state`
//! and `snapshot`) the bottom layers reach back up. Both files are being redone; the
//! folders themselves only ever use the folders before them.
//!
//! HTTP on the wire: the common case (keep-alive HTTP/1.1 with small sized bodies) is
//! spoken by our own code on both sides, the listeners' fast lane ([`http::http1`]) and
//! the pool's client connection ([`upstream::pool`]), because on a sidecar the HTTP
//! machinery is most of the user-space cost per request. hyper serves everything else:
//! HTTP/2, chunked and large uploads, `CONNECT`, malformed requests.

pub mod tls;

pub mod http;
pub mod telemetry;
pub mod upstream;

pub mod inbound;
pub mod outbound;

pub mod admin;
pub mod config;
pub mod control;
pub mod mtls;
pub mod run;
pub mod snapshot;
pub mod state;

/// The registry types live in `mesh-api`, shared with the control plane.
pub use mesh_api::registry;

/// The hash map of the per-request lookups (endpoints, clusters, host spellings, metric
/// series): foldhash instead of SipHash, which showed up in the profile of every
/// request. Their keys come from configuration or are bounded, and a request only looks
/// keys up, so seeded foldhash's weaker flooding resistance costs nothing here.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
