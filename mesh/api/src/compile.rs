//! Compiles a [`MeshConfig`] into the immutable routing table one proxy uses.
//!
//! The table is plain data with all defaults applied and all hosts qualified, so the
//! proxy can hold it in an `Arc`, swap it atomically on a config push, and show it in a
//! config dump. It is serde-serialisable both ways (the control plane ships it as JSON).

pub(crate) mod gateway_api;
pub mod rate_limit;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::MeshConfig;
use crate::defaults::{
    EffectiveFault, EffectiveMirror, EffectivePolicy, RetryPolicy, effective_mirrors,
    effective_timeout, merge_subset_policy,
};
use crate::host::{authority_to_host, host_matches, qualify};
use crate::matching::{RequestInfo, matches_any};
use crate::networking::destination_rule::{DestinationRule, TrafficPolicy};
use crate::networking::service_entry::{Resolution, ServicePort, WorkloadEntry};
use crate::networking::virtual_service::{
    CorsPolicy, Delegate, Destination, Headers, HttpDirectResponse, HttpMatchRequest, HttpRedirect,
    HttpRewrite, HttpRoute, VirtualService,
};

/// Reserved gateway name for sidecars.
pub const MESH_GATEWAY: &str = "mesh";

/// Which proxy the table is for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProxyScope {
    /// The proxy's namespace (short names in requests are qualified with it).
    pub namespace: String,
    /// The workload's labels (`app`, `version`, `istio: ingressgateway`, ...).
    pub labels: BTreeMap<String, String>,
    /// Gateway mode: routes come from VirtualServices bound to Gateways selecting `labels`.
    pub gateway: bool,
}

impl ProxyScope {
    /// A sidecar in `namespace` with `labels`.
    pub fn sidecar(namespace: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            namespace: namespace.to_owned(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            gateway: false,
        }
    }

    /// A gateway proxy in `namespace` with `labels`.
    pub fn gateway(namespace: &str, labels: &[(&str, &str)]) -> Self {
        Self {
            gateway: true,
            ..Self::sidecar(namespace, labels)
        }
    }
}

/// The routing table of one proxy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RouteTable {
    /// Namespace used to qualify short request authorities.
    pub namespace: String,
    /// By qualified host (or wildcard pattern such as `*`).
    pub services: BTreeMap<String, CompiledService>,
    /// Gateway mode: the listeners of the selected Gateways.
    pub listeners: Vec<Listener>,
    /// Sidecar mode: the local rate limits of the inbound listener (from EnvoyFilters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local_rate_limits: Vec<rate_limit::LocalRateLimit>,
}

/// A gateway listener.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listener {
    /// `namespace/name` of the Gateway.
    pub gateway: String,
    /// Port number.
    pub port: u32,
    /// `HTTP`, `HTTPS`, ...
    pub protocol: String,
    /// Port name.
    pub name: String,
    /// Hosts exposed.
    pub hosts: Vec<String>,
}

/// Everything the proxy needs for one destination host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledService {
    /// Qualified host or wildcard pattern.
    pub host: String,
    /// `namespace/name` of the VirtualService(s) the routes come from; empty = default route.
    pub virtual_services: Vec<String>,
    /// HTTP routes in order (first match wins). Never empty for a host without a
    /// VirtualService: it gets [`CompiledRoute::default_to`].
    pub routes: Vec<CompiledRoute>,
    /// `namespace/name` of the DestinationRule applied, if any.
    pub destination_rule: Option<String>,
    /// Policy for traffic to the host without a subset.
    pub policy: EffectivePolicy,
    /// Port-level policies (no inheritance from `policy`).
    pub port_policies: BTreeMap<u32, EffectivePolicy>,
    /// Subsets by name.
    pub subsets: BTreeMap<String, CompiledSubset>,
    /// For a host declared by a ServiceEntry: how to reach it (the registry has no
    /// endpoints for hosts outside the mesh).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external: Option<ExternalService>,
}

/// A ServiceEntry's reachability data, as the proxy needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExternalService {
    /// `DNS`, `STATIC`, `NONE`.
    pub resolution: Resolution,
    /// Declared ports.
    pub ports: Vec<ServicePort>,
    /// Static endpoints (addresses, per-port-name ports).
    pub endpoints: Vec<WorkloadEntry>,
}

/// A subset: endpoint labels and its effective policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledSubset {
    /// Endpoints must carry all of these labels.
    pub labels: BTreeMap<String, String>,
    /// Rule policy with the subset's fields laid over it.
    pub policy: EffectivePolicy,
    /// Port-level policies.
    pub port_policies: BTreeMap<u32, EffectivePolicy>,
}

/// One HTTP route with defaults applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompiledRoute {
    /// Route name (for `%ROUTE_NAME%`).
    pub name: Option<String>,
    /// Alternatives (ORed); empty matches everything.
    pub matches: Vec<HttpMatchRequest>,
    /// What to do.
    pub action: RouteAction,
    /// Whole-request timeout (`None` = none).
    pub timeout: Option<Duration>,
    /// Effective retry policy.
    pub retry: RetryPolicy,
    /// Effective fault (applied before timeout and retries start).
    pub fault: Option<EffectiveFault>,
    /// Mirror targets (hosts qualified).
    pub mirrors: Vec<EffectiveMirror>,
    /// Rewrite before forwarding.
    pub rewrite: Option<HttpRewrite>,
    /// Header manipulation for the whole route.
    pub headers: Option<Headers>,
    /// CORS.
    pub cors: Option<CorsPolicy>,
    /// For routes added by a fault lease: when the lease ends, in milliseconds since the
    /// Unix epoch. Proxies skip the route from then on, so a fault cannot outlive its
    /// lease even if the control plane that pushed it is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at_ms: Option<u64>,
}

/// What a route does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RouteAction {
    /// Forward to one of the weighted destinations.
    Forward(WeightedDestinations),
    /// Answer with a redirect.
    Redirect(HttpRedirect),
    /// Answer with a fixed response.
    DirectResponse(HttpDirectResponse),
    /// Delegated (not interpreted by our proxy; answers 404 like a missing route).
    Delegate(Delegate),
}

/// Destinations with normalised relative weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedDestinations {
    /// Destinations in order.
    pub destinations: Vec<WeightedDestination>,
    /// Sum of weights (> 0).
    pub total_weight: u32,
}

/// One destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightedDestination {
    /// Qualified host.
    pub host: String,
    /// Subset name.
    pub subset: Option<String>,
    /// Port, when given.
    pub port: Option<u32>,
    /// Relative weight.
    pub weight: u32,
    /// Per-destination header manipulation.
    pub headers: Option<Headers>,
}

impl WeightedDestinations {
    /// Normalises weights: a single destination always gets everything (whatever its
    /// weight says); several keep their relative weights, absent counting as 0.
    pub fn new(destinations: Vec<WeightedDestination>) -> Self {
        let mut destinations = destinations;
        if let [only] = destinations.as_mut_slice() {
            only.weight = 100;
        }
        // Saturating: validation caps the total, but a table built by hand must not panic.
        let total_weight = destinations
            .iter()
            .fold(0u32, |total, d| total.saturating_add(d.weight));
        Self {
            destinations,
            total_weight,
        }
    }

    /// Picks a destination for a random `roll` (any u64; taken modulo the total weight).
    pub fn pick(&self, roll: u64) -> Option<&WeightedDestination> {
        if self.total_weight == 0 {
            return None;
        }
        let mut point = roll % u64::from(self.total_weight);
        for destination in &self.destinations {
            let weight = u64::from(destination.weight);
            if point < weight {
                return Some(destination);
            }
            point -= weight;
        }
        None
    }

    /// Share of traffic of destination `index`, in percent.
    pub fn percent(&self, index: usize) -> f64 {
        match self.destinations.get(index) {
            Some(d) if self.total_weight > 0 => {
                f64::from(d.weight) * 100.0 / f64::from(self.total_weight)
            }
            _ => 0.0,
        }
    }
}

impl CompiledRoute {
    /// The route a host gets when no VirtualService exists: forward to the host itself with
    /// Istio's default retries and no timeout.
    pub fn default_to(host: &str) -> Self {
        Self {
            name: Some("default".to_owned()),
            matches: Vec::new(),
            action: RouteAction::Forward(WeightedDestinations::new(vec![WeightedDestination {
                host: host.to_owned(),
                subset: None,
                port: None,
                weight: 100,
                headers: None,
            }])),
            timeout: None,
            retry: RetryPolicy::istio_default(),
            fault: None,
            mirrors: Vec::new(),
            rewrite: None,
            headers: None,
            cors: None,
            expires_at_ms: None,
        }
    }

    fn from_http(route: &HttpRoute, matches: Vec<HttpMatchRequest>, namespace: &str) -> Self {
        let action = if let Some(redirect) = &route.redirect {
            RouteAction::Redirect(redirect.clone())
        } else if let Some(direct) = &route.direct_response {
            RouteAction::DirectResponse(direct.clone())
        } else if let Some(delegate) = &route.delegate {
            RouteAction::Delegate(delegate.clone())
        } else {
            RouteAction::Forward(WeightedDestinations::new(
                route
                    .route
                    .iter()
                    .map(|d| WeightedDestination {
                        host: qualify(&d.destination.host, namespace),
                        subset: d.destination.subset.clone(),
                        port: d.destination.port.map(|p| p.number),
                        weight: d.weight.and_then(|w| u32::try_from(w).ok()).unwrap_or(0),
                        headers: d.headers.clone(),
                    })
                    .collect(),
            ))
        };
        let qualify_destination = |d: &Destination| Destination {
            host: qualify(&d.host, namespace),
            ..d.clone()
        };
        Self {
            name: route.name.clone(),
            matches,
            action,
            timeout: effective_timeout(route),
            retry: RetryPolicy::effective(route),
            fault: EffectiveFault::effective(route.fault.as_ref()),
            mirrors: effective_mirrors(route)
                .into_iter()
                .map(|m| EffectiveMirror {
                    destination: qualify_destination(&m.destination),
                    ..m
                })
                .collect(),
            rewrite: route.rewrite.clone(),
            headers: route.headers.clone(),
            cors: route.cors_policy.clone(),
            expires_at_ms: None,
        }
    }
}

impl CompiledService {
    fn new(host: String) -> Self {
        Self {
            host,
            virtual_services: Vec::new(),
            routes: Vec::new(),
            destination_rule: None,
            policy: EffectivePolicy::default(),
            port_policies: BTreeMap::new(),
            subsets: BTreeMap::new(),
            external: None,
        }
    }

    /// A host with no VirtualService: everything goes to the host itself with Istio's
    /// defaults.
    pub fn with_default_route(host: &str) -> Self {
        let mut service = Self::new(host.to_owned());
        service.routes.push(CompiledRoute::default_to(host));
        service
    }

    /// First route accepting the request (`None` = no route: 404 `NR`).
    pub fn select_route(&self, req: &RequestInfo<'_>) -> Option<&CompiledRoute> {
        select_route(self, req)
    }

    /// Effective policy for traffic to `subset` on `port`. A port-level setting wins
    /// (without inheritance); an unknown subset falls back to the host policy.
    pub fn policy_for(&self, subset: Option<&str>, port: Option<u32>) -> &EffectivePolicy {
        let (policy, ports) = match subset.and_then(|s| self.subsets.get(s)) {
            Some(s) => (&s.policy, &s.port_policies),
            None => (&self.policy, &self.port_policies),
        };
        port.and_then(|p| ports.get(&p)).unwrap_or(policy)
    }
}

/// First route of a compiled service that accepts the request.
pub fn select_route<'s>(
    service: &'s CompiledService,
    req: &RequestInfo<'_>,
) -> Option<&'s CompiledRoute> {
    let now = now_ms();
    service
        .routes
        .iter()
        .find(|r| r.is_live(now) && matches_any(&r.matches, req))
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl CompiledRoute {
    /// Whether the route is in force at `now_ms` (routes without a lease always are).
    pub fn is_live(&self, now_ms: u64) -> bool {
        self.expires_at_ms.is_none_or(|t| now_ms < t)
    }
}

impl RouteTable {
    /// Service for a request authority (`reviews:9080`, FQDN, ...): exact host first, then
    /// the most specific wildcard (`*.example.com` before `*`). `None` = not in the
    /// registry (the proxy passes it through with [`CompiledRoute::default_to`]).
    pub fn lookup(&self, authority: &str) -> Option<&CompiledService> {
        let host = authority_to_host(authority, &self.namespace);
        if let Some(service) = self.services.get(&host) {
            return Some(service);
        }
        self.services
            .iter()
            .filter(|(pattern, _)| pattern.starts_with('*') && host_matches(pattern, &host))
            .max_by_key(|(pattern, _)| pattern.len())
            .map(|(_, service)| service)
    }

    /// Destination policies for a qualified host (a route destination's `host`).
    pub fn destination(&self, host: &str) -> Option<&CompiledService> {
        self.services.get(host)
    }
}

/// Is a resource with `export_to` in `owner_ns` visible from `namespace`?
fn exported(export_to: &[String], owner_ns: &str, namespace: &str) -> bool {
    export_to.is_empty()
        || export_to
            .iter()
            .any(|e| e == "*" || (e == "." && owner_ns == namespace) || e == namespace)
}

/// `ns/name` for a gateway reference written in a VirtualService in `vs_ns`.
pub(crate) fn gateway_ref(reference: &str, vs_ns: &str) -> String {
    if reference == MESH_GATEWAY || reference.contains('/') {
        reference.to_owned()
    } else {
        format!("{vs_ns}/{reference}")
    }
}

/// Compiles the configuration for one proxy.
pub fn compile(config: &MeshConfig, scope: &ProxyScope) -> RouteTable {
    let mut table = RouteTable {
        namespace: scope.namespace.clone(),
        ..RouteTable::default()
    };
    // The "gateways" this proxy is: `mesh` for sidecars, selected Gateways otherwise.
    let mut bound: Vec<String> = Vec::new();
    if scope.gateway {
        for gw in config.gateways() {
            let selected = gw
                .spec
                .selector
                .iter()
                .all(|(k, v)| scope.labels.get(k) == Some(v));
            if !selected {
                continue;
            }
            bound.push(gw.key());
            for server in &gw.spec.servers {
                if let Some(port) = &server.port {
                    table.listeners.push(Listener {
                        gateway: gw.key(),
                        port: port.number,
                        protocol: port.protocol.clone(),
                        name: port.name.clone(),
                        hosts: server.hosts.clone(),
                    });
                }
            }
        }
    } else {
        bound.push(MESH_GATEWAY.to_owned());
    }

    for vs in config.virtual_services() {
        add_virtual_service(&mut table, vs, scope, &bound);
    }
    if scope.gateway {
        gateway_api::add_gateway_routes(&mut table, config);
    } else {
        gateway_api::add_mesh_routes(&mut table, config, scope);
    }
    for se in config.service_entries() {
        if exported(&se.spec.export_to, se.namespace(), &scope.namespace) {
            for host in &se.spec.hosts {
                service_entry_for(&mut table, qualify(host, se.namespace())).external =
                    Some(ExternalService {
                        resolution: se.spec.resolution.unwrap_or(Resolution::None),
                        ports: se.spec.ports.clone(),
                        endpoints: se.spec.endpoints.clone(),
                    });
            }
        }
    }
    table.local_rate_limits = rate_limit::for_workload(config, scope);
    // Prefer a rule in the proxy's namespace, then any other (first loaded wins).
    let mut rules: Vec<&DestinationRule> = config
        .destination_rules()
        .filter(|dr| exported(&dr.spec.export_to, dr.namespace(), &scope.namespace))
        .filter(|dr| match &dr.spec.workload_selector {
            None => true,
            Some(sel) => {
                dr.namespace() == scope.namespace
                    && sel
                        .match_labels
                        .iter()
                        .all(|(k, v)| scope.labels.get(k) == Some(v))
            }
        })
        .collect();
    rules.sort_by_key(|dr| dr.namespace() != scope.namespace);
    for dr in rules {
        let host = qualify(&dr.spec.host, dr.namespace());
        let service = service_entry_for(&mut table, host);
        if service.destination_rule.is_none() {
            apply_destination_rule(service, dr);
        }
    }
    table
}

fn service_entry_for(table: &mut RouteTable, host: String) -> &mut CompiledService {
    table
        .services
        .entry(host.clone())
        .or_insert_with(|| CompiledService::with_default_route(&host))
}

fn add_virtual_service(
    table: &mut RouteTable,
    vs: &VirtualService,
    scope: &ProxyScope,
    bound: &[String],
) {
    let ns = vs.namespace();
    if !exported(&vs.spec.export_to, ns, &scope.namespace) {
        return;
    }
    let gateways: Vec<String> = if vs.spec.gateways.is_empty() {
        vec![MESH_GATEWAY.to_owned()]
    } else {
        vs.spec
            .gateways
            .iter()
            .map(|g| gateway_ref(g, ns))
            .collect()
    };
    if !gateways.iter().any(|g| bound.contains(g)) {
        return;
    }
    let mut routes = Vec::new();
    for route in &vs.spec.http {
        // Keep only the match alternatives that apply to this proxy (per-match gateways,
        // sourceLabels, sourceNamespace); a rule whose alternatives all drop out is gone.
        let kept: Vec<HttpMatchRequest> = route
            .matches
            .iter()
            .filter(|m| {
                (m.gateways.is_empty()
                    || m.gateways
                        .iter()
                        .any(|g| bound.contains(&gateway_ref(g, ns))))
                    && m.source_labels
                        .iter()
                        .all(|(k, v)| scope.labels.get(k) == Some(v))
                    && m.source_namespace
                        .as_ref()
                        .is_none_or(|n| *n == scope.namespace)
            })
            .cloned()
            .collect();
        if !route.matches.is_empty() && kept.is_empty() {
            continue;
        }
        routes.push(CompiledRoute::from_http(route, kept, ns));
    }
    for host in &vs.spec.hosts {
        let host = qualify(host, ns);
        let service = table
            .services
            .entry(host.clone())
            .or_insert_with(|| CompiledService::new(host));
        if !service.virtual_services.is_empty() && !scope.gateway {
            // Sidecars do not merge VirtualServices for one host: the first one wins.
            continue;
        }
        if service.virtual_services.is_empty() {
            service.routes.clear(); // drop a default route added for a ServiceEntry
        }
        service.virtual_services.push(vs.key());
        service.routes.extend(routes.iter().cloned());
    }
}

fn apply_destination_rule(service: &mut CompiledService, dr: &DestinationRule) {
    let rule_policy = dr.spec.traffic_policy.as_ref();
    service.destination_rule = Some(dr.key());
    service.policy = EffectivePolicy::from_policy(rule_policy);
    service.port_policies = port_policies(rule_policy);
    for subset in &dr.spec.subsets {
        let merged = merge_subset_policy(rule_policy, subset.traffic_policy.as_ref());
        service.subsets.insert(
            subset.name.clone(),
            CompiledSubset {
                labels: subset.labels.clone(),
                policy: EffectivePolicy::from_policy(merged.as_ref()),
                port_policies: port_policies(merged.as_ref()),
            },
        );
    }
}

fn port_policies(policy: Option<&TrafficPolicy>) -> BTreeMap<u32, EffectivePolicy> {
    policy
        .map(|p| {
            p.port_level_settings
                .iter()
                .filter_map(|pls| Some((pls.port?.number, EffectivePolicy::from_port(pls))))
                .collect()
        })
        .unwrap_or_default()
}
