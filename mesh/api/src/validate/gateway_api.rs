//! Gateway API checks: what the upstream CRD schema and its CEL rules reject (limits,
//! formats, filter combinations), plus what our mesh cannot execute (a filter or
//! listener protocol we do not serve is an error naming it, never silently ignored).

use std::collections::BTreeSet;

use super::Problems;
use crate::compile::gateway_api::{attaches, route_hosts};
use crate::error::Warning;
use crate::gateway_api::gateway::{FromNamespaces, KubeGateway};
use crate::gateway_api::http_route::{
    BackendObjectReference, FilterType, HeaderModifier, HttpPathModifier, HttpRoute,
    HttpRouteFilter, HttpRouteMatch, HttpRouteRule, ParentKind, PathMatchType, PathModifierType,
    RequestMirror, RequestRedirect, UrlRewrite, ValueMatchType,
};
use crate::host::qualify;
use crate::parse::Loaded;
use crate::resource::Resource;
use crate::string_match::FullRegex;

/// Limits of the upstream schema.
const MAX_PARENT_REFS: usize = 32;
const MAX_HOSTNAMES: usize = 16;
const MAX_RULES: usize = 16;
const MAX_MATCHES: usize = 64;
const MAX_MATCHES_PER_ROUTE: usize = 128;
const MAX_LIST: usize = 16;
const MAX_LISTENERS: usize = 64;
const MAX_WEIGHT: i64 = 1_000_000;

pub(crate) fn gateway(gw: &KubeGateway, p: &mut Problems) {
    let spec = &gw.spec;
    if spec.gateway_class_name.is_empty() {
        p.add("spec.gatewayClassName", "is required (e.g. istio)");
    }
    if spec.listeners.is_empty() {
        p.add("spec.listeners", "at least one listener is required");
    }
    if spec.listeners.len() > MAX_LISTENERS {
        p.add(
            "spec.listeners",
            format!("at most {MAX_LISTENERS} listeners are allowed"),
        );
    }
    let mut names = BTreeSet::new();
    for (i, listener) in spec.listeners.iter().enumerate() {
        let path = format!("spec.listeners[{i}]");
        if listener.name.is_empty() {
            p.add(format!("{path}.name"), "is required");
        } else if !names.insert(listener.name.as_str()) {
            p.add(
                format!("{path}.name"),
                format!("duplicate listener name {:?}", listener.name),
            );
        }
        p.port(&format!("{path}.port"), listener.port);
        match listener.protocol.as_str() {
            "HTTP" => {}
            "" => p.add(format!("{path}.protocol"), "is required"),
            other => p.add(
                format!("{path}.protocol"),
                format!(
                    "{other} listeners are not supported: our ingress gateway serves HTTP only"
                ),
            ),
        }
        if let Some(host) = &listener.hostname {
            hostname(p, &format!("{path}.hostname"), host, true);
        }
        if let Some(allowed) = &listener.allowed_routes {
            if listener.from_namespaces() == FromNamespaces::Selector {
                p.add(
                    format!("{path}.allowedRoutes.namespaces.from"),
                    "Selector is not supported (namespace labels are not known to the mesh): use Same or All",
                );
            }
            for (j, kind) in allowed.kinds.iter().enumerate() {
                let group = kind
                    .group
                    .as_deref()
                    .unwrap_or(crate::gateway_api::GATEWAY_API_GROUP);
                if kind.kind != "HTTPRoute" || group != crate::gateway_api::GATEWAY_API_GROUP {
                    p.add(
                        format!("{path}.allowedRoutes.kinds[{j}]"),
                        format!(
                            "route kind {:?} is not supported: only HTTPRoute",
                            kind.kind
                        ),
                    );
                }
            }
        }
    }
}

/// Routes that load but serve nothing, as Istio's route status would say
/// (`Accepted: False`): a parent Gateway that does not exist or whose listeners do not
/// take the route, and a mesh route for a host a VirtualService already routes (sidecars
/// use the VirtualService). Warnings, since a Gateway may be applied after its routes.
pub fn attachment_warnings(resources: &[Loaded]) -> Vec<Warning> {
    let gateways: Vec<_> = resources
        .iter()
        .filter_map(|l| match &l.resource {
            Resource::KubeGateway(gw) => Some(gw),
            _ => None,
        })
        .collect();
    let mut mesh_hosts: Vec<(String, String)> = Vec::new();
    for loaded in resources {
        if let Resource::VirtualService(vs) = &loaded.resource
            && (vs.spec.gateways.is_empty() || vs.spec.gateways.iter().any(|g| g == "mesh"))
        {
            for host in &vs.spec.hosts {
                mesh_hosts.push((qualify(host, vs.namespace()), vs.key()));
            }
        }
    }
    let mut warnings = Vec::new();
    for loaded in resources {
        let Resource::HttpRoute(route) = &loaded.resource else {
            continue;
        };
        let mut warn = |i: usize, message: String| {
            warnings.push(Warning::in_resource(
                &loaded.origin,
                Some(loaded.resource.display_name()),
                format!("spec.parentRefs[{i}]"),
                message,
            ));
        };
        for (i, parent) in route.spec.parent_refs.iter().enumerate() {
            let ns = parent.namespace_or(route.namespace());
            match parent.parent_kind() {
                ParentKind::Gateway => {
                    let key = format!("{ns}/{}", parent.name);
                    match gateways.iter().find(|g| g.key() == key) {
                        None => warn(
                            i,
                            format!(
                                "Gateway {key} (gateway.networking.k8s.io) is not defined: the route serves nothing through it until it is"
                            ),
                        ),
                        Some(gw) => {
                            let taken = gw.spec.listeners.iter().any(|l| {
                                attaches(parent, l, gw, route)
                                    && !route_hosts(&route.spec.hostnames, l.hostname.as_deref())
                                        .is_empty()
                            });
                            if !taken {
                                warn(
                                    i,
                                    format!(
                                        "no listener of Gateway {key} takes this route (sectionName, port, allowedRoutes.namespaces or hostnames do not fit): it serves nothing there"
                                    ),
                                );
                            }
                        }
                    }
                }
                ParentKind::Service => {
                    let host = qualify(&parent.name, ns);
                    if let Some((_, vs)) = mesh_hosts.iter().find(|(h, _)| *h == host) {
                        warn(
                            i,
                            format!(
                                "host {host} is already routed by VirtualService {vs}; sidecars use it and ignore this route"
                            ),
                        );
                    }
                }
                ParentKind::Other => {}
            }
        }
    }
    warnings
}

pub(crate) fn http_route(route: &HttpRoute, p: &mut Problems) {
    let spec = &route.spec;
    if spec.parent_refs.is_empty() {
        p.add(
            "spec.parentRefs",
            "at least one parent is required (a Gateway, or a Service for mesh routing)",
        );
    }
    limit(
        p,
        "spec.parentRefs",
        spec.parent_refs.len(),
        MAX_PARENT_REFS,
    );
    for (i, parent) in spec.parent_refs.iter().enumerate() {
        let path = format!("spec.parentRefs[{i}]");
        if parent.name.is_empty() {
            p.add(format!("{path}.name"), "is required");
        }
        if let Some(port) = parent.port {
            p.port(&format!("{path}.port"), port);
        }
        if parent.parent_kind() == ParentKind::Other {
            p.add(
                path,
                format!(
                    "parent group {:?} kind {:?} is not supported: use a Gateway (group gateway.networking.k8s.io) or a Service (group \"\")",
                    parent.group.as_deref().unwrap_or(crate::gateway_api::GATEWAY_API_GROUP),
                    parent.kind.as_deref().unwrap_or("Gateway")
                ),
            );
        }
    }
    limit(p, "spec.hostnames", spec.hostnames.len(), MAX_HOSTNAMES);
    for (i, host) in spec.hostnames.iter().enumerate() {
        hostname(p, &format!("spec.hostnames[{i}]"), host, true);
    }
    limit(p, "spec.rules", spec.rules.len(), MAX_RULES);
    let total: usize = spec.rules.iter().map(|r| r.matches.len()).sum();
    if total > MAX_MATCHES_PER_ROUTE {
        p.add(
            "spec.rules",
            format!("at most {MAX_MATCHES_PER_ROUTE} matches in all rules together, got {total}"),
        );
    }
    let mut names = BTreeSet::new();
    for (i, rule) in spec.rules.iter().enumerate() {
        let path = format!("spec.rules[{i}]");
        if let Some(name) = &rule.name
            && !names.insert(name.as_str())
        {
            p.add(
                format!("{path}.name"),
                format!("duplicate rule name {name:?}"),
            );
        }
        check_rule(&path, rule, p);
    }
}

fn check_rule(path: &str, rule: &HttpRouteRule, p: &mut Problems) {
    limit(
        p,
        &format!("{path}.matches"),
        rule.matches.len(),
        MAX_MATCHES,
    );
    for (j, m) in rule.matches.iter().enumerate() {
        check_match(&format!("{path}.matches[{j}]"), m, p);
    }
    check_filters(&format!("{path}.filters"), &rule.filters, false, p);
    let has = |kind: FilterType| rule.filters.iter().any(|f| f.kind == Some(kind));
    if has(FilterType::RequestRedirect) && !rule.backend_refs.is_empty() {
        p.add(
            format!("{path}.backendRefs"),
            "must be empty with a RequestRedirect filter (the redirect is the answer)",
        );
    }
    let prefix_rewrite = rule.filters.iter().any(|f| {
        f.url_rewrite
            .as_ref()
            .and_then(|u| u.path.as_ref())
            .is_some_and(|m| m.kind == Some(PathModifierType::ReplacePrefixMatch))
    });
    if prefix_rewrite {
        let all_prefix = !rule.matches.is_empty()
            && rule.matches.iter().all(|m| {
                m.path
                    .as_ref()
                    .is_none_or(|path| path.effective().0 == PathMatchType::PathPrefix)
            });
        if !all_prefix {
            p.add(
                format!("{path}.filters"),
                "URLRewrite with ReplacePrefixMatch needs every match of the rule to be a PathPrefix path match",
            );
        }
    }
    limit(
        p,
        &format!("{path}.backendRefs"),
        rule.backend_refs.len(),
        MAX_LIST,
    );
    for (j, backend) in rule.backend_refs.iter().enumerate() {
        let bpath = format!("{path}.backendRefs[{j}]");
        backend_reference(&bpath, &backend.reference(), p);
        let weight = backend.effective_weight();
        if !(0..=MAX_WEIGHT).contains(&weight) {
            p.add(
                format!("{bpath}.weight"),
                format!("must be between 0 and {MAX_WEIGHT}, got {weight}"),
            );
        }
        check_filters(&format!("{bpath}.filters"), &backend.filters, true, p);
    }
    if let Some(t) = rule.timeouts
        && let (Some(request), Some(backend)) = (t.request, t.backend_request)
        && !request.get().is_zero()
        && (backend.get().is_zero() || backend.get() > request.get())
    {
        p.add(
            format!("{path}.timeouts.backendRequest"),
            format!("must not be longer than timeouts.request ({request})"),
        );
    }
    if let Some(retry) = &rule.retry {
        for (j, code) in retry.codes.iter().enumerate() {
            if !(400..=599).contains(code) {
                p.add(
                    format!("{path}.retry.codes[{j}]"),
                    format!("must be an HTTP status between 400 and 599, got {code}"),
                );
            }
        }
        if let Some(attempts) = retry.attempts
            && attempts < 0
        {
            p.add(format!("{path}.retry.attempts"), "must not be negative");
        }
    }
}

fn check_match(path: &str, m: &HttpRouteMatch, p: &mut Problems) {
    if let Some(pm) = &m.path {
        let (kind, value) = pm.effective();
        let vpath = format!("{path}.path.value");
        if value.len() > 1024 {
            p.add(&vpath, "must be at most 1024 characters");
        }
        match kind {
            PathMatchType::Exact | PathMatchType::PathPrefix => absolute_path(p, &vpath, value),
            PathMatchType::RegularExpression => regex(p, &vpath, value),
        }
    }
    limit(p, &format!("{path}.headers"), m.headers.len(), MAX_LIST);
    for (k, h) in m.headers.iter().enumerate() {
        let hpath = format!("{path}.headers[{k}]");
        header_name(p, &format!("{hpath}.name"), &h.name);
        match_value(p, &hpath, h.kind, &h.value, 4096);
    }
    limit(
        p,
        &format!("{path}.queryParams"),
        m.query_params.len(),
        MAX_LIST,
    );
    for (k, q) in m.query_params.iter().enumerate() {
        let qpath = format!("{path}.queryParams[{k}]");
        if q.name.is_empty() {
            p.add(format!("{qpath}.name"), "is required");
        }
        match_value(p, &qpath, q.kind, &q.value, 1024);
    }
}

fn match_value(
    p: &mut Problems,
    path: &str,
    kind: Option<ValueMatchType>,
    value: &str,
    max: usize,
) {
    let vpath = format!("{path}.value");
    if value.is_empty() {
        p.add(&vpath, "is required");
    } else if value.len() > max {
        p.add(&vpath, format!("must be at most {max} characters"));
    }
    if kind == Some(ValueMatchType::RegularExpression) {
        regex(p, &vpath, value);
    }
}

/// Filters of a rule, or of one backend (`per_backend`: only header modifiers, which is
/// all our proxy can apply to one destination).
fn check_filters(path: &str, filters: &[HttpRouteFilter], per_backend: bool, p: &mut Problems) {
    limit(p, path, filters.len(), MAX_LIST);
    let mut seen = BTreeSet::new();
    for (k, f) in filters.iter().enumerate() {
        let fpath = format!("{path}[{k}]");
        let Some(kind) = f.kind else {
            p.add(format!("{fpath}.type"), "is required");
            continue;
        };
        let set: [(FilterType, bool); 8] = [
            (
                FilterType::RequestHeaderModifier,
                f.request_header_modifier.is_some(),
            ),
            (
                FilterType::ResponseHeaderModifier,
                f.response_header_modifier.is_some(),
            ),
            (FilterType::RequestMirror, f.request_mirror.is_some()),
            (FilterType::RequestRedirect, f.request_redirect.is_some()),
            (FilterType::UrlRewrite, f.url_rewrite.is_some()),
            (FilterType::Cors, f.cors.is_some()),
            (FilterType::ExtensionRef, f.extension_ref.is_some()),
            (FilterType::ExternalAuth, f.external_auth.is_some()),
        ];
        for (other, present) in set {
            if present && other != kind {
                p.add(
                    format!("{fpath}.{}", other.field()),
                    format!("must not be set for a filter of type {}", kind.as_str()),
                );
            }
            if !present && other == kind {
                p.add(
                    format!("{fpath}.{}", kind.field()),
                    format!("is required for a filter of type {}", kind.as_str()),
                );
            }
        }
        if kind != FilterType::RequestMirror && !seen.insert(kind.as_str()) {
            p.add(
                format!("{fpath}.type"),
                format!("{} may appear only once in a filter list", kind.as_str()),
            );
        }
        let supported = match kind {
            FilterType::RequestHeaderModifier | FilterType::ResponseHeaderModifier => true,
            FilterType::RequestMirror | FilterType::RequestRedirect | FilterType::UrlRewrite => {
                !per_backend
            }
            FilterType::Cors | FilterType::ExtensionRef | FilterType::ExternalAuth => false,
        };
        if !supported {
            let where_ = if per_backend {
                " on a backendRef (only header modifiers are)"
            } else {
                ""
            };
            p.add(
                format!("{fpath}.type"),
                format!(
                    "{} filters are not supported by our mesh{where_}",
                    kind.as_str()
                ),
            );
            continue;
        }
        let field = format!("{fpath}.{}", kind.field());
        if let Some(m) = &f.request_header_modifier {
            header_modifier(&field, m, p);
        }
        if let Some(m) = &f.response_header_modifier {
            header_modifier(&field, m, p);
        }
        if let Some(m) = &f.request_mirror {
            mirror(&field, m, p);
        }
        if let Some(r) = &f.request_redirect {
            redirect(&field, r, p);
        }
        if let Some(r) = &f.url_rewrite {
            url_rewrite(&field, r, p);
        }
    }
    if seen.contains(FilterType::UrlRewrite.as_str())
        && seen.contains(FilterType::RequestRedirect.as_str())
    {
        p.add(
            path,
            "URLRewrite and RequestRedirect cannot both be used in one rule",
        );
    }
}

fn header_modifier(path: &str, m: &HeaderModifier, p: &mut Problems) {
    let mut names = BTreeSet::new();
    let lists = [("set", &m.set), ("add", &m.add)];
    for (list, headers) in lists {
        limit(p, &format!("{path}.{list}"), headers.len(), MAX_LIST);
        for (i, h) in headers.iter().enumerate() {
            let hpath = format!("{path}.{list}[{i}].name");
            header_name(p, &hpath, &h.name);
            if !names.insert(h.name.to_ascii_lowercase()) {
                p.add(
                    hpath,
                    format!(
                        "header {:?} has more than one action (set, add, remove)",
                        h.name
                    ),
                );
            }
        }
    }
    limit(p, &format!("{path}.remove"), m.remove.len(), MAX_LIST);
    for (i, name) in m.remove.iter().enumerate() {
        let hpath = format!("{path}.remove[{i}]");
        header_name(p, &hpath, name);
        if !names.insert(name.to_ascii_lowercase()) {
            p.add(
                hpath,
                format!("header {name:?} has more than one action (set, add, remove)"),
            );
        }
    }
    if m.set.is_empty() && m.add.is_empty() && m.remove.is_empty() {
        p.add(path, "at least one of set, add or remove is required");
    }
}

fn mirror(path: &str, m: &RequestMirror, p: &mut Problems) {
    backend_reference(&format!("{path}.backendRef"), &m.backend_ref, p);
    if m.percent.is_some() && m.fraction.is_some() {
        p.add(path, "percent and fraction cannot both be set");
    }
    if let Some(percent) = m.percent
        && !(0..=100).contains(&percent)
    {
        p.add(
            format!("{path}.percent"),
            format!("must be between 0 and 100, got {percent}"),
        );
    }
    if let Some(f) = m.fraction {
        let denominator = f.denominator.unwrap_or(100);
        if denominator < 1 {
            p.add(format!("{path}.fraction.denominator"), "must be at least 1");
        }
        if f.numerator < 0 || f.numerator > denominator {
            p.add(
                format!("{path}.fraction.numerator"),
                format!(
                    "must be between 0 and the denominator ({denominator}), got {}",
                    f.numerator
                ),
            );
        }
    }
}

fn redirect(path: &str, r: &RequestRedirect, p: &mut Problems) {
    if let Some(scheme) = &r.scheme
        && scheme != "http"
        && scheme != "https"
    {
        p.add(
            format!("{path}.scheme"),
            format!("must be http or https, got {scheme:?}"),
        );
    }
    if let Some(host) = &r.hostname {
        hostname(p, &format!("{path}.hostname"), host, false);
    }
    if let Some(port) = r.port {
        p.port(&format!("{path}.port"), port);
    }
    if let Some(code) = r.status_code
        && ![301, 302, 303, 307, 308].contains(&code)
    {
        p.add(
            format!("{path}.statusCode"),
            format!("must be one of 301, 302, 303, 307, 308, got {code}"),
        );
    }
    if let Some(modifier) = &r.path {
        path_modifier(&format!("{path}.path"), modifier, p);
        if modifier.kind == Some(PathModifierType::ReplacePrefixMatch) {
            p.add(
                format!("{path}.path.type"),
                "ReplacePrefixMatch is not supported in a RequestRedirect by our proxy: use ReplaceFullPath",
            );
        }
    }
}

fn url_rewrite(path: &str, r: &UrlRewrite, p: &mut Problems) {
    if let Some(host) = &r.hostname {
        hostname(p, &format!("{path}.hostname"), host, false);
    }
    if let Some(modifier) = &r.path {
        path_modifier(&format!("{path}.path"), modifier, p);
    }
    if r.hostname.is_none() && r.path.is_none() {
        p.add(path, "at least one of hostname or path is required");
    }
}

fn path_modifier(path: &str, m: &HttpPathModifier, p: &mut Problems) {
    let (wanted, value, other, other_set) = match m.kind {
        None => {
            p.add(
                format!("{path}.type"),
                "is required (ReplaceFullPath or ReplacePrefixMatch)",
            );
            return;
        }
        Some(PathModifierType::ReplaceFullPath) => (
            "replaceFullPath",
            &m.replace_full_path,
            "replacePrefixMatch",
            m.replace_prefix_match.is_some(),
        ),
        Some(PathModifierType::ReplacePrefixMatch) => (
            "replacePrefixMatch",
            &m.replace_prefix_match,
            "replaceFullPath",
            m.replace_full_path.is_some(),
        ),
    };
    match value {
        None => p.add(format!("{path}.{wanted}"), "is required for this type"),
        Some(v) => absolute_path(p, &format!("{path}.{wanted}"), v),
    }
    if other_set {
        p.add(format!("{path}.{other}"), "must not be set for this type");
    }
}

fn backend_reference(path: &str, r: &BackendObjectReference, p: &mut Problems) {
    if r.name.is_empty() {
        p.add(format!("{path}.name"), "is required");
    }
    if !r.is_service() {
        p.add(
            path,
            format!(
                "backend group {:?} kind {:?} is not supported: only Services (group \"\", kind Service)",
                r.group.as_deref().unwrap_or(""),
                r.kind.as_deref().unwrap_or("Service")
            ),
        );
        return;
    }
    match r.port {
        None => p.add(
            format!("{path}.port"),
            "is required for a Service backend (the Service port, e.g. 9080)",
        ),
        Some(port) => p.port(&format!("{path}.port"), port),
    }
}

fn limit(p: &mut Problems, path: &str, len: usize, max: usize) {
    if len > max {
        p.add(
            path,
            format!("at most {max} entries are allowed, got {len}"),
        );
    }
}

fn absolute_path(p: &mut Problems, path: &str, value: &str) {
    if !value.starts_with('/') {
        p.add(
            path,
            format!("must be an absolute path starting with /, got {value:?}"),
        );
    } else if value.contains("//") {
        p.add(path, format!("must not contain //, got {value:?}"));
    }
}

fn regex(p: &mut Problems, path: &str, value: &str) {
    if let Err(message) = FullRegex::checked(value) {
        p.add(path, message);
    }
}

fn header_name(p: &mut Problems, path: &str, name: &str) {
    if name.is_empty() {
        p.add(path, "is required");
    } else if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
        p.add(path, format!("{name:?} is not a valid header name"));
    }
}

/// A DNS name (RFC 1123), lowercase; `wildcard` allows a leading `*.`. No IPs, no ports.
fn hostname(p: &mut Problems, path: &str, host: &str, wildcard: bool) {
    let name = match host.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => host,
    };
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.parse::<std::net::IpAddr>().is_ok() {
        p.add(
            path,
            format!("must be a host name, not an IP address ({host:?})"),
        );
    } else if host.len() > 253 || !name.split('.').all(label_ok) {
        let hint = if wildcard {
            " (a leading *. is allowed)"
        } else {
            ""
        };
        p.add(
            path,
            format!("{host:?} is not a valid host name: lowercase letters, digits, - and . only{hint}, no port"),
        );
    }
}
