//! Fault leases for chaos tools.
//!
//! A lease is a fault on a service's routes with a time to live: Istio's delay and abort,
//! and the network faults of [`network`] (bandwidth, reset, blackhole, slow close). The
//! control plane drops it when the TTL ends, and the routes it adds carry the absolute
//! expiry too, so proxies stop applying it on time even if the control plane (or the
//! chaos tool that asked for it) has died.
//!
//! Injection: for every route of the target service, a copy with the fault is placed right
//! before it. The copy matches what the route matches, ANDed with the lease's header
//! matches, so the rest of the traffic keeps its original route.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_api::compile::now_ms;
use mesh_api::defaults::{AbortStatus, EffectiveAbort, EffectiveDelay};
use mesh_api::duration::format_duration;
use mesh_api::host::qualify;
use mesh_api::networking::virtual_service::HttpMatchRequest;
use mesh_api::wire::{AbortView, DelayView, FaultRequest, LeaseView};
use mesh_api::{
    CompiledRoute, CompiledService, EffectiveFault, RouteAction, RouteTable, StringMatch,
    WeightedDestinations, parse_duration,
};
use tokio::time::Instant;

mod network;

/// Longest lease a caller may ask for.
pub const MAX_TTL_SECONDS: u64 = 3600;

/// A bad fault request; Display names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FaultError {
    /// JSON field path, e.g. `delay.percentage`.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> FaultError {
    FaultError {
        field,
        message: message.into(),
    }
}

/// A checked fault.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    /// Service as given.
    pub service: String,
    /// Namespace used to qualify it.
    pub namespace: String,
    /// Qualified host.
    pub host: String,
    /// Subset restriction.
    pub subset: Option<String>,
    /// What the routes of the lease inject (aborts are always HTTP statuses).
    pub fault: EffectiveFault,
    /// Exact header matches (lowercase names).
    pub headers: BTreeMap<String, String>,
    /// Lease duration.
    pub ttl: Duration,
}

fn percentage(field: &'static str, value: Option<f64>) -> Result<f64, FaultError> {
    let value = value.unwrap_or(100.0);
    if !(0.0..=100.0).contains(&value) || value.is_nan() {
        return Err(invalid(field, format!("{value} is not between 0 and 100")));
    }
    Ok(value)
}

/// A duration field that must be more than zero.
fn positive_duration(field: &'static str, text: &str) -> Result<Duration, FaultError> {
    let value = parse_duration(text).map_err(|e| invalid(field, e.to_string()))?;
    if value.is_zero() {
        return Err(invalid(field, "must be greater than 0"));
    }
    Ok(value)
}

impl TryFrom<FaultRequest> for FaultSpec {
    type Error = FaultError;

    /// Checks every field of a request.
    fn try_from(request: FaultRequest) -> Result<Self, FaultError> {
        let service = request.service.trim().to_owned();
        if service.is_empty() {
            return Err(invalid("service", "is required"));
        }
        let namespace = request.namespace.unwrap_or_else(|| "default".to_owned());
        if namespace.is_empty() {
            return Err(invalid("namespace", "must not be empty"));
        }
        let delay = match request.delay {
            None => None,
            Some(d) => {
                let fixed_delay = positive_duration("delay.fixed_delay", &d.fixed_delay)?;
                let jitter = match &d.jitter {
                    None => Duration::ZERO,
                    Some(j) => {
                        parse_duration(j).map_err(|e| invalid("delay.jitter", e.to_string()))?
                    }
                };
                if jitter > fixed_delay {
                    return Err(invalid(
                        "delay.jitter",
                        format!(
                            "{j} is more than the delay itself",
                            j = format_duration(jitter)
                        ),
                    ));
                }
                Some(EffectiveDelay {
                    fixed_delay,
                    percent: percentage("delay.percentage", d.percentage)?,
                    jitter,
                    direction: d.direction.unwrap_or_default(),
                })
            }
        };
        let abort = match request.abort {
            None => None,
            Some(a) => {
                let status = u16::try_from(a.http_status)
                    .ok()
                    .filter(|s| (200..=599).contains(s))
                    .ok_or_else(|| {
                        invalid(
                            "abort.http_status",
                            format!("{} is not an HTTP status from 200 to 599", a.http_status),
                        )
                    })?;
                Some(EffectiveAbort {
                    status: AbortStatus::Http(status),
                    percent: percentage("abort.percentage", a.percentage)?,
                })
            }
        };
        let fault = EffectiveFault {
            delay,
            abort,
            bandwidth: request.bandwidth.map(network::bandwidth).transpose()?,
            reset: request.reset.map(network::reset).transpose()?,
            blackhole: request.blackhole.map(network::blackhole).transpose()?,
            slow_close: request.slow_close.map(network::slow_close).transpose()?,
        };
        if fault == EffectiveFault::default() {
            return Err(invalid(
                "delay",
                "a fault needs at least one of delay, abort, bandwidth, reset, blackhole, slow_close",
            ));
        }
        let mut headers = BTreeMap::new();
        for (name, value) in request.headers {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(invalid("headers", format!("{name:?} is not a header name")));
            }
            headers.insert(name.to_ascii_lowercase(), value);
        }
        let ttl = match request.ttl_seconds {
            None => return Err(invalid("ttl_seconds", "is required (1 to 3600)")),
            Some(t) => u64::try_from(t)
                .ok()
                .filter(|t| (1..=MAX_TTL_SECONDS).contains(t))
                .ok_or_else(|| invalid("ttl_seconds", format!("{t} is not between 1 and 3600")))?,
        };
        if request.subset.as_deref() == Some("") {
            return Err(invalid("subset", "must not be empty"));
        }
        Ok(FaultSpec {
            host: qualify(&service, &namespace),
            service,
            namespace,
            subset: request.subset,
            fault,
            headers,
            ttl: Duration::from_secs(ttl),
        })
    }
}

/// An active fault.
#[derive(Debug, Clone)]
pub struct Lease {
    /// `f-1`, `f-2`, ...
    pub id: String,
    /// What it injects.
    pub spec: FaultSpec,
    /// Creation, in milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// End, in milliseconds since the Unix epoch (what proxies see).
    pub expires_at_ms: u64,
    /// End on tokio's clock (what our expiry uses).
    pub deadline: Instant,
}

impl Lease {
    /// The API view at `now`.
    pub fn view(&self, now: Instant) -> LeaseView {
        let s = &self.spec;
        LeaseView {
            id: self.id.clone(),
            service: s.service.clone(),
            namespace: s.namespace.clone(),
            host: s.host.clone(),
            subset: s.subset.clone(),
            delay: s.fault.delay.as_ref().map(|d| DelayView {
                fixed_delay: format_duration(d.fixed_delay),
                percentage: d.percent,
                jitter: (!d.jitter.is_zero()).then(|| format_duration(d.jitter)),
                direction: d.direction,
            }),
            abort: s.fault.abort.as_ref().map(|a| AbortView {
                http_status: match a.status {
                    AbortStatus::Http(code) => code,
                    AbortStatus::Grpc(_) => 0,
                },
                percentage: a.percent,
            }),
            bandwidth: s.fault.bandwidth.as_ref().map(network::bandwidth_view),
            reset: s.fault.reset.as_ref().map(network::reset_view),
            blackhole: s.fault.blackhole.as_ref().map(network::blackhole_view),
            slow_close: s.fault.slow_close.as_ref().map(network::slow_close_view),
            headers: s.headers.clone(),
            ttl_seconds: s.ttl.as_secs(),
            created_at_ms: self.created_at_ms,
            expires_at_ms: self.expires_at_ms,
            remaining_ms: u64::try_from(self.deadline.saturating_duration_since(now).as_millis())
                .unwrap_or(u64::MAX),
        }
    }
}

/// All active leases, in creation order.
#[derive(Debug, Default)]
pub struct Faults {
    next_id: u64,
    leases: BTreeMap<u64, Lease>,
}

impl Faults {
    /// No faults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a lease at `now`.
    pub fn add(&mut self, spec: FaultSpec, now: Instant) -> &Lease {
        self.next_id += 1;
        let created_at_ms = now_ms();
        let ttl_ms = u64::try_from(spec.ttl.as_millis()).unwrap_or(u64::MAX);
        let lease = Lease {
            id: format!("f-{}", self.next_id),
            created_at_ms,
            expires_at_ms: created_at_ms.saturating_add(ttl_ms),
            deadline: now + spec.ttl,
            spec,
        };
        self.leases.entry(self.next_id).or_insert(lease)
    }

    /// Ends one lease; false when unknown.
    pub fn remove(&mut self, id: &str) -> bool {
        let number = id.strip_prefix("f-").and_then(|n| n.parse::<u64>().ok());
        number.is_some_and(|n| self.leases.remove(&n).is_some())
    }

    /// Ends every lease; returns their ids.
    pub fn clear(&mut self) -> Vec<String> {
        std::mem::take(&mut self.leases)
            .into_values()
            .map(|l| l.id)
            .collect()
    }

    /// Ends the leases whose TTL is over; returns their ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let mut ended = Vec::new();
        self.leases.retain(|_, lease| {
            let live = lease.deadline > now;
            if !live {
                ended.push(lease.id.clone());
            }
            live
        });
        ended
    }

    /// When the next lease ends.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.leases.values().map(|l| l.deadline).min()
    }

    /// Active leases in creation order.
    pub fn leases(&self) -> impl Iterator<Item = &Lease> {
        self.leases.values()
    }

    /// Number of active leases.
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    /// True when no fault is active.
    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// Adds the fault routes of every lease to a compiled table. `create` makes an entry
    /// with the default route for a target the table does not know yet (sidecars route
    /// every registry host; gateways only their own hosts).
    pub fn inject(&self, table: &mut RouteTable, create: bool) {
        for lease in self.leases.values() {
            inject_lease(table, lease, create);
        }
    }
}

/// Adds one lease's routes to `table`: before the routes of the target service, and
/// before routes of other hosts that forward to it (a gateway's `*` routes forwarding to
/// productpage, for instance), since that is where requests to the target are routed.
fn inject_lease(table: &mut RouteTable, lease: &Lease, create: bool) {
    let host = &lease.spec.host;
    if create && !table.services.contains_key(host) {
        table
            .services
            .insert(host.clone(), CompiledService::with_default_route(host));
    }
    for (key, service) in &mut table.services {
        let own = key == host;
        let mut routes = Vec::with_capacity(service.routes.len() * 2);
        for route in std::mem::take(&mut service.routes) {
            // Routes of earlier leases get no second fault: they are kept, not copied.
            if route.expires_at_ms.is_none()
                && let Some(copy) = faulted_copy(&route, lease, own)
            {
                routes.push(copy);
            }
            routes.push(route);
        }
        service.routes = routes;
    }
}

/// The copy of `route` carrying the lease's fault, or `None` when the lease does not apply
/// to it (another subset or host, header matches that contradict the route's). `own`:
/// the route belongs to the target service itself, so every route of it is concerned;
/// routes of other hosts only when they forward to the target.
fn faulted_copy(route: &CompiledRoute, lease: &Lease, own: bool) -> Option<CompiledRoute> {
    let spec = &lease.spec;
    let mut copy = route.clone();
    if spec.subset.is_some() || !own {
        let RouteAction::Forward(forward) = &route.action else {
            return None;
        };
        let targeted = |d: &&mesh_api::WeightedDestination| {
            (own || d.host == spec.host)
                && spec
                    .subset
                    .as_deref()
                    .is_none_or(|s| d.subset.as_deref() == Some(s))
        };
        let kept: Vec<_> = forward
            .destinations
            .iter()
            .filter(targeted)
            .cloned()
            .collect();
        if kept.is_empty() {
            return None;
        }
        if kept.len() < forward.destinations.len() {
            // Requests the copy takes all go to the target: narrowing keeps the fault off
            // the other destinations. Header matches limit which requests it takes.
            copy.action = RouteAction::Forward(WeightedDestinations::new(kept));
        }
    }
    copy.matches = restrict_matches(&route.matches, &spec.headers)?;
    copy.fault = Some(spec.fault.clone());
    copy.expires_at_ms = Some(lease.expires_at_ms);
    copy.name = Some(format!(
        "{}-{}",
        lease.id,
        route.name.as_deref().unwrap_or("route")
    ));
    Some(copy)
}

/// Each alternative of `matches` ANDed with exact header matches. An alternative that
/// already constrains the same header keeps working only if the lease's value satisfies
/// it (then the exact value alone is the conjunction); otherwise the alternative can never
/// match and is dropped. `None` when nothing is left.
fn restrict_matches(
    matches: &[HttpMatchRequest],
    headers: &BTreeMap<String, String>,
) -> Option<Vec<HttpMatchRequest>> {
    if headers.is_empty() {
        return Some(matches.to_vec());
    }
    let alternatives = if matches.is_empty() {
        vec![HttpMatchRequest::default()]
    } else {
        matches.to_vec()
    };
    let restricted: Vec<HttpMatchRequest> = alternatives
        .into_iter()
        .filter_map(|mut m| {
            for (name, value) in headers {
                if let Some(existing) = m.headers.get(name)
                    && !existing.matches(value, false)
                {
                    return None;
                }
                m.headers.insert(name.clone(), StringMatch::exact(value));
            }
            Some(m)
        })
        .collect();
    (!restricted.is_empty()).then_some(restricted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_api::{MeshConfig, ProxyScope, compile};

    fn request(json: serde_json::Value) -> Result<FaultSpec, FaultError> {
        FaultSpec::try_from(serde_json::from_value::<FaultRequest>(json).unwrap())
    }

    #[test]
    fn bad_requests_name_the_field() {
        let err = request(serde_json::json!({"service": "ratings", "ttl_seconds": 5})).unwrap_err();
        assert_eq!(err.field, "delay");
        let err = request(serde_json::json!({"service": "ratings", "ttl_seconds": 0,
            "abort": {"http_status": 500}}))
        .unwrap_err();
        assert_eq!(err.field, "ttl_seconds");
        let err = request(serde_json::json!({"service": "ratings", "ttl_seconds": 5,
            "delay": {"fixed_delay": "7s", "percentage": 150}}))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "delay.percentage: 150 is not between 0 and 100"
        );
        let err = request(serde_json::json!({"service": "ratings", "ttl_seconds": 5,
            "delay": {"fixed_delay": "soon"}}))
        .unwrap_err();
        assert_eq!(err.field, "delay.fixed_delay");
        let err = request(serde_json::json!({"service": "ratings", "ttl_seconds": 5,
            "abort": {"http_status": 99}}))
        .unwrap_err();
        assert_eq!(err.field, "abort.http_status");
    }

    fn table(yaml: &str) -> RouteTable {
        let config = MeshConfig::load([("t.yaml", yaml)]).unwrap().config;
        compile(
            &config,
            &ProxyScope::sidecar("default", &[("app", "productpage")]),
        )
    }

    const SPLIT: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - match:\n    - headers:\n        end-user: {exact: jason}\n    route:\n    - destination: {host: reviews, subset: v2}\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: 50\n    - destination: {host: reviews, subset: v3}\n      weight: 50\n";

    #[tokio::test(start_paused = true)]
    async fn copies_go_before_each_route_with_narrowed_destinations() {
        let mut faults = Faults::new();
        let spec = request(serde_json::json!({"service": "reviews", "subset": "v3",
            "abort": {"http_status": 503}, "ttl_seconds": 30}))
        .unwrap();
        faults.add(spec, Instant::now());
        let mut t = table(SPLIT);
        faults.inject(&mut t, true);
        let routes = &t.services["reviews.default.svc.cluster.local"].routes;
        // The jason route goes to v2 only: no copy. The split route gets one, to v3 only.
        assert_eq!(routes.len(), 3);
        assert!(routes[0].fault.is_none());
        assert_eq!(routes[1].name.as_deref(), Some("f-1-route"));
        let RouteAction::Forward(f) = &routes[1].action else {
            panic!("forward expected")
        };
        assert_eq!(f.destinations.len(), 1);
        assert_eq!(f.destinations[0].subset.as_deref(), Some("v3"));
        assert!(routes[1].expires_at_ms.is_some());
        assert!(routes[2].fault.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn header_matches_are_anded_and_contradictions_dropped() {
        let mut faults = Faults::new();
        let spec = request(serde_json::json!({"service": "reviews",
            "delay": {"fixed_delay": "2s"}, "headers": {"End-User": "mike"}, "ttl_seconds": 30}))
        .unwrap();
        faults.add(spec, Instant::now());
        let mut t = table(SPLIT);
        faults.inject(&mut t, true);
        let routes = &t.services["reviews.default.svc.cluster.local"].routes;
        // jason-route: end-user must be jason AND mike: impossible, no copy.
        assert_eq!(routes.len(), 3);
        assert_eq!(routes[1].matches.len(), 1);
        assert_eq!(
            routes[1].matches[0].headers["end-user"].exact.as_deref(),
            Some("mike")
        );
        let delay = routes[1].fault.as_ref().unwrap().delay.as_ref().unwrap();
        assert_eq!(delay.fixed_delay, Duration::from_secs(2));
        assert_eq!(delay.percent, 100.0);
    }

    #[tokio::test(start_paused = true)]
    async fn gateway_routes_forwarding_to_the_target_get_the_fault() {
        let gateway = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config/bookinfo-gateway.yaml"),
        )
        .unwrap();
        let config = MeshConfig::load([("gw.yaml", gateway.as_str())])
            .unwrap()
            .config;
        let scope = ProxyScope::gateway("default", &[("istio", "ingressgateway")]);
        let mut faults = Faults::new();
        let spec = request(serde_json::json!({"service": "productpage",
            "abort": {"http_status": 503}, "ttl_seconds": 30}))
        .unwrap();
        faults.add(spec, Instant::now());
        let mut t = compile(&config, &scope);
        let before = t.services.len();
        faults.inject(&mut t, false);
        assert_eq!(t.services.len(), before, "gateways get no new hosts");
        let routes = &t.services["*"].routes;
        assert_eq!(routes.len(), 2);
        assert!(routes[0].fault.is_some());
        assert!(routes[1].fault.is_none());
        // Another target: the gateway's routes stay as they are.
        let mut faults = Faults::new();
        let spec = request(serde_json::json!({"service": "ratings",
            "abort": {"http_status": 503}, "ttl_seconds": 30}))
        .unwrap();
        faults.add(spec, Instant::now());
        let mut t = compile(&config, &scope);
        faults.inject(&mut t, false);
        assert_eq!(t.services["*"].routes.len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn unknown_hosts_get_a_default_route_first_and_leases_expire() {
        let mut faults = Faults::new();
        let t0 = Instant::now();
        let spec = request(serde_json::json!({"service": "ratings",
            "abort": {"http_status": 500, "percentage": 50}, "ttl_seconds": 10}))
        .unwrap();
        faults.add(spec, t0);
        let mut t = RouteTable::default();
        faults.inject(&mut t, false);
        assert!(t.services.is_empty());
        faults.inject(&mut t, true);
        let routes = &t.services["ratings.default.svc.cluster.local"].routes;
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[0].name.as_deref(), Some("f-1-default"));
        assert!(faults.expire(t0 + Duration::from_secs(9)).is_empty());
        assert_eq!(faults.expire(t0 + Duration::from_secs(10)), ["f-1"]);
        assert!(!faults.remove("f-1"));
    }
}
