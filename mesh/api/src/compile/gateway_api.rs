//! Gateway API routes into the routing table, the way istiod does it: every match of
//! every rule becomes an Istio HTTP route (matches, destinations, filters as `headers`,
//! `mirrors`, `rewrite`, `redirect`), compiled by the same code as a VirtualService's,
//! and the routes of one host are ordered by the Gateway API's precedence instead of
//! file order. Routes whose parent is a Gateway go to the ingress gateway; routes whose
//! parent is a Service (GAMMA) go to the sidecars calling that Service.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::{CompiledRoute, CompiledService, Listener, ProxyScope, RouteTable};
use crate::config::MeshConfig;
use crate::defaults::DEFAULT_RETRY_ATTEMPTS;
use crate::duration::IstioDuration;
use crate::gateway_api::gateway::{FromNamespaces, GatewayListener, KubeGateway};
use crate::gateway_api::http_route::{
    FilterType, HeaderModifier, HttpRoute, HttpRouteFilter, HttpRouteMatch, HttpRouteRule,
    ParentKind, ParentReference, PathMatchType, PathModifierType, ValueMatchType,
};
use crate::host::qualify;
use crate::networking::virtual_service::{
    self as istio, Destination, HeaderOperations, Headers, HttpDirectResponse, HttpMatchRequest,
    HttpMirrorPolicy, HttpRedirect, HttpRetry, HttpRewrite, HttpRouteDestination,
};
use crate::networking::{Percent, PortSelector};
use crate::string_match::{FullRegex, StringMatch};

/// Retry conditions istiod gives a Gateway API `retry` (its codes are added).
const GATEWAY_API_RETRY_ON: &str = "connect-failure,refused-stream,unavailable,cancelled";

/// Gateway mode: the listeners of every Gateway API Gateway (our ingress gateway serves
/// them all, whatever their class) and the routes attached to them, by host.
pub(super) fn add_gateway_routes(table: &mut RouteTable, config: &MeshConfig) {
    let gateways: Vec<&KubeGateway> = config.kube_gateways().collect();
    for gw in &gateways {
        for listener in &gw.spec.listeners {
            table.listeners.push(Listener {
                gateway: gw.key(),
                port: listener.port,
                protocol: listener.protocol.clone(),
                name: listener.name.clone(),
                hosts: vec![listener.hostname.clone().unwrap_or_else(|| "*".to_owned())],
            });
        }
    }
    let mut by_host: BTreeMap<String, Vec<Candidate<'_>>> = BTreeMap::new();
    for route in config.http_routes() {
        let mut hosts: Vec<String> = Vec::new();
        for parent in &route.spec.parent_refs {
            if parent.parent_kind() != ParentKind::Gateway {
                continue;
            }
            let key = format!("{}/{}", parent.namespace_or(route.namespace()), parent.name);
            let Some(gw) = gateways.iter().find(|g| g.key() == key) else {
                continue;
            };
            for listener in gw
                .spec
                .listeners
                .iter()
                .filter(|l| attaches(parent, l, gw, route))
            {
                for host in route_hosts(&route.spec.hostnames, listener.hostname.as_deref()) {
                    if !hosts.contains(&host) {
                        hosts.push(host);
                    }
                }
            }
        }
        for host in hosts {
            by_host
                .entry(qualify(&host, route.namespace()))
                .or_default()
                .extend(candidates(route));
        }
    }
    for (host, candidates) in by_host {
        let service = table
            .services
            .entry(host.clone())
            .or_insert_with(|| CompiledService::new(host));
        // Istio Gateway-bound VirtualServices for the same host keep their routes first.
        push_sorted(service, candidates);
    }
}

/// Sidecar mode: routes attached to Services (GAMMA). A route in the Service's
/// namespace (producer) applies to every client; one in another namespace (consumer)
/// only to clients in its own namespace, and replaces the producer routes for them.
pub(super) fn add_mesh_routes(table: &mut RouteTable, config: &MeshConfig, scope: &ProxyScope) {
    let mut producers: BTreeMap<String, Vec<Candidate<'_>>> = BTreeMap::new();
    let mut consumers: BTreeMap<String, Vec<Candidate<'_>>> = BTreeMap::new();
    for route in config.http_routes() {
        let mut hosts: Vec<(String, bool)> = Vec::new();
        for parent in &route.spec.parent_refs {
            if parent.parent_kind() != ParentKind::Service {
                continue;
            }
            let service_ns = parent.namespace_or(route.namespace());
            let consumer = service_ns != route.namespace();
            if consumer && route.namespace() != scope.namespace {
                continue;
            }
            let host = qualify(&parent.name, service_ns);
            if !hosts.iter().any(|(h, _)| *h == host) {
                hosts.push((host, consumer));
            }
        }
        for (host, consumer) in hosts {
            let side = if consumer {
                &mut consumers
            } else {
                &mut producers
            };
            side.entry(host).or_default().extend(candidates(route));
        }
    }
    for (host, candidates) in producers {
        consumers.entry(host).or_insert(candidates);
    }
    for (host, candidates) in consumers {
        let service = table
            .services
            .entry(host.clone())
            .or_insert_with(|| CompiledService::with_default_route(&host));
        if !service.virtual_services.is_empty() {
            // A VirtualService already routes this host for sidecars: it wins, as the
            // first VirtualService of a host does.
            continue;
        }
        service.routes.clear();
        push_sorted(service, candidates);
    }
}

/// Does `parent` attach the route to `listener` (section name, port, namespaces)?
pub(crate) fn attaches(
    parent: &ParentReference,
    listener: &GatewayListener,
    gw: &KubeGateway,
    route: &HttpRoute,
) -> bool {
    parent
        .section_name
        .as_ref()
        .is_none_or(|s| *s == listener.name)
        && parent.port.is_none_or(|p| p == listener.port)
        && match listener.from_namespaces() {
            FromNamespaces::Same => gw.namespace() == route.namespace(),
            FromNamespaces::All => true,
            FromNamespaces::Selector => false,
        }
}

/// The hosts a route serves on a listener: the intersection of the route's hostnames and
/// the listener's (none on either side means any).
pub(crate) fn route_hosts(hostnames: &[String], listener: Option<&str>) -> Vec<String> {
    let Some(listener) = listener else {
        return if hostnames.is_empty() {
            vec!["*".to_owned()]
        } else {
            hostnames.to_vec()
        };
    };
    if hostnames.is_empty() {
        return vec![listener.to_owned()];
    }
    hostnames
        .iter()
        .filter_map(|h| intersect(h, listener))
        .collect()
}

/// The more specific of two host patterns when one covers the other.
fn intersect(a: &str, b: &str) -> Option<String> {
    let covers = |pattern: &str, host: &str| match pattern.strip_prefix('*') {
        Some(suffix) => host.ends_with(suffix) && host.len() > suffix.len(),
        None => pattern == host,
    };
    if a == b || covers(b, a) {
        Some(a.to_owned())
    } else if covers(a, b) {
        Some(b.to_owned())
    } else {
        None
    }
}

/// One match of one rule of one route, with what orders it.
struct Candidate<'a> {
    route: &'a HttpRoute,
    rule_index: usize,
    match_index: usize,
    rule: &'a HttpRouteRule,
    matched: HttpRouteMatch,
}

impl Candidate<'_> {
    /// The Gateway API's precedence (§ "HTTPRouteRule"): exact path, then the longest
    /// prefix (regex after prefixes, as istiod ranks them), then method, then the most
    /// header and query matches; then the oldest route, then `namespace/name`, then
    /// rule and match order.
    fn precedence(&self, other: &Self) -> Ordering {
        let rank = |c: &Self| {
            let (kind, value) = c
                .matched
                .path
                .as_ref()
                .map_or((PathMatchType::PathPrefix, "/"), |p| p.effective());
            let kind_rank = match kind {
                PathMatchType::Exact => 3,
                PathMatchType::PathPrefix => 2,
                PathMatchType::RegularExpression => 1,
            };
            (
                kind_rank,
                prefix_of(value).len(),
                c.matched.method.is_some(),
                c.matched.headers.len(),
                c.matched.query_params.len(),
            )
        };
        rank(other)
            .cmp(&rank(self))
            .then_with(|| {
                let created = |c: &Self| c.route.metadata.creation_timestamp.clone();
                // Routes without a timestamp (files) tie, and fall to their names.
                match (created(self), created(other)) {
                    (Some(a), Some(b)) => a.cmp(&b),
                    _ => Ordering::Equal,
                }
            })
            .then_with(|| self.route.key().cmp(&other.route.key()))
            .then_with(|| self.rule_index.cmp(&other.rule_index))
            .then_with(|| self.match_index.cmp(&other.match_index))
    }
}

/// A path prefix as matched: a trailing `/` is ignored, except for `/` itself.
fn prefix_of(value: &str) -> &str {
    match value.trim_end_matches('/') {
        "" => "/",
        trimmed => trimmed,
    }
}

/// Every match of every rule of a route (a rule without matches matches `PathPrefix /`).
fn candidates(route: &HttpRoute) -> Vec<Candidate<'_>> {
    let mut out = Vec::new();
    for (rule_index, rule) in route.spec.rules.iter().enumerate() {
        let matches = if rule.matches.is_empty() {
            vec![HttpRouteMatch::default()]
        } else {
            rule.matches.clone()
        };
        for (match_index, matched) in matches.into_iter().enumerate() {
            out.push(Candidate {
                route,
                rule_index,
                match_index,
                rule,
                matched,
            });
        }
    }
    out
}

fn push_sorted(service: &mut CompiledService, mut candidates: Vec<Candidate<'_>>) {
    candidates.sort_by(Candidate::precedence);
    for c in &candidates {
        let label = format!("HTTPRoute {}", c.route.key());
        if !service.virtual_services.contains(&label) {
            service.virtual_services.push(label);
        }
        service.routes.extend(compile_match(c));
    }
}

/// One match of a rule as compiled routes: usually one, two when a `ReplacePrefixMatch`
/// rewrite needs the exact prefix and the paths below it told apart (the proxy replaces a
/// matched `prefix`, or the whole path for any other match).
fn compile_match(c: &Candidate<'_>) -> Vec<CompiledRoute> {
    let ns = c.route.namespace();
    let istio_route = istio_route(c.route, c.rule_index, c.rule);
    let rewrite =
        filter(&c.rule.filters, FilterType::UrlRewrite).and_then(|f| f.url_rewrite.as_ref());
    let path_modifier = rewrite.and_then(|r| r.path.as_ref());
    let base = base_match(&c.matched);
    let (kind, value) = c
        .matched
        .path
        .as_ref()
        .map_or((PathMatchType::PathPrefix, "/"), |p| p.effective());
    let with_uri = |uri: StringMatch| HttpMatchRequest {
        uri: Some(uri),
        ..base.clone()
    };
    let compiled = |matches: Vec<HttpMatchRequest>, uri: Option<String>| {
        let mut route = istio_route.clone();
        if let Some(uri) = uri
            && let Some(rw) = route.rewrite.as_mut()
        {
            rw.uri = Some(uri);
        }
        CompiledRoute::from_http(&route, matches, ns)
    };
    let prefix = prefix_of(value);
    match (kind, path_modifier.and_then(|m| m.kind)) {
        (PathMatchType::Exact, modifier) => {
            let uri = match modifier {
                Some(PathModifierType::ReplaceFullPath) => {
                    path_modifier.and_then(|m| m.replace_full_path.clone())
                }
                _ => None,
            };
            vec![compiled(vec![with_uri(StringMatch::exact(value))], uri)]
        }
        (PathMatchType::RegularExpression, modifier) => {
            let uri = match modifier {
                Some(PathModifierType::ReplaceFullPath) => {
                    path_modifier.and_then(|m| m.replace_full_path.clone())
                }
                _ => None,
            };
            let Ok(regex) = FullRegex::new(value) else {
                return Vec::new(); // validation rejects it; never route on a broken match
            };
            vec![compiled(
                vec![with_uri(StringMatch {
                    regex: Some(regex),
                    ..StringMatch::default()
                })],
                uri,
            )]
        }
        (PathMatchType::PathPrefix, Some(PathModifierType::ReplaceFullPath)) => {
            // A regex match, not a prefix, so the proxy replaces the whole path.
            let pattern = if prefix == "/" {
                "/.*".to_owned()
            } else {
                format!("{}(/.*)?", regex::escape(prefix))
            };
            let Ok(regex) = FullRegex::new(&pattern) else {
                return Vec::new();
            };
            let uri = path_modifier.and_then(|m| m.replace_full_path.clone());
            vec![compiled(
                vec![with_uri(StringMatch {
                    regex: Some(regex),
                    ..StringMatch::default()
                })],
                uri,
            )]
        }
        (PathMatchType::PathPrefix, Some(PathModifierType::ReplacePrefixMatch)) => {
            let replacement = path_modifier
                .and_then(|m| m.replace_prefix_match.as_deref())
                .unwrap_or("/")
                .trim_end_matches('/');
            let below = format!("{replacement}/");
            if prefix == "/" {
                return vec![compiled(
                    vec![with_uri(StringMatch::prefix("/"))],
                    Some(below),
                )];
            }
            let exact = if replacement.is_empty() {
                "/".to_owned()
            } else {
                replacement.to_owned()
            };
            vec![
                compiled(vec![with_uri(StringMatch::exact(prefix))], Some(exact)),
                compiled(
                    vec![with_uri(StringMatch::prefix(&format!("{prefix}/")))],
                    Some(below),
                ),
            ]
        }
        (PathMatchType::PathPrefix, None) => {
            // Element-wise: `/abc` is the path itself or anything below `/abc/`.
            let matches = if prefix == "/" {
                vec![with_uri(StringMatch::prefix("/"))]
            } else {
                vec![
                    with_uri(StringMatch::exact(prefix)),
                    with_uri(StringMatch::prefix(&format!("{prefix}/"))),
                ]
            };
            vec![compiled(matches, None)]
        }
    }
}

/// Headers (lower-cased; a repeated name counts once, the first), query parameters and
/// method of a match.
fn base_match(m: &HttpRouteMatch) -> HttpMatchRequest {
    let value_match = |kind: Option<ValueMatchType>, value: &str| match kind.unwrap_or_default() {
        ValueMatchType::Exact => Some(StringMatch::exact(value)),
        ValueMatchType::RegularExpression => FullRegex::new(value).ok().map(|r| StringMatch {
            regex: Some(r),
            ..StringMatch::default()
        }),
    };
    let mut out = HttpMatchRequest {
        method: m.method.map(|method| StringMatch::exact(method.as_str())),
        ..HttpMatchRequest::default()
    };
    for h in &m.headers {
        if let Some(pattern) = value_match(h.kind, &h.value) {
            out.headers
                .entry(h.name.to_ascii_lowercase())
                .or_insert(pattern);
        }
    }
    for q in &m.query_params {
        if let Some(pattern) = value_match(q.kind, &q.value) {
            out.query_params.entry(q.name.clone()).or_insert(pattern);
        }
    }
    out
}

fn filter(filters: &[HttpRouteFilter], kind: FilterType) -> Option<&HttpRouteFilter> {
    filters.iter().find(|f| f.kind == Some(kind))
}

fn header_operations(m: Option<&HeaderModifier>) -> Option<HeaderOperations> {
    let m = m?;
    let pairs = |list: &[crate::gateway_api::http_route::HttpHeader]| {
        list.iter()
            .map(|h| (h.name.to_ascii_lowercase(), h.value.clone()))
            .collect()
    };
    Some(HeaderOperations {
        set: pairs(&m.set),
        add: pairs(&m.add),
        remove: m.remove.iter().map(|n| n.to_ascii_lowercase()).collect(),
    })
}

fn headers_of(filters: &[HttpRouteFilter]) -> Option<Headers> {
    let request = header_operations(
        filter(filters, FilterType::RequestHeaderModifier)
            .and_then(|f| f.request_header_modifier.as_ref()),
    );
    let response = header_operations(
        filter(filters, FilterType::ResponseHeaderModifier)
            .and_then(|f| f.response_header_modifier.as_ref()),
    );
    (request.is_some() || response.is_some()).then_some(Headers { request, response })
}

fn destination(
    name: &str,
    namespace: Option<&str>,
    route_ns: &str,
    port: Option<u32>,
) -> Destination {
    Destination {
        host: qualify(name, namespace.unwrap_or(route_ns)),
        subset: None,
        port: port.map(|number| PortSelector { number }),
    }
}

/// The rule as the Istio HTTP route istiod would write for it (without its matches).
fn istio_route(route: &HttpRoute, rule_index: usize, rule: &HttpRouteRule) -> istio::HttpRoute {
    let ns = route.namespace();
    let mut out = istio::HttpRoute {
        name: Some(match &rule.name {
            Some(name) => format!("{}.{name}", route.name()),
            None => format!("{}.{rule_index}", route.name()),
        }),
        headers: headers_of(&rule.filters),
        ..istio::HttpRoute::default()
    };
    if let Some(redirect) =
        filter(&rule.filters, FilterType::RequestRedirect).and_then(|f| f.request_redirect.as_ref())
    {
        // Without a port, a new scheme means its default port (left out of Location);
        // without either, the port the request came in on.
        let port = redirect.port.or(match redirect.scheme.as_deref() {
            Some("https") => Some(443),
            Some(_) => Some(80),
            None => None,
        });
        out.redirect = Some(HttpRedirect {
            uri: redirect
                .path
                .as_ref()
                .and_then(|p| p.replace_full_path.clone()),
            authority: redirect.hostname.clone(),
            port,
            scheme: redirect.scheme.clone(),
            redirect_code: Some(redirect.status_code.unwrap_or(302)),
            ..HttpRedirect::default()
        });
        return out;
    }
    let weights: i64 = rule
        .backend_refs
        .iter()
        .map(|b| b.effective_weight().max(0))
        .sum();
    if weights == 0 {
        // No backend to send to (none listed, or all weighted 0): istiod answers 500.
        out.direct_response = Some(HttpDirectResponse {
            status: 500,
            body: None,
        });
        return out;
    }
    out.route = rule
        .backend_refs
        .iter()
        .map(|b| HttpRouteDestination {
            destination: destination(&b.name, b.namespace.as_deref(), ns, b.port),
            weight: i32::try_from(b.effective_weight()).ok(),
            headers: headers_of(&b.filters),
        })
        .collect();
    out.mirrors = rule
        .filters
        .iter()
        .filter_map(|f| f.request_mirror.as_ref())
        .map(|m| HttpMirrorPolicy {
            destination: destination(
                &m.backend_ref.name,
                m.backend_ref.namespace.as_deref(),
                ns,
                m.backend_ref.port,
            ),
            percentage: Some(Percent {
                value: match (m.percent, m.fraction) {
                    (Some(p), _) => p as f64,
                    (None, Some(f)) => {
                        f.numerator as f64 * 100.0 / f.denominator.unwrap_or(100).max(1) as f64
                    }
                    (None, None) => 100.0,
                },
            }),
        })
        .collect();
    if let Some(rw) =
        filter(&rule.filters, FilterType::UrlRewrite).and_then(|f| f.url_rewrite.as_ref())
    {
        out.rewrite = Some(HttpRewrite {
            authority: rw.hostname.clone(),
            ..HttpRewrite::default()
        });
    }
    let timeouts = rule.timeouts.unwrap_or_default();
    out.timeout = timeouts.request.map(|t| IstioDuration(t.get()));
    let per_try = timeouts
        .backend_request
        .map(|t| t.get())
        .filter(|t| !t.is_zero())
        .map(IstioDuration);
    out.retries = match &rule.retry {
        Some(retry) => {
            let mut on = GATEWAY_API_RETRY_ON.to_owned();
            for code in &retry.codes {
                on.push_str(&format!(",{code}"));
            }
            Some(HttpRetry {
                attempts: retry
                    .attempts
                    .and_then(|a| i32::try_from(a).ok())
                    .unwrap_or(DEFAULT_RETRY_ATTEMPTS as i32),
                per_try_timeout: per_try,
                retry_on: Some(on),
                backoff: retry.backoff.map(|b| IstioDuration(b.get())),
                ..HttpRetry::default()
            })
        }
        // Istio's default retries, each attempt bounded by `backendRequest`.
        None => per_try.map(|t| HttpRetry {
            attempts: DEFAULT_RETRY_ATTEMPTS as i32,
            per_try_timeout: Some(t),
            ..HttpRetry::default()
        }),
    };
    out
}
