//! `MeshConfig`: a validated set of resources, loaded from one or more YAML texts.

use serde::Serialize;

use crate::error::{ConfigError, ConfigErrors, Warning};
use crate::gateway_api::gateway::KubeGateway;
use crate::gateway_api::http_route::HttpRoute;
use crate::networking::destination_rule::DestinationRule;
use crate::networking::envoy_filter::EnvoyFilter;
use crate::networking::gateway::Gateway;
use crate::networking::service_entry::ServiceEntry;
use crate::networking::virtual_service::VirtualService;
use crate::parse::{Loaded, parse_file};
use crate::resource::{Kind, Resource};
use crate::security::authorization_policy::AuthorizationPolicy;
use crate::security::peer_authentication::PeerAuthentication;
use crate::validate::{attachment_warnings, conflicting_hosts, validate_resource, validate_set};

/// A valid set of mesh resources (in load order; later definitions of the same
/// `Kind namespace/name` replace earlier ones, like `kubectl apply`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MeshConfig {
    resources: Vec<Loaded>,
}

/// Result of a successful load: the configuration plus non-fatal findings.
#[derive(Debug, Clone, Default)]
pub struct LoadOutcome {
    /// Validated resources.
    pub config: MeshConfig,
    /// Unknown kinds, unknown fields, replaced definitions.
    pub warnings: Vec<Warning>,
}

impl MeshConfig {
    /// Parses and validates `(file name, YAML text)` pairs. Any error anywhere rejects the
    /// whole set (all errors are reported), so a half-applied configuration never exists.
    pub fn load<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<LoadOutcome, ConfigErrors> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut resources = Vec::new();
        for (name, text) in files {
            let parsed = parse_file(name, text);
            errors.extend(parsed.errors);
            warnings.extend(parsed.warnings);
            resources.extend(parsed.resources);
        }
        match Self::from_resources(resources) {
            Ok(outcome) => {
                warnings.extend(outcome.warnings);
                if errors.is_empty() {
                    Ok(LoadOutcome {
                        config: outcome.config,
                        warnings,
                    })
                } else {
                    Err(ConfigErrors(errors))
                }
            }
            Err(ConfigErrors(more)) => {
                errors.extend(more);
                Err(ConfigErrors(errors))
            }
        }
    }

    /// Validates already-parsed resources (each on its own, then across the set).
    pub fn from_resources(resources: Vec<Loaded>) -> Result<LoadOutcome, ConfigErrors> {
        let mut config = Self::default();
        let mut warnings = Vec::new();
        for loaded in resources {
            if let Some(previous) = config.insert(loaded.clone()) {
                warnings.push(Warning::in_resource(
                    &loaded.origin,
                    Some(loaded.resource.display_name()),
                    "",
                    format!("replaces the definition from {}", previous.origin),
                ));
            }
        }
        let mut errors: Vec<ConfigError> = config
            .resources
            .iter()
            .flat_map(validate_resource)
            .collect();
        errors.extend(validate_set(&config.resources));
        if errors.is_empty() {
            warnings.extend(conflicting_hosts(&config.resources));
            warnings.extend(attachment_warnings(&config.resources));
            Ok(LoadOutcome { config, warnings })
        } else {
            Err(ConfigErrors(errors))
        }
    }

    /// Adds or replaces (same kind, namespace and name) a resource; returns the replaced one.
    /// Does not validate: use [`MeshConfig::from_resources`] for that.
    pub fn insert(&mut self, loaded: Loaded) -> Option<Loaded> {
        let same = |l: &Loaded| {
            l.resource.kind() == loaded.resource.kind()
                && l.resource.namespace() == loaded.resource.namespace()
                && l.resource.name() == loaded.resource.name()
        };
        match self.resources.iter_mut().find(|l| same(l)) {
            Some(slot) => Some(std::mem::replace(slot, loaded)),
            None => {
                self.resources.push(loaded);
                None
            }
        }
    }

    /// Removes a resource; returns it when it existed.
    pub fn remove(&mut self, kind: Kind, namespace: &str, name: &str) -> Option<Loaded> {
        let index = self.resources.iter().position(|l| {
            l.resource.kind() == kind
                && l.resource.namespace() == namespace
                && l.resource.name() == name
        })?;
        Some(self.resources.remove(index))
    }

    /// All resources in load order.
    pub fn resources(&self) -> &[Loaded] {
        &self.resources
    }

    /// Number of resources.
    pub fn len(&self) -> usize {
        self.resources.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// VirtualServices in load order.
    pub fn virtual_services(&self) -> impl Iterator<Item = &VirtualService> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::VirtualService(r) => Some(r),
            _ => None,
        })
    }

    /// DestinationRules in load order.
    pub fn destination_rules(&self) -> impl Iterator<Item = &DestinationRule> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::DestinationRule(r) => Some(r),
            _ => None,
        })
    }

    /// Gateways in load order.
    pub fn gateways(&self) -> impl Iterator<Item = &Gateway> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::Gateway(r) => Some(r),
            _ => None,
        })
    }

    /// ServiceEntries in load order.
    pub fn service_entries(&self) -> impl Iterator<Item = &ServiceEntry> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::ServiceEntry(r) => Some(r),
            _ => None,
        })
    }

    /// PeerAuthentications in load order.
    pub fn peer_authentications(&self) -> impl Iterator<Item = &PeerAuthentication> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::PeerAuthentication(r) => Some(r),
            _ => None,
        })
    }

    /// AuthorizationPolicies in load order.
    pub fn authorization_policies(&self) -> impl Iterator<Item = &AuthorizationPolicy> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::AuthorizationPolicy(r) => Some(r),
            _ => None,
        })
    }

    /// Gateway API Gateways in load order.
    pub fn kube_gateways(&self) -> impl Iterator<Item = &KubeGateway> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::KubeGateway(r) => Some(r),
            _ => None,
        })
    }

    /// Gateway API HTTPRoutes in load order.
    pub fn http_routes(&self) -> impl Iterator<Item = &HttpRoute> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::HttpRoute(r) => Some(r),
            _ => None,
        })
    }

    /// EnvoyFilters in load order.
    pub fn envoy_filters(&self) -> impl Iterator<Item = &EnvoyFilter> {
        self.resources.iter().filter_map(|l| match &l.resource {
            Resource::EnvoyFilter(r) => Some(r),
            _ => None,
        })
    }
}
