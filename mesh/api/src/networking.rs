//! `networking.istio.io` resources: VirtualService, DestinationRule, Gateway, ServiceEntry,
//! EnvoyFilter.
//!
//! Field names follow Istio's CRDs (camelCase in YAML). Types are plain data; semantics
//! live in `defaults`, `validate`, `matching` and `compile`.

pub mod destination_rule;
pub mod envoy_filter;
pub mod gateway;
pub mod service_entry;
pub mod virtual_service;

use serde::{Deserialize, Serialize};

/// `{value: 50.0}`: a percentage as a double in 0..=100.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percent {
    /// 0 to 100.
    #[serde(default)]
    pub value: f64,
}

/// `{number: 9080}`: a service port selector.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortSelector {
    /// Port number.
    #[serde(default)]
    pub number: u32,
}
