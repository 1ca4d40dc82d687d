//! What the proxy reports, at the bottom of the crate (it uses nothing of ours but
//! `FastMap`): Envoy's response flags ([`flags`]), Istio's metrics ([`metrics`]), the
//! Envoy-format access log ([`access_log`]), the peer metadata exchange that tells a
//! server who called ([`peer`]), the one place a finished request is written to both
//! (`record`), and the trace spans of each hop ([`trace`]).

pub mod access_log;
pub mod flags;
pub mod metrics;
pub mod peer;
pub(crate) mod record;
pub mod trace;
