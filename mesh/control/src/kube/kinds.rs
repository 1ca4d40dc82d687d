//! The kinds the Kubernetes source watches: the six Istio kinds and the two Gateway API
//! kinds mesh-api understands, at the version our CRDs (k8s/crds), Istio and the Gateway
//! API's own install store them in. The API server converts objects applied as v1beta1 or
//! v1alpha3, so watching v1 sees them all. A kind whose CRD is not installed (the Gateway
//! API on many clusters) is simply empty.

use ::kube::core::{ApiResource, GroupVersionKind};

/// One watched kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchedKind {
    /// `VirtualService`.
    pub kind: &'static str,
    /// `networking.istio.io`.
    pub group: &'static str,
    /// `v1`.
    pub version: &'static str,
    /// `virtualservices`, the path segment of the REST API.
    pub plural: &'static str,
}

/// Every watched kind.
pub const KINDS: [WatchedKind; 9] = [
    networking("VirtualService", "virtualservices"),
    networking("DestinationRule", "destinationrules"),
    networking("Gateway", "gateways"),
    networking("ServiceEntry", "serviceentries"),
    security("PeerAuthentication", "peerauthentications"),
    security("AuthorizationPolicy", "authorizationpolicies"),
    // Istio serves EnvoyFilter only as v1alpha3.
    WatchedKind {
        kind: "EnvoyFilter",
        group: "networking.istio.io",
        version: "v1alpha3",
        plural: "envoyfilters",
    },
    gateway_api("Gateway", "gateways"),
    gateway_api("HTTPRoute", "httproutes"),
];

const fn networking(kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind {
        kind,
        group: "networking.istio.io",
        version: "v1",
        plural,
    }
}

const fn security(kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind {
        kind,
        group: "security.istio.io",
        version: "v1",
        plural,
    }
}

const fn gateway_api(kind: &'static str, plural: &'static str) -> WatchedKind {
    WatchedKind {
        kind,
        group: mesh_api::gateway_api::GATEWAY_API_GROUP,
        version: "v1",
        plural,
    }
}

impl WatchedKind {
    /// The kind as mesh-api names it: `Gateway` is Istio's, the Gateway API's is
    /// `Gateway.gateway.networking.k8s.io`.
    pub fn mesh_kind(&self) -> Option<mesh_api::Kind> {
        mesh_api::Kind::from_type(&self.api_version(), self.kind)
    }

    /// `networking.istio.io/v1`.
    pub fn api_version(&self) -> String {
        format!("{}/{}", self.group, self.version)
    }

    /// What kube's dynamic API needs to address the kind.
    pub fn api_resource(&self) -> ApiResource {
        let gvk = GroupVersionKind::gvk(self.group, self.version, self.kind);
        ApiResource::from_gvk_with_plural(&gvk, self.plural)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_one_mesh_api_reads_at_the_version_watched() {
        for watched in KINDS {
            let kind = watched.mesh_kind().unwrap();
            assert!(
                kind.api_versions()
                    .contains(&watched.api_version().as_str()),
                "{watched:?}"
            );
            assert_eq!(watched.api_resource().plural, watched.plural);
        }
    }

    fn documents(text: &str) -> Vec<serde_json::Value> {
        use serde::Deserialize;
        serde_norway::Deserializer::from_str(text)
            .map(|d| serde_json::Value::deserialize(d).unwrap())
            .filter(|v| !v.is_null())
            .collect()
    }

    #[test]
    fn the_crds_the_cluster_role_and_the_pod_fit_the_watch() {
        let mut crds = documents(include_str!("../../../../k8s/crds/istio-crds.yaml"));
        crds.extend(documents(include_str!(
            "../../../../k8s/crds/gateway-api-crds.yaml"
        )));
        for watched in KINDS {
            let crd = crds
                .iter()
                .find(|c| {
                    c["spec"]["names"]["kind"] == watched.kind
                        && c["spec"]["group"] == watched.group
                })
                .unwrap_or_else(|| panic!("no CRD for {}", watched.kind));
            assert_eq!(crd["spec"]["group"], watched.group);
            assert_eq!(crd["spec"]["names"]["plural"], watched.plural);
            let versions = crd["spec"]["versions"].as_array().unwrap();
            assert!(
                versions
                    .iter()
                    .any(|v| v["name"] == watched.version && v["served"] == true),
                "{} {} is not served",
                watched.kind,
                watched.version
            );
        }
        let manifest = documents(include_str!(
            "../../../../k8s/components/mesh/control-plane.yaml"
        ));
        let role = manifest
            .iter()
            .find(|d| d["kind"] == "ClusterRole")
            .unwrap();
        let mut granted = Vec::new();
        for rule in role["rules"].as_array().unwrap() {
            assert_eq!(
                rule["verbs"],
                serde_json::json!(["list", "watch"]),
                "{rule}"
            );
            for group in rule["apiGroups"].as_array().unwrap() {
                for resource in rule["resources"].as_array().unwrap() {
                    granted.push(format!(
                        "{}/{}",
                        group.as_str().unwrap(),
                        resource.as_str().unwrap()
                    ));
                }
            }
        }
        granted.sort();
        // The image seeds its config directory for compose; in the cluster an emptyDir
        // hides it, so the Kubernetes objects are the only routing source.
        let dockerfile = include_str!("../../../../Dockerfile");
        let seeded = dockerfile
            .split("MESH_CONTROL_CONFIG_DIR=")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        let deployment = manifest.iter().find(|d| d["kind"] == "Deployment").unwrap();
        let pod = &deployment["spec"]["template"]["spec"];
        let mount = pod["containers"][0]["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountPath"] == seeded)
            .unwrap_or_else(|| panic!("nothing mounted over {seeded}"));
        let volume = pod["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == mount["name"])
            .unwrap();
        assert!(volume["emptyDir"].is_object(), "{volume}");
        let mut watched: Vec<String> = KINDS
            .iter()
            .map(|k| format!("{}/{}", k.group, k.plural))
            .collect();
        watched.sort();
        assert_eq!(granted, watched);
    }
}
