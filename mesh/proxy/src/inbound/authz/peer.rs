//! PeerAuthentication: the mTLS mode an inbound port of a workload accepts.
//!
//! Istio's precedence, most specific first: a workload policy (same namespace, selector
//! matching the workload's labels; with several, the oldest, i.e. the first in input order)
//! and its `portLevelMtls` entry for the port, then the namespace-wide policy (no selector),
//! then the mesh-wide one (root namespace, no selector). `UNSET` or a missing mode inherits
//! from the next scope; with nothing set the mode is PERMISSIVE. Of several namespace-wide
//! (or mesh-wide) policies only the oldest counts.

use std::collections::BTreeMap;

use mesh_api::security::WorkloadSelector;
use mesh_api::security::peer_authentication::{self as pa, MutualTls, PeerAuthentication};

use crate::tls::MtlsMode;

/// Istio's default root namespace: selector-less policies there are mesh-wide.
pub const ROOT_NAMESPACE: &str = "istio-system";

/// The effective mTLS mode for `port` (the workload's own, container port) of a workload
/// in `workload_namespace` with `workload_labels`. `policies` are all PeerAuthentications
/// of the mesh, oldest first.
pub fn effective_mtls<'a>(
    policies: impl IntoIterator<Item = &'a PeerAuthentication>,
    root_namespace: &str,
    workload_namespace: &str,
    workload_labels: &BTreeMap<String, String>,
    port: u16,
) -> MtlsMode {
    let mut mesh = None;
    let mut namespace = None;
    let mut workload = None;
    for policy in policies {
        let ns = policy.namespace();
        match selector(&policy.spec.selector) {
            None if ns == root_namespace => {
                mesh.get_or_insert(policy);
                // In the root namespace itself the same policy is also namespace-wide.
                if ns == workload_namespace {
                    namespace.get_or_insert(policy);
                }
            }
            None if ns == workload_namespace => {
                namespace.get_or_insert(policy);
            }
            Some(sel) if ns == workload_namespace && sel.matches(workload_labels) => {
                workload.get_or_insert(policy);
            }
            // Other namespaces, and selector policies that do not select us (a selector in
            // the root namespace only selects workloads of the root namespace).
            _ => {}
        }
    }
    let mut mode = MtlsMode::Permissive;
    for scope in [mesh, namespace, workload].into_iter().flatten() {
        if let Some(set) = mode_of(scope.spec.mtls.as_ref()) {
            mode = set;
        }
    }
    if let Some(policy) = workload {
        let port_key = port.to_string();
        let port_mode = policy
            .spec
            .port_level_mtls
            .iter()
            .find(|(key, _)| key.trim() == port_key)
            .and_then(|(_, mtls)| mode_of(Some(mtls)));
        if let Some(set) = port_mode {
            mode = set;
        }
    }
    mode
}

/// A selector that selects something: an empty `matchLabels` counts as no selector.
fn selector(selector: &Option<WorkloadSelector>) -> Option<&WorkloadSelector> {
    selector.as_ref().filter(|s| !s.match_labels.is_empty())
}

/// The mode a policy sets, `None` when it inherits.
fn mode_of(mtls: Option<&MutualTls>) -> Option<MtlsMode> {
    match mtls?.mode? {
        pa::MtlsMode::Unset => None,
        pa::MtlsMode::Disable => Some(MtlsMode::Disable),
        pa::MtlsMode::Permissive => Some(MtlsMode::Permissive),
        pa::MtlsMode::Strict => Some(MtlsMode::Strict),
    }
}
