//! Checks for security resources.

use super::Problems;
use crate::security::authorization_policy::{Action, AuthorizationPolicy};
use crate::security::peer_authentication::PeerAuthentication;

/// Known `when` keys; entries ending in `[` take a bracketed argument.
const CONDITION_KEYS: [&str; 16] = [
    "request.headers[",
    "source.ip",
    "remote.ip",
    "source.namespace",
    "source.principal",
    "source.serviceAccount",
    "source.trustDomain",
    "request.auth.principal",
    "request.auth.audiences",
    "request.auth.presenter",
    "request.auth.claims[",
    "destination.ip",
    "destination.port",
    "connection.sni",
    "experimental.envoy.filters.",
    "request.experimental.",
];

pub(crate) fn peer_authentication(pa: &PeerAuthentication, p: &mut Problems) {
    let has_selector = pa
        .spec
        .selector
        .as_ref()
        .is_some_and(|s| !s.match_labels.is_empty());
    if !pa.spec.port_level_mtls.is_empty() && !has_selector {
        p.add(
            "spec.portLevelMtls",
            "requires a selector (port-level mTLS only applies to selected workloads)",
        );
    }
    for key in pa.spec.port_level_mtls.keys() {
        let path = format!("spec.portLevelMtls.{key}");
        match key.parse::<u32>() {
            Ok(port) => p.port(&path, port),
            Err(_) => p.add(path, format!("key must be a port number, got {key:?}")),
        }
    }
}

pub(crate) fn authorization_policy(ap: &AuthorizationPolicy, p: &mut Problems) {
    let spec = &ap.spec;
    let action = spec.action.unwrap_or(Action::Allow);
    match (&spec.provider, action) {
        (None, Action::Custom) => p.add("spec.provider", "is required when action is CUSTOM"),
        (Some(provider), Action::Custom) if provider.name.is_empty() => {
            p.add("spec.provider.name", "is required")
        }
        (Some(_), other) if other != Action::Custom => {
            p.add("spec.provider", "is only allowed when action is CUSTOM")
        }
        _ => {}
    }
    if spec.selector.is_some() && (!spec.target_refs.is_empty() || spec.target_ref.is_some()) {
        p.add("spec", "selector and targetRefs cannot both be set");
    }
    for (i, rule) in spec.rules.iter().enumerate() {
        let rp = format!("spec.rules[{i}]");
        for (j, from) in rule.from.iter().enumerate() {
            let sp = format!("{rp}.from[{j}].source");
            let s = &from.source;
            let lists = [
                ("principals", &s.principals),
                ("notPrincipals", &s.not_principals),
                ("requestPrincipals", &s.request_principals),
                ("notRequestPrincipals", &s.not_request_principals),
                ("namespaces", &s.namespaces),
                ("notNamespaces", &s.not_namespaces),
                ("serviceAccounts", &s.service_accounts),
                ("notServiceAccounts", &s.not_service_accounts),
                ("ipBlocks", &s.ip_blocks),
                ("notIpBlocks", &s.not_ip_blocks),
                ("remoteIpBlocks", &s.remote_ip_blocks),
                ("notRemoteIpBlocks", &s.not_remote_ip_blocks),
            ];
            if lists.iter().all(|(_, l)| l.is_empty()) {
                p.add(&sp, "at least one field must be set");
            }
            for (name, list) in lists {
                non_empty_values(&format!("{sp}.{name}"), list, p);
            }
            for (name, list) in [
                ("principals", &s.principals),
                ("notPrincipals", &s.not_principals),
            ] {
                for (k, value) in list.iter().enumerate() {
                    if value.starts_with("spiffe://") {
                        p.add(
                            format!("{sp}.{name}[{k}]"),
                            "must not start with spiffe:// (write <trust-domain>/ns/<namespace>/sa/<account>)",
                        );
                    }
                }
            }
            for (name, list) in [
                ("serviceAccounts", &s.service_accounts),
                ("notServiceAccounts", &s.not_service_accounts),
            ] {
                if list.len() > 16 {
                    p.add(
                        format!("{sp}.{name}"),
                        "at most 16 service accounts are allowed",
                    );
                }
                for (k, value) in list.iter().enumerate() {
                    let parts: Vec<&str> = value.split('/').collect();
                    if parts.len() != 2 || parts.iter().any(|x| x.is_empty() || x.contains('*')) {
                        p.add(
                            format!("{sp}.{name}[{k}]"),
                            format!("must be <namespace>/<service-account> without wildcards, got {value:?}"),
                        );
                    }
                }
            }
            let has_sa = !s.service_accounts.is_empty() || !s.not_service_accounts.is_empty();
            let has_other = !s.principals.is_empty()
                || !s.not_principals.is_empty()
                || !s.namespaces.is_empty()
                || !s.not_namespaces.is_empty();
            if has_sa && has_other {
                p.add(
                    &sp,
                    "serviceAccounts cannot be combined with principals or namespaces",
                );
            }
        }
        for (j, to) in rule.to.iter().enumerate() {
            let op = format!("{rp}.to[{j}].operation");
            let o = &to.operation;
            let lists = [
                ("hosts", &o.hosts),
                ("notHosts", &o.not_hosts),
                ("ports", &o.ports),
                ("notPorts", &o.not_ports),
                ("methods", &o.methods),
                ("notMethods", &o.not_methods),
                ("paths", &o.paths),
                ("notPaths", &o.not_paths),
            ];
            if lists.iter().all(|(_, l)| l.is_empty()) {
                p.add(&op, "at least one field must be set");
            }
            for (name, list) in lists {
                non_empty_values(&format!("{op}.{name}"), list, p);
            }
            for (name, list) in [("ports", &o.ports), ("notPorts", &o.not_ports)] {
                for (k, port) in list.iter().enumerate() {
                    match port.parse::<u32>() {
                        Ok(n) => p.port(&format!("{op}.{name}[{k}]"), n),
                        Err(_) => p.add(
                            format!("{op}.{name}[{k}]"),
                            format!("must be a port number, got {port:?}"),
                        ),
                    }
                }
            }
        }
        for (j, condition) in rule.when.iter().enumerate() {
            let cp = format!("{rp}.when[{j}]");
            if condition.key.is_empty() {
                p.add(format!("{cp}.key"), "is required");
            } else if !CONDITION_KEYS.iter().any(|k| {
                if k.ends_with('[') {
                    condition.key.starts_with(k) && condition.key.ends_with(']')
                } else if k.ends_with('.') {
                    condition.key.starts_with(k)
                } else {
                    condition.key == *k
                }
            }) {
                p.add(
                    format!("{cp}.key"),
                    format!("unknown attribute {:?}", condition.key),
                );
            }
            if condition.values.is_empty() && condition.not_values.is_empty() {
                p.add(&cp, "one of values or notValues is required");
            }
        }
    }
}

fn non_empty_values(path: &str, values: &[String], p: &mut Problems) {
    for (k, value) in values.iter().enumerate() {
        if value.is_empty() {
            p.add(format!("{path}[{k}]"), "must not be empty");
        }
    }
}
