//! `security.istio.io` resources: PeerAuthentication and AuthorizationPolicy.

pub mod authorization_policy;
pub mod peer_authentication;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `selector: {matchLabels: {...}}` of security resources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSelector {
    /// Labels a workload must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

impl WorkloadSelector {
    /// True when every label of the selector is present with the same value.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(key, value)| labels.get(key) == Some(value))
    }
}
