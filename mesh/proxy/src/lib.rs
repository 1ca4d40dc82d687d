//! The mesh's sidecar proxy and ingress gateway (one binary, two modes).
//!
//! Module map, bottom up: each module uses only those listed before it, so the
//! dependencies run one way.
//!
//! - [`tls`]: mTLS on the wire: rustls configurations, the rotating certificate store,
//!   the inbound accept step (identities themselves come from `mesh-identity`); uses
//!   nothing of ours.
//! - [`telemetry`]: response flags, Istio's metrics, the access log, and the one
//!   recorder of a finished request.
//! - [`config`]: environment variables and the YAML file (root: it feeds `run`).
//! - [`http`]: the accept loop, our HTTP/1.1 fast lane, body and error types, headers,
//!   and the replies the proxy makes itself.
//! - [`mtls`]: this proxy's mesh identity and the TLS configurations built on it (root:
//!   both listeners and the upstream clusters use it).
//! - [`upstream`]: clusters and what they are made of: load balancing, circuit breaker,
//!   outlier detection, the connection pool and connector, TLS origination, and the
//!   general-purpose client.
//! - [`inbound::authz`]: PeerAuthentication and AuthorizationPolicy, compiled and
//!   evaluated (uses only `tls`).
//! - [`snapshot`]: one configuration as the listeners read it: routes, clusters,
//!   policies (root: every listener reads it).
//! - [`state`]: what the listeners share: the current snapshot, identity, metrics
//!   (root, for the same reason).
//! - [`control`]: joining the mesh: registration, the configuration long poll, the
//!   certificate and its renewal (over `mesh-client`; used by `run`).
//! - [`inbound`]: the sidecar's inbound listener: authorize, then forward to the app.
//! - [`outbound`]: the outbound listener (and the gateway's): Envoy's client-side
//!   phases, one file each, and `CONNECT` tunnels.
//! - [`admin`]: the admin listener (health, metrics, config dump, `/quitquitquit`).
//! - [`run`]: startup, at the top; `main` calls it.
//!
//! Among the folders that makes `tls` → `telemetry` → `http` → `upstream` → `inbound`
//! → `outbound` (each uses only folders to its left), with `control` and `run` on top.
//!
//! HTTP on the wire: the common case (keep-alive HTTP/1.1 with small sized bodies) is
//! spoken by our own code on both sides, the listeners' fast lane ([`http::http1`]) and
//! the pool's client connection ([`upstream::pool`]), because on a sidecar the HTTP
//! machinery is most of the user-space cost per request. hyper serves everything else:
//! HTTP/2, chunked and large uploads, `CONNECT`, malformed requests.

pub mod tls;

pub mod config;
pub mod http;
pub mod mtls;
pub mod telemetry;
pub mod upstream;

pub mod control;
pub mod snapshot;
pub mod state;

pub mod inbound;
pub mod outbound;

pub mod admin;
pub mod run;

/// The registry types live in `mesh-api`, shared with the control plane.
pub use mesh_api::registry;

/// The hash map of the per-request lookups (endpoints, clusters, host spellings, metric
/// series): foldhash instead of SipHash, which showed up in the profile of every
/// request. Their keys come from configuration or are bounded, and a request only looks
/// keys up, so seeded foldhash's weaker flooding resistance costs nothing here.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
