//! Gateway API `Gateway`: listeners (port, protocol, hostname) and which routes may
//! attach to them. With `gatewayClassName: istio` Istio deploys an Envoy for it; in our
//! mesh the ingress gateway serves every such Gateway.

use serde::{Deserialize, Serialize};

use crate::meta::Object;

/// A Gateway API `Gateway` object.
pub type KubeGateway = Object<KubeGatewaySpec>;

/// `spec` of a Gateway API Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KubeGatewaySpec {
    /// The class (`istio`); required.
    #[serde(default)]
    pub gateway_class_name: String,
    /// Listeners (1..64).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub listeners: Vec<GatewayListener>,
    /// Requested addresses (accepted; our gateway binds its configured address).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<serde_json::Value>,
    /// Labels and annotations for the deployed infrastructure (accepted, not used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infrastructure: Option<serde_json::Value>,
}

/// One listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayListener {
    /// Unique within the Gateway; routes name it in `parentRefs[].sectionName`.
    #[serde(default)]
    pub name: String,
    /// Host the listener answers for (`*.example.com` allowed); absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Port number.
    #[serde(default)]
    pub port: u32,
    /// `HTTP`, `HTTPS`, `TLS`, `TCP`, `UDP`.
    #[serde(default)]
    pub protocol: String,
    /// TLS settings (only for HTTPS/TLS, which our gateway does not serve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<serde_json::Value>,
    /// Which routes may attach.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_routes: Option<AllowedRoutes>,
}

/// `allowedRoutes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AllowedRoutes {
    /// From which namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<RouteNamespaces>,
    /// Which route kinds (`HTTPRoute` is the only one we serve).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<RouteGroupKind>,
}

/// `allowedRoutes.namespaces`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteNamespaces {
    /// `Same` (default), `All`, `Selector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<FromNamespaces>,
    /// Namespace label selector for `Selector` (not supported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<serde_json::Value>,
}

/// `allowedRoutes.namespaces.from`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FromNamespaces {
    /// Only routes in the Gateway's namespace (the default).
    #[default]
    Same,
    /// Routes from every namespace.
    All,
    /// Namespaces selected by labels (we do not know namespace labels).
    Selector,
}

/// `allowedRoutes.kinds[]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteGroupKind {
    /// Default `gateway.networking.k8s.io`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// `HTTPRoute`, ...
    #[serde(default)]
    pub kind: String,
}

impl GatewayListener {
    /// Namespaces the listener accepts routes from.
    pub fn from_namespaces(&self) -> FromNamespaces {
        self.allowed_routes
            .as_ref()
            .and_then(|a| a.namespaces.as_ref())
            .and_then(|n| n.from)
            .unwrap_or_default()
    }
}
