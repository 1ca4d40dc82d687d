//! The mesh's sidecar proxy and ingress gateway.
//!
//! Building blocks first: Envoy-style response flags ([`flags`]), Istio-compatible
//! telemetry ([`telemetry`], [`access_log`]), endpoint selection ([`lb`]) and passive
//! health checking ([`outlier`]). The listeners that use them sit on top.

pub mod access_log;
pub mod breaker;
pub mod fault;
pub mod flags;
pub mod lb;
pub mod outlier;
pub mod retry;
pub mod telemetry;
