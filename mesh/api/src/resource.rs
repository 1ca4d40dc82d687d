//! The closed set of resource kinds the mesh understands.

use serde::{Deserialize, Serialize};

use crate::gateway_api::GATEWAY_API_VERSIONS;
use crate::gateway_api::gateway::KubeGateway;
use crate::gateway_api::http_route::HttpRoute;
use crate::networking::destination_rule::DestinationRule;
use crate::networking::envoy_filter::EnvoyFilter;
use crate::networking::gateway::Gateway;
use crate::networking::service_entry::ServiceEntry;
use crate::networking::virtual_service::VirtualService;
use crate::security::authorization_policy::AuthorizationPolicy;
use crate::security::peer_authentication::PeerAuthentication;

/// API versions served for networking kinds (Istio serves all three with one schema).
pub const NETWORKING_VERSIONS: [&str; 3] = [
    "networking.istio.io/v1",
    "networking.istio.io/v1beta1",
    "networking.istio.io/v1alpha3",
];

/// API versions served for security kinds.
pub const SECURITY_VERSIONS: [&str; 2] = ["security.istio.io/v1", "security.istio.io/v1beta1"];

/// Resource kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    /// networking.istio.io VirtualService.
    VirtualService,
    /// networking.istio.io DestinationRule.
    DestinationRule,
    /// networking.istio.io Gateway.
    Gateway,
    /// networking.istio.io ServiceEntry.
    ServiceEntry,
    /// security.istio.io PeerAuthentication.
    PeerAuthentication,
    /// security.istio.io AuthorizationPolicy.
    AuthorizationPolicy,
    /// gateway.networking.k8s.io Gateway (Kubernetes Gateway API). Its kind name clashes
    /// with Istio's Gateway, so the API group tells them apart.
    #[serde(rename = "Gateway.gateway.networking.k8s.io")]
    KubeGateway,
    /// gateway.networking.k8s.io HTTPRoute.
    #[serde(rename = "HTTPRoute")]
    HttpRoute,
    /// networking.istio.io EnvoyFilter (only the patches the mesh understands).
    EnvoyFilter,
}

/// API versions served for EnvoyFilter (Istio serves it only as `v1alpha3`).
pub const ENVOY_FILTER_VERSIONS: [&str; 1] = ["networking.istio.io/v1alpha3"];

impl Kind {
    /// Every kind, in the order listings show them.
    pub const ALL: [Self; 9] = [
        Self::VirtualService,
        Self::DestinationRule,
        Self::Gateway,
        Self::ServiceEntry,
        Self::PeerAuthentication,
        Self::AuthorizationPolicy,
        Self::EnvoyFilter,
        Self::KubeGateway,
        Self::HttpRoute,
    ];

    /// The name the API's `?kind=` takes and listings show; [`Kind::from_name`] reads it back.
    pub fn name(self) -> &'static str {
        match self {
            Self::VirtualService => "VirtualService",
            Self::DestinationRule => "DestinationRule",
            Self::Gateway => "Gateway",
            Self::ServiceEntry => "ServiceEntry",
            Self::PeerAuthentication => "PeerAuthentication",
            Self::AuthorizationPolicy => "AuthorizationPolicy",
            Self::EnvoyFilter => "EnvoyFilter",
            Self::KubeGateway => "Gateway.gateway.networking.k8s.io",
            Self::HttpRoute => "HTTPRoute",
        }
    }

    /// From a kind name as the API's `?kind=` takes it (`Gateway` is Istio's; the
    /// Gateway API's is `Gateway.gateway.networking.k8s.io`); `None` for kinds we skip.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "Gateway.gateway.networking.k8s.io" => Self::KubeGateway,
            "HTTPRoute" => Self::HttpRoute,
            "VirtualService" => Self::VirtualService,
            "DestinationRule" => Self::DestinationRule,
            "Gateway" => Self::Gateway,
            "ServiceEntry" => Self::ServiceEntry,
            "PeerAuthentication" => Self::PeerAuthentication,
            "AuthorizationPolicy" => Self::AuthorizationPolicy,
            "EnvoyFilter" => Self::EnvoyFilter,
            _ => return None,
        })
    }

    /// From a document's `apiVersion` and `kind`: the API group decides between Istio's
    /// and the Gateway API's `Gateway`. `None` for kinds we skip (Deployment,
    /// GRPCRoute, ...).
    pub fn from_type(api_version: &str, kind: &str) -> Option<Self> {
        let group = api_version.split_once('/').map_or("", |(group, _)| group);
        if group == crate::gateway_api::GATEWAY_API_GROUP {
            return match kind {
                "Gateway" => Some(Self::KubeGateway),
                "HTTPRoute" => Some(Self::HttpRoute),
                _ => None,
            };
        }
        match kind {
            "HTTPRoute" => None,
            _ => Self::from_name(kind),
        }
    }

    /// Accepted `apiVersion` values.
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            Self::PeerAuthentication | Self::AuthorizationPolicy => &SECURITY_VERSIONS,
            Self::KubeGateway | Self::HttpRoute => &GATEWAY_API_VERSIONS,
            Self::EnvoyFilter => &ENVOY_FILTER_VERSIONS,
            _ => &NETWORKING_VERSIONS,
        }
    }
}

/// A decoded resource of one of the supported kinds.
#[expect(
    clippy::large_enum_variant,
    reason = "resources are decoded once per config change and kept in a Vec; boxing buys nothing"
)]
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    /// Routing rules.
    VirtualService(VirtualService),
    /// Destination policies and subsets.
    DestinationRule(DestinationRule),
    /// Gateway listeners.
    Gateway(Gateway),
    /// Registry entries.
    ServiceEntry(ServiceEntry),
    /// Inbound mTLS mode.
    PeerAuthentication(PeerAuthentication),
    /// Inbound authorization.
    AuthorizationPolicy(AuthorizationPolicy),
    /// Gateway API listeners.
    KubeGateway(KubeGateway),
    /// Gateway API HTTP routing.
    HttpRoute(HttpRoute),
    /// Envoy configuration patches (the local rate limit).
    EnvoyFilter(EnvoyFilter),
}

/// Applies `f` to the object whatever its spec type.
macro_rules! with_object {
    ($resource:expr, $object:ident => $body:expr) => {
        match $resource {
            Resource::VirtualService($object) => $body,
            Resource::DestinationRule($object) => $body,
            Resource::Gateway($object) => $body,
            Resource::ServiceEntry($object) => $body,
            Resource::PeerAuthentication($object) => $body,
            Resource::AuthorizationPolicy($object) => $body,
            Resource::KubeGateway($object) => $body,
            Resource::HttpRoute($object) => $body,
            Resource::EnvoyFilter($object) => $body,
        }
    };
}

impl Resource {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::VirtualService(_) => Kind::VirtualService,
            Self::DestinationRule(_) => Kind::DestinationRule,
            Self::Gateway(_) => Kind::Gateway,
            Self::ServiceEntry(_) => Kind::ServiceEntry,
            Self::PeerAuthentication(_) => Kind::PeerAuthentication,
            Self::AuthorizationPolicy(_) => Kind::AuthorizationPolicy,
            Self::KubeGateway(_) => Kind::KubeGateway,
            Self::HttpRoute(_) => Kind::HttpRoute,
            Self::EnvoyFilter(_) => Kind::EnvoyFilter,
        }
    }

    /// Object name.
    pub fn name(&self) -> &str {
        with_object!(self, o => o.name())
    }

    /// Namespace (defaulted).
    pub fn namespace(&self) -> &str {
        with_object!(self, o => o.namespace())
    }

    /// `Kind namespace/name`.
    pub fn display_name(&self) -> String {
        with_object!(self, o => o.display_name())
    }

    /// Fills `metadata.namespace` when the document did not set it.
    pub(crate) fn default_namespace(&mut self, namespace: &str) {
        with_object!(self, o => {
            if o.metadata.namespace.is_none() {
                o.metadata.namespace = Some(namespace.to_owned());
            }
        })
    }
}
