//! The closed set of resource kinds the mesh understands.

use serde::{Deserialize, Serialize};

use crate::networking::destination_rule::DestinationRule;
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
}

impl Kind {
    /// From the `kind:` field; `None` for kinds we skip (Deployment, HTTPRoute, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "VirtualService" => Self::VirtualService,
            "DestinationRule" => Self::DestinationRule,
            "Gateway" => Self::Gateway,
            "ServiceEntry" => Self::ServiceEntry,
            "PeerAuthentication" => Self::PeerAuthentication,
            "AuthorizationPolicy" => Self::AuthorizationPolicy,
            _ => return None,
        })
    }

    /// Accepted `apiVersion` values.
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            Self::PeerAuthentication | Self::AuthorizationPolicy => &SECURITY_VERSIONS,
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
