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

/// Istio's root namespace: policies there without a selector apply mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The security resources that can apply to one workload, as its proxy receives them
/// (the proxy resolves precedence and evaluates them per connection and request).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkloadSecurity {
    /// Mesh-wide, namespace-wide and workload PeerAuthentications, in load order.
    #[serde(default)]
    pub peer_authentications: Vec<peer_authentication::PeerAuthentication>,
    /// AuthorizationPolicies selecting the workload (or its namespace, or the mesh).
    #[serde(default)]
    pub authorization_policies: Vec<authorization_policy::AuthorizationPolicy>,
}

impl WorkloadSecurity {
    /// Picks, from all resources, those that may apply to a workload in `namespace`
    /// with `labels`: resources in the root namespace (mesh-wide) or in the workload's
    /// namespace, without a selector or with one matching the labels.
    pub fn for_workload<'a>(
        peer_authentications: impl Iterator<Item = &'a peer_authentication::PeerAuthentication>,
        authorization_policies: impl Iterator<Item = &'a authorization_policy::AuthorizationPolicy>,
        namespace: &str,
        labels: &BTreeMap<String, String>,
    ) -> Self {
        let applies = |ns: &str, selector: Option<&WorkloadSelector>| {
            (ns == namespace || ns == ROOT_NAMESPACE)
                && selector
                    .is_none_or(|s| s.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v)))
        };
        Self {
            peer_authentications: peer_authentications
                .filter(|p| applies(p.namespace(), p.spec.selector.as_ref()))
                .cloned()
                .collect(),
            authorization_policies: authorization_policies
                .filter(|p| applies(p.namespace(), p.spec.selector.as_ref()))
                .cloned()
                .collect(),
        }
    }
}
