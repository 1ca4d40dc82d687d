//! `EnvoyFilter`: patches to the Envoy configuration istiod generates. Our proxy is not
//! Envoy, so the mesh understands only the patches it can carry out itself (see
//! [`crate::compile::rate_limit`]); the patch bodies stay free-form JSON here and are read
//! there, so that anything else is refused with a message instead of being half applied.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::Object;

/// An `EnvoyFilter` object.
pub type EnvoyFilter = Object<EnvoyFilterSpec>;

/// `spec` of an EnvoyFilter.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvoyFilterSpec {
    /// Workloads the patches apply to (absent: every workload of the namespace, or of the
    /// mesh for the root namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload_selector: Option<EnvoyWorkloadSelector>,
    /// The patches, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub config_patches: Vec<ConfigPatch>,
    /// Order among EnvoyFilters (accepted; the patches we understand do not depend on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<i32>,
}

/// `workloadSelector: {labels: {...}}` (EnvoyFilter's own spelling, not `matchLabels`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EnvoyWorkloadSelector {
    /// Labels a workload must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

impl EnvoyWorkloadSelector {
    /// True when every label of the selector is present with the same value.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels.iter().all(|(k, v)| labels.get(k) == Some(v))
    }
}

/// One entry of `configPatches`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigPatch {
    /// `HTTP_FILTER`, `LISTENER`, `CLUSTER`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub apply_to: String,
    /// Where the patch applies (`context`, `listener`, `routeConfiguration`, ...), as written.
    #[serde(
        rename = "match",
        default,
        skip_serializing_if = "serde_json::Value::is_null"
    )]
    pub match_: serde_json::Value,
    /// What to do there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch: Option<Patch>,
}

/// `patch: {operation, value}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Patch {
    /// `INSERT_BEFORE`, `MERGE`, `ADD`, ...
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operation: String,
    /// The Envoy configuration to insert or merge, as written.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub value: serde_json::Value,
    /// `filterClass` (`AUTHN`, `AUTHZ`, `STATS`), for `INSERT_*` of HTTP filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter_class: Option<String>,
}
