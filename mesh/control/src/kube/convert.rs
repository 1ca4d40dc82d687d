//! One Kubernetes object → one source file for the mesh-api parser.
//!
//! The text is the object as JSON (JSON is YAML, so `parse_file` reads it) without what
//! the API server adds: `status`, and of the metadata only name, namespace, labels and
//! annotations are kept. `managedFields`, `resourceVersion`, `uid` and the like would
//! make the text change on every write that does not change the resource (and routing
//! would be pushed again for nothing); kubectl's `last-applied-configuration` annotation
//! repeats the whole object.

use ::kube::core::DynamicObject;
use serde_json::{Map, Value};

use super::kinds::WatchedKind;
use crate::source::SourceFile;

/// The annotation `kubectl apply` keeps a copy of the applied object in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Metadata fields the mesh reads.
const KEPT_METADATA: [&str; 4] = ["name", "namespace", "labels", "annotations"];

/// The name diagnostics use for an object: `VirtualService default/reviews`; the Gateway
/// API's Gateway is `Gateway.gateway.networking.k8s.io default/bookinfo-gateway`, apart
/// from Istio's Gateway of the same name.
pub fn file_name(kind: &WatchedKind, namespace: &str, name: &str) -> String {
    let kind_name = kind.mesh_kind().map_or(kind.kind, mesh_api::Kind::name);
    format!("{kind_name} {namespace}/{name}")
}

/// The object's namespace and name; `None` for an object without a name (the API server
/// never sends one).
pub fn key(object: &DynamicObject) -> Option<(String, String)> {
    let name = object.metadata.name.clone()?;
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    Some((namespace, name))
}

/// The source file of `object`, a `kind` object; `None` without a name.
pub fn source_file(kind: &WatchedKind, object: &DynamicObject) -> Option<SourceFile> {
    let (namespace, name) = key(object)?;
    let mut out = Map::new();
    let (api_version, kind_name) = match &object.types {
        Some(types) => (types.api_version.clone(), types.kind.clone()),
        // List items may come without their type: they are of the listed kind.
        None => (kind.api_version(), kind.kind.to_owned()),
    };
    out.insert("apiVersion".to_owned(), Value::String(api_version));
    out.insert("kind".to_owned(), Value::String(kind_name));
    out.insert("metadata".to_owned(), metadata(object));
    if let Value::Object(data) = &object.data {
        for (field, value) in data {
            if field != "status" {
                out.insert(field.clone(), value.clone());
            }
        }
    }
    Some(SourceFile {
        name: file_name(kind, &namespace, &name),
        text: Value::Object(out).to_string(),
    })
}

fn metadata(object: &DynamicObject) -> Value {
    let Ok(Value::Object(all)) = serde_json::to_value(&object.metadata) else {
        return Value::Object(Map::new());
    };
    let mut kept: Map<String, Value> = all
        .into_iter()
        .filter(|(field, _)| KEPT_METADATA.contains(&field.as_str()))
        .collect();
    if let Some(Value::Object(annotations)) = kept.get_mut("annotations") {
        annotations.remove(LAST_APPLIED);
        if annotations.is_empty() {
            kept.remove("annotations");
        }
    }
    Value::Object(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::kinds::KINDS;

    fn object(json: Value) -> DynamicObject {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn keeps_what_the_mesh_reads_and_drops_what_the_server_adds() {
        let vs = object(serde_json::json!({
            "apiVersion": "networking.istio.io/v1",
            "kind": "VirtualService",
            "metadata": {
                "name": "reviews", "namespace": "default", "uid": "1b2c",
                "resourceVersion": "4711", "generation": 3,
                "creationTimestamp": "2026-12-03T10:00:00Z",
                "labels": {"team": "books"},
                "annotations": {LAST_APPLIED: "{...}", "note": "canary"},
                "managedFields": [{"manager": "kubectl", "operation": "Update"}],
            },
            "spec": {"hosts": ["reviews"]},
            "status": {"observedGeneration": 3},
        }));
        let file = source_file(&KINDS[0], &vs).unwrap();
        assert_eq!(file.name, "VirtualService default/reviews");
        let text: Value = serde_json::from_str(&file.text).unwrap();
        assert_eq!(
            text,
            serde_json::json!({
                "apiVersion": "networking.istio.io/v1",
                "kind": "VirtualService",
                "metadata": {
                    "name": "reviews", "namespace": "default",
                    "labels": {"team": "books"}, "annotations": {"note": "canary"},
                },
                "spec": {"hosts": ["reviews"]},
            })
        );
        let parsed = mesh_api::parse_file(&file.name, &file.text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        assert_eq!(parsed.resources.len(), 1);
    }

    #[test]
    fn a_list_item_without_its_type_gets_the_watched_kind() {
        let dr = object(serde_json::json!({
            "metadata": {"name": "reviews", "namespace": "books",
                         "annotations": {LAST_APPLIED: "{}"}},
            "spec": {"host": "reviews"},
        }));
        let file = source_file(&KINDS[1], &dr).unwrap();
        assert_eq!(file.name, "DestinationRule books/reviews");
        let parsed = mesh_api::parse_file(&file.name, &file.text);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert_eq!(parsed.resources[0].resource.namespace(), "books");
        assert!(!file.text.contains("annotations"), "{}", file.text);
    }

    #[test]
    fn an_object_without_a_name_has_no_file() {
        let nameless = object(serde_json::json!({"metadata": {}, "spec": {}}));
        assert!(source_file(&KINDS[0], &nameless).is_none());
    }
}
