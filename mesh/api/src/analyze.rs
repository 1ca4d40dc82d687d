//! Configuration analysis beyond validation, in the manner of `istioctl analyze`: resources
//! that are each valid and accepted, but together do not do what their author meant. A
//! second team's VirtualService for a host that already has one, a subset no
//! DestinationRule defines, a Gateway nobody declared, a host no service answers for.
//!
//! Findings carry Istio's analyzer code where Istio has one for the same problem, so a
//! user can look it up on istio.io; the rest carry none. No I/O: the caller passes the
//! resources and the services the registry knows.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::compile::{MESH_GATEWAY, gateway_ref};
use crate::host::qualify;
use crate::parse::Loaded;
use crate::registry::Registry;
use crate::resource::Resource;
use crate::validate::host_conflicts;
use crate::validate::virtual_service::destinations;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Level {
    /// Worth knowing.
    Info,
    /// Probably not what was meant.
    Warning,
    /// Traffic does not go where the configuration says.
    Error,
}

impl Level {
    /// `Error`, `Warning` or `Info`, as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "Info",
            Level::Warning => "Warning",
            Level::Error => "Error",
        }
    }
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Severity.
    pub level: Level,
    /// Istio's analyzer code (`IST0109`), when it has one for this problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// `Kind namespace/name` of the resource concerned.
    pub resource: String,
    /// The file it came from.
    pub file: String,
    /// The field, when one is to blame.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// What is wrong and what it does.
    pub message: String,
}

impl fmt::Display for Finding {
    /// `Error [IST0109] (VirtualService default/reviews) message`, as istioctl prints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.level.as_str())?;
        if let Some(code) = &self.code {
            write!(f, " [{code}]")?;
        }
        write!(f, " ({}) {}", self.resource, self.message)
    }
}

/// Every finding about `resources` (already validated) against the services of
/// `registry`, errors first.
pub fn analyze(resources: &[Loaded], registry: &Registry) -> Vec<Finding> {
    let mut findings = Vec::new();
    let known_hosts = known_hosts(resources, registry);
    conflicts(resources, &mut findings);
    for loaded in resources {
        match &loaded.resource {
            Resource::VirtualService(_) => {
                virtual_service(loaded, resources, &known_hosts, &mut findings)
            }
            Resource::DestinationRule(_) => destination_rule(loaded, &known_hosts, &mut findings),
            _ => {}
        }
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.level));
    findings
}

/// Hosts something answers for: registry services and ServiceEntry hosts.
fn known_hosts(resources: &[Loaded], registry: &Registry) -> BTreeSet<String> {
    let mut hosts: BTreeSet<String> = registry.services.iter().map(|s| s.host()).collect();
    for loaded in resources {
        if let Resource::ServiceEntry(se) = &loaded.resource {
            hosts.extend(se.spec.hosts.iter().map(|h| qualify(h, se.namespace())));
        }
    }
    hosts
}

fn finding(
    loaded: &Loaded,
    level: Level,
    code: Option<&str>,
    path: String,
    message: String,
) -> Finding {
    Finding {
        level,
        code: code.map(str::to_owned),
        resource: loaded.resource.display_name(),
        file: loaded.origin.file.clone(),
        path,
        message,
    }
}

/// Two mesh VirtualServices, or two DestinationRules, for one host: only the first is used.
fn conflicts(resources: &[Loaded], findings: &mut Vec<Finding>) {
    for (kind, warning) in host_conflicts(resources) {
        let (level, code) = match kind {
            "VirtualService" => (Level::Error, Some("IST0109".to_owned())),
            _ => (Level::Warning, None),
        };
        findings.push(Finding {
            level,
            code,
            resource: warning.resource.unwrap_or_default(),
            file: warning.file,
            path: warning.path,
            message: warning.message,
        });
    }
}

fn virtual_service(
    loaded: &Loaded,
    resources: &[Loaded],
    known_hosts: &BTreeSet<String>,
    findings: &mut Vec<Finding>,
) {
    let Resource::VirtualService(vs) = &loaded.resource else {
        return;
    };
    let ns = vs.namespace();
    for (i, gateway) in vs.spec.gateways.iter().enumerate() {
        if gateway == MESH_GATEWAY {
            continue;
        }
        let key = gateway_ref(gateway, ns);
        let declared = resources.iter().any(|l| match &l.resource {
            Resource::Gateway(g) => g.key() == key,
            _ => false,
        });
        if !declared {
            findings.push(finding(
                loaded,
                Level::Error,
                Some("IST0101"),
                format!("spec.gateways[{i}]"),
                format!(
                    "Referenced gateway not found: {gateway:?}; the routes are served by no gateway"
                ),
            ));
        }
    }
    for (path, destination) in destinations(vs) {
        let host = qualify(&destination.host, ns);
        if host.starts_with('*') {
            continue;
        }
        if !known_hosts.contains(&host) {
            findings.push(finding(
                loaded,
                Level::Error,
                Some("IST0101"),
                format!("{path}.host"),
                format!("Referenced host not found: {:?}; requests routed there get 503 (no service, no ServiceEntry)", destination.host),
            ));
            continue;
        }
        let Some(subset) = destination.subset.as_deref() else {
            continue;
        };
        let defined = resources.iter().any(|l| match &l.resource {
            Resource::DestinationRule(dr) => {
                qualify(&dr.spec.host, dr.namespace()) == host
                    && dr.spec.subsets.iter().any(|s| s.name == subset)
            }
            _ => false,
        });
        if !defined {
            findings.push(finding(
                loaded,
                Level::Error,
                Some("IST0101"),
                format!("{path}.subset"),
                format!(
                    "Referenced host+subset in destinationrule not found: \"{}+{subset}\"; requests routed there get 503 NR until a DestinationRule defines it",
                    destination.host
                ),
            ));
        }
    }
}

fn destination_rule(loaded: &Loaded, known_hosts: &BTreeSet<String>, findings: &mut Vec<Finding>) {
    let Resource::DestinationRule(dr) = &loaded.resource else {
        return;
    };
    let host = qualify(&dr.spec.host, dr.namespace());
    if !host.starts_with('*') && !known_hosts.contains(&host) {
        findings.push(finding(
            loaded,
            Level::Warning,
            Some("IST0174"),
            "spec.host".to_owned(),
            format!("The host {} defined in the DestinationRule does not match any services in the mesh", dr.spec.host),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_file;

    fn registry() -> Registry {
        serde_json::from_value(serde_json::json!({"services": [
            {"name": "reviews", "ports": [9080], "endpoints": [
                {"address": "127.0.0.1:1", "labels": {"app": "reviews", "version": "v1"}},
                {"address": "127.0.0.1:2", "labels": {"app": "reviews", "version": "v3"}}]},
            {"name": "ratings", "ports": [9080], "endpoints": []}
        ]}))
        .unwrap()
    }

    fn run(yaml: &str) -> Vec<String> {
        let parsed = parse_file("team.yaml", yaml);
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        analyze(&parsed.resources, &registry())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n  - {name: v3, labels: {version: v3}}\n";

    #[test]
    fn a_clean_configuration_has_no_findings() {
        let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n";
        assert_eq!(run(&format!("{DR}---\n{vs}")), Vec::<String>::new());
    }

    #[test]
    fn a_second_teams_virtual_service_is_an_ist0109() {
        let a = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n";
        let b = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews-team-b}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n";
        let found = run(&format!("{DR}---\n{a}---\n{b}"));
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("Error [IST0109] (VirtualService default/reviews-team-b) host reviews.default.svc.cluster.local is already routed by VirtualService default/reviews"),
            "{found:?}"
        );
    }

    #[test]
    fn missing_references_are_ist0101_and_unknown_hosts_ist0174() {
        let vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [ratings]\n  gateways: [nowhere]\n  http:\n  - route:\n    - destination: {host: ratings, subset: v1}\n    - destination: {host: reviewz}\n";
        let dr = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: typo}\nspec:\n  host: reveiws\n";
        let found = run(&format!("{vs}---\n{dr}"));
        let want = [
            "Error [IST0101] (VirtualService default/r) Referenced gateway not found: \"nowhere\"",
            "Error [IST0101] (VirtualService default/r) Referenced host+subset in destinationrule not found: \"ratings+v1\"",
            "Error [IST0101] (VirtualService default/r) Referenced host not found: \"reviewz\"",
            "Warning [IST0174] (DestinationRule default/typo) The host reveiws defined in the DestinationRule does not match any services in the mesh",
        ];
        for w in want {
            assert!(
                found.iter().any(|f| f.starts_with(w)),
                "no {w:?} in {found:#?}"
            );
        }
        assert_eq!(found.len(), want.len(), "{found:#?}");
        assert!(found[0].starts_with("Error"), "errors first");
    }
}
