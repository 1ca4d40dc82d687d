//! What the proxy reports, at the bottom of the crate (it uses nothing of ours but
//! `FastMap`): Envoy's response flags ([`flags`]), Istio's metrics ([`metrics`]), the
//! Envoy-format access log ([`access_log`]), and the one place a finished request is
//! written to both (`record`).

pub mod access_log;
// The file stays at `src/flags.rs` for now: `meshctl explain`'s test reads the flag
// table from that path (`mesh/ctl/src/explain.rs`). It moves into this folder together
// with that one-line path change.
#[path = "flags.rs"]
pub mod flags;
pub mod metrics;
pub(crate) mod record;
