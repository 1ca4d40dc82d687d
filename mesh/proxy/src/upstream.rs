//! Reaching a destination's endpoints: the [`cluster`] of one destination with its
//! DestinationRule policy, endpoint choice ([`lb`]), circuit breaking ([`breaker`]),
//! passive health checking ([`outlier`]), the connection [`pool`] (our own HTTP/1.1
//! client connection for the common case), the [`connector`] that dials (plain, mesh
//! mTLS or originated TLS, see [`origination`]), and hyper's general-purpose
//! [`client`] for passthrough traffic and the control plane. Uses `http` and
//! `telemetry` below it; the listeners above use it.

pub mod breaker;
pub mod client;
pub mod cluster;
pub mod connector;
pub mod lb;
pub mod origination;
pub mod outlier;
pub mod pool;
