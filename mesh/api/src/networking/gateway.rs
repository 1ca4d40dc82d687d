//! `Gateway`: the listeners of an ingress/egress gateway proxy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::meta::Object;

/// A `Gateway` object.
pub type Gateway = Object<GatewaySpec>;

/// `spec` of a Gateway.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GatewaySpec {
    /// Gateway pods this applies to (by label).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub selector: BTreeMap<String, String>,
    /// Listeners.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<Server>,
}

/// One listener.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Server {
    /// Port (required).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<ServerPort>,
    /// Bind address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// Hosts exposed (`*`, `ns/host`, ...); required.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// TLS termination settings (accepted, not interpreted yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<serde_json::Value>,
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Deprecated default endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_endpoint: Option<String>,
}

/// A listener port.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerPort {
    /// Port number.
    #[serde(default)]
    pub number: u32,
    /// `HTTP`, `HTTPS`, `GRPC`, `HTTP2`, `MONGO`, `TCP`, `TLS`.
    #[serde(default)]
    pub protocol: String,
    /// Port name.
    #[serde(default)]
    pub name: String,
    /// Deprecated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_port: Option<u32>,
}
