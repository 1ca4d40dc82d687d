//! Kubernetes object envelope: `apiVersion`, `kind`, `metadata`, `spec`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Namespace assumed when `metadata.namespace` is absent (what `kubectl apply` does without `-n`).
pub const DEFAULT_NAMESPACE: &str = "default";

/// The subset of Kubernetes `ObjectMeta` that routing needs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name (required).
    #[serde(default)]
    pub name: String,
    /// Namespace; filled with the load namespace (normally `default`) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Tolerated so `kubectl get -o yaml` output loads without warnings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
    /// Tolerated, see `resource_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Tolerated, see `resource_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// Tolerated, see `resource_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
}

impl ObjectMeta {
    /// The namespace, defaulted.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(DEFAULT_NAMESPACE)
    }
}

/// A typed Kubernetes object: `apiVersion` + `kind` + `metadata` + `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object<S> {
    /// e.g. `networking.istio.io/v1`.
    pub api_version: String,
    /// e.g. `VirtualService`.
    pub kind: String,
    /// Name, namespace, labels, annotations.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// The resource body; absent means all defaults (`spec: {}`).
    #[serde(default)]
    pub spec: S,
}

impl<S> Object<S> {
    /// `namespace/name`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.metadata.namespace(), self.metadata.name)
    }

    /// `Kind namespace/name`, the way diagnostics name a resource.
    pub fn display_name(&self) -> String {
        format!("{} {}", self.kind, self.key())
    }

    /// The namespace (defaulted).
    pub fn namespace(&self) -> &str {
        self.metadata.namespace()
    }

    /// The name.
    pub fn name(&self) -> &str {
        &self.metadata.name
    }
}
