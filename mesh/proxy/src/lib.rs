//! The mesh's sidecar proxy and ingress gateway.
//!
//! Building blocks first: Envoy-style response flags ([`flags`]), Istio-compatible
//! telemetry ([`telemetry`], [`access_log`]), endpoint selection ([`lb`]) and passive
//! health checking ([`outlier`]). The listeners that use them sit on top.

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
