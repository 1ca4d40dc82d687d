//! `PeerAuthentication`: which mTLS mode a workload's inbound side accepts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::WorkloadSelector;
use crate::meta::Object;

/// A `PeerAuthentication` object.
pub type PeerAuthentication = Object<PeerAuthenticationSpec>;

/// `spec` of a PeerAuthentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerAuthenticationSpec {
    /// Workloads; absent = namespace-wide (mesh-wide in the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<WorkloadSelector>,
    /// Mode for all ports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls: Option<MutualTls>,
    /// Per container port (keys are port numbers); only with a selector.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub port_level_mtls: BTreeMap<String, MutualTls>,
}

/// `{mode: STRICT}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MutualTls {
    /// Mode; absent = UNSET (inherit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MtlsMode>,
}

/// mTLS modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MtlsMode {
    /// Inherit from the parent scope (mesh level: PERMISSIVE).
    Unset,
    /// Plaintext only.
    Disable,
    /// mTLS or plaintext.
    Permissive,
    /// mTLS only.
    Strict,
}
