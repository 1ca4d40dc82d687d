//! Validation as istiod does it: each resource on its own, then checks across resources.
//!
//! Per-resource checks collect `(path, message)` pairs; the caller turns them into
//! [`ConfigError`]s naming the file, document and resource.

mod destination_rule;
mod gateway;
mod gateway_api;

pub use gateway_api::attachment_warnings;
mod security;
pub(crate) mod virtual_service;

use std::time::Duration;

use crate::error::{ConfigError, Warning};
use crate::host::qualify;
use crate::networking::Percent;
use crate::parse::Loaded;
use crate::resource::Resource;
use crate::string_match::StringMatch;

/// Problems found in one resource, as field path and message.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<(String, String)>);

impl Problems {
    pub(crate) fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((path.into(), message.into()));
    }

    /// `value` must be within 0..=100.
    pub(crate) fn percent(&mut self, path: &str, value: f64) {
        if !(0.0..=100.0).contains(&value) || value.is_nan() {
            self.add(path, format!("must be between 0 and 100, got {value}"));
        }
    }

    pub(crate) fn percentage(&mut self, path: &str, percentage: Option<Percent>) {
        if let Some(p) = percentage {
            self.percent(&format!("{path}.value"), p.value);
        }
    }

    /// Durations that Envoy needs to be at least a millisecond.
    pub(crate) fn at_least_1ms(&mut self, path: &str, duration: Option<Duration>) {
        if let Some(d) = duration
            && d < Duration::from_millis(1)
        {
            self.add(path, "must be at least 1ms");
        }
    }

    pub(crate) fn port(&mut self, path: &str, port: u32) {
        if !(1..=65535).contains(&port) {
            self.add(
                path,
                format!("must be a port number between 1 and 65535, got {port}"),
            );
        }
    }

    /// At most one of exact/prefix/regex; `required` rejects the empty (presence) form.
    pub(crate) fn string_match(&mut self, path: &str, m: &StringMatch, required: bool) {
        match m.kinds_set() {
            0 if required => self.add(path, "one of exact, prefix or regex is required"),
            0 | 1 => {}
            _ => self.add(path, "only one of exact, prefix or regex may be set"),
        }
    }
}

/// Checks one resource on its own.
pub fn validate_resource(loaded: &Loaded) -> Vec<ConfigError> {
    let mut problems = Problems::default();
    match &loaded.resource {
        Resource::VirtualService(vs) => virtual_service::virtual_service(vs, &mut problems),
        Resource::DestinationRule(dr) => destination_rule::destination_rule(dr, &mut problems),
        Resource::Gateway(gw) => gateway::gateway(gw, &mut problems),
        Resource::ServiceEntry(se) => gateway::service_entry(se, &mut problems),
        Resource::PeerAuthentication(pa) => security::peer_authentication(pa, &mut problems),
        Resource::AuthorizationPolicy(ap) => security::authorization_policy(ap, &mut problems),
        Resource::KubeGateway(gw) => gateway_api::gateway(gw, &mut problems),
        Resource::HttpRoute(route) => gateway_api::http_route(route, &mut problems),
        Resource::EnvoyFilter(filter) => {
            if let Err(found) = crate::compile::rate_limit::local_rate_limits(filter) {
                problems.0.extend(found);
            }
        }
    }
    to_errors(loaded, problems)
}

fn to_errors(loaded: &Loaded, problems: Problems) -> Vec<ConfigError> {
    let name = loaded.resource.display_name();
    problems
        .0
        .into_iter()
        .map(|(path, message)| {
            ConfigError::in_resource(&loaded.origin, name.clone(), path, message)
        })
        .collect()
}

/// Checks across resources: every subset a VirtualService names must exist in the
/// DestinationRule(s) for that host, when at least one such rule is known. (A route file
/// applied before its DestinationRule is accepted, as in Istio's own task order.)
pub fn validate_set(resources: &[Loaded]) -> Vec<ConfigError> {
    let rules: Vec<(String, &Loaded, Vec<&str>)> = resources
        .iter()
        .filter_map(|l| match &l.resource {
            Resource::DestinationRule(dr) => Some((
                qualify(&dr.spec.host, dr.namespace()),
                l,
                dr.spec.subsets.iter().map(|s| s.name.as_str()).collect(),
            )),
            _ => None,
        })
        .collect();
    let mut errors = Vec::new();
    for loaded in resources {
        let Resource::VirtualService(vs) = &loaded.resource else {
            continue;
        };
        let mut problems = Problems::default();
        for (path, destination) in virtual_service::destinations(vs) {
            let Some(subset) = destination.subset.as_deref() else {
                continue;
            };
            let host = qualify(&destination.host, vs.namespace());
            let known: Vec<_> = rules.iter().filter(|(h, _, _)| *h == host).collect();
            if known.is_empty()
                || known
                    .iter()
                    .any(|(_, _, subsets)| subsets.contains(&subset))
            {
                continue;
            }
            let names: Vec<String> = known
                .iter()
                .map(|(_, l, _)| format!("{}/{}", l.resource.namespace(), l.resource.name()))
                .collect();
            problems.add(
                format!("{path}.subset"),
                format!(
                    "subset {subset:?} is not defined in DestinationRule {} for host {host}",
                    names.join(", ")
                ),
            );
        }
        errors.extend(to_errors(loaded, problems));
    }
    errors
}

/// Sidecars do not merge VirtualServices: when two mesh-bound VirtualServices route the
/// same host, only the first loaded one is used (Istio's analyzer reports this as IST0109).
/// Returned as warnings on the later ones.
pub fn conflicting_hosts(resources: &[Loaded]) -> Vec<Warning> {
    host_conflicts(resources)
        .into_iter()
        .map(|(_, warning)| warning)
        .collect()
}

/// [`conflicting_hosts`], each warning with the kind of the resources in conflict.
pub(crate) fn host_conflicts(resources: &[Loaded]) -> Vec<(&'static str, Warning)> {
    let mut owners: Vec<(&str, String, String)> = Vec::new();
    let mut warnings = Vec::new();
    // Sidecars take one VirtualService and one DestinationRule per host: a second one
    // for the same host silently does nothing, which people only find out when a lab
    // step "does not work".
    let mut claim = |kind: &'static str,
                     relation: &str,
                     host: String,
                     loaded: &Loaded,
                     field: String,
                     effect: &str| {
        match owners.iter().find(|(k, h, _)| *k == kind && *h == host) {
            Some((_, _, owner)) => warnings.push((
                kind,
                Warning::in_resource(
                    &loaded.origin,
                    Some(loaded.resource.display_name()),
                    field,
                    format!("host {host} {relation} {kind} {owner}; {effect}"),
                ),
            )),
            None => owners.push((
                kind,
                host,
                format!("{}/{}", loaded.resource.namespace(), loaded.resource.name()),
            )),
        }
    };
    for loaded in resources {
        match &loaded.resource {
            Resource::VirtualService(vs) => {
                let mesh_bound =
                    vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh");
                if !mesh_bound {
                    continue;
                }
                for (i, host) in vs.spec.hosts.iter().enumerate() {
                    claim(
                        "VirtualService",
                        "is already routed by",
                        qualify(host, vs.namespace()),
                        loaded,
                        format!("spec.hosts[{i}]"),
                        "sidecars do not merge VirtualServices, this one is ignored for that host",
                    );
                }
            }
            Resource::DestinationRule(dr) if dr.spec.workload_selector.is_none() => claim(
                "DestinationRule",
                "already has",
                qualify(&dr.spec.host, dr.namespace()),
                loaded,
                "spec.host".to_owned(),
                "only one DestinationRule applies per host (its policy and subsets), so this one is ignored: edit that one instead",
            ),
            _ => {}
        }
    }
    warnings
}
