//! `meshctl describe <service>`: a human summary of `/api/v1/describe/{service}`: routes
//! in order with their matches and weights, subsets with endpoint counts, the traffic
//! policy, endpoints, fault leases, and the security policies that apply.

use mesh_api::defaults::EffectiveFault;
use mesh_api::networking::virtual_service::HttpMatchRequest;
use mesh_api::wire::ServiceDescription;
use mesh_api::{CompiledRoute, CompiledSubset, EndpointRecord, RouteAction, StringMatch};
use serde::Serialize;
use serde_json::Value;

use super::path_name;
use super::render::{fault_effect, fault_match, now_ms, opt, pairs, remaining, text};
use crate::CtlError;
use crate::control::ControlClient;
use crate::human;

/// The namespace a service is described from (the control plane's default too).
const NAMESPACE: &str = "default";

pub(super) async fn run(control: &ControlClient, service: &str) -> Result<u8, CtlError> {
    let service = path_name("service", service)?;
    let answer = control.describe(service, NAMESPACE).await?;
    print!("{}", render(&answer));
    Ok(0)
}

/// The whole summary.
pub(super) fn render(d: &ServiceDescription) -> String {
    let mut out = String::new();
    out.push_str(&format!("Service:   {}\n", d.host));

    out.push_str("\nRoutes (first match wins):\n");
    if d.routes.is_empty() {
        out.push_str("  none: every request goes to all endpoints (no VirtualService)\n");
    }
    for (i, r) in d.routes.iter().enumerate() {
        out.push_str(&format!("  {}. {}\n", i + 1, route(r)));
    }

    out.push_str("\nSubsets:\n");
    if d.subsets.is_empty() {
        out.push_str("  none (no DestinationRule subsets)\n");
    }
    let rows: Vec<(&str, String, usize)> = d
        .subsets
        .iter()
        .map(|(name, s)| {
            (
                name.as_str(),
                pairs(&s.labels),
                endpoint_count(s, &d.endpoints),
            )
        })
        .collect();
    let name_w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let labels_w = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(0)
        .max(23);
    for (name, labels, count) in rows {
        let plural = if count == 1 { "" } else { "s" };
        out.push_str(&format!(
            "  {name:<name_w$}  {labels:<labels_w$}  {count} endpoint{plural}\n"
        ));
    }

    out.push_str("\nTraffic policy:");
    out.push_str(&block(&d.policy));

    out.push_str("\nEndpoints:\n");
    if d.endpoints.is_empty() {
        out.push_str("  none registered: is the workload running? (`meshctl get workloads`)\n");
    }
    for e in &d.endpoints {
        let sidecar = if e.sidecar { "" } else { "  (no sidecar)" };
        out.push_str(&format!(
            "  {:<21} {:<14} {}{sidecar}\n",
            e.address.to_string(),
            opt(e.workload.as_deref()),
            pairs(&e.labels)
        ));
    }

    out.push_str("\nFaults:\n");
    if d.faults.is_empty() {
        out.push_str("  none\n");
    }
    for f in &d.faults {
        let subset = f
            .subset
            .as_deref()
            .map_or_else(String::new, |s| format!(" subset {s}"));
        out.push_str(&format!(
            "  {}{subset}: {} for {}, {} left\n",
            text(&f.id),
            fault_effect(f),
            match fault_match(f).as_str() {
                "*" => "every request".to_owned(),
                m => m.to_owned(),
            },
            remaining(f)
        ));
    }

    out.push_str("\nAuthorization:");
    out.push_str(&block(&d.authorization));
    out.push_str("\nPeer authentication:");
    out.push_str(&block(&d.peer_authentication));
    out
}

/// How many registered endpoints carry all of the subset's labels.
fn endpoint_count(subset: &CompiledSubset, endpoints: &[EndpointRecord]) -> usize {
    endpoints
        .iter()
        .filter(|e| {
            subset
                .labels
                .iter()
                .all(|(k, v)| e.labels.get(k) == Some(v))
        })
        .count()
}

/// A policy (or list of policies) as indented YAML, or ` none`.
fn block(v: &impl Serialize) -> String {
    let value = match serde_json::to_value(v) {
        Ok(value) => value,
        Err(e) => return format!(" (cannot show: {e})\n"),
    };
    let empty = match &value {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    };
    if empty {
        return " none\n".to_owned();
    }
    let text = serde_norway::to_string(&humanize(&value)).unwrap_or_else(|_| value.to_string());
    let mut out = String::from("\n");
    for line in text.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One route: `[name] when <matches> -> <destinations>, timeout 10s`.
fn route(r: &CompiledRoute) -> String {
    let mut s = String::new();
    if let Some(name) = &r.name {
        s.push_str(&format!("[{name}] "));
    }
    if r.matches.is_empty() {
        s.push_str("every request");
    } else {
        let alts: Vec<String> = r.matches.iter().map(match_request).collect();
        s.push_str(&format!("when {}", alts.join(" or ")));
    }
    s.push_str(" -> ");
    s.push_str(&destinations(&r.action));
    if let Some(t) = r.timeout {
        s.push_str(&format!(", timeout {}", human::istio(t)));
    }
    if let Some(f) = &r.fault {
        s.push_str(&format!(", fault {}", route_fault(f)));
    }
    if let Some(expires) = r.expires_at_ms {
        let left = human::ms(expires.saturating_sub(now_ms()));
        s.push_str(&format!(" (fault lease, {left} left)"));
    }
    s
}

/// `uri prefix /static and end-user=jason`: the set fields in their wire order.
fn match_request(m: &HttpMatchRequest) -> String {
    let mut parts = Vec::new();
    let named = [
        ("uri", &m.uri),
        ("scheme", &m.scheme),
        ("method", &m.method),
        ("authority", &m.authority),
    ];
    for (name, value) in named {
        if let Some(sm) = value {
            parts.push(string_match(name, sm));
        }
    }
    for (name, sm) in &m.headers {
        parts.push(string_match(name, sm));
    }
    if let Some(port) = m.port {
        parts.push(format!("port {port}"));
    }
    if !m.source_labels.is_empty() {
        let labels: Vec<(&str, String)> = m
            .source_labels
            .iter()
            .map(|(k, v)| (k.as_str(), text(v)))
            .collect();
        parts.push(keyed("sourceLabels", &labels));
    }
    if !m.gateways.is_empty() {
        let gateways: Vec<String> = m.gateways.iter().map(|g| text(g)).collect();
        parts.push(format!("gateways {}", gateways.join(",")));
    }
    for (name, sm) in &m.query_params {
        parts.push(string_match(name, sm));
    }
    if let Some(ignore) = m.ignore_uri_case {
        parts.push(format!("ignoreUriCase {ignore}"));
    }
    if !m.without_headers.is_empty() {
        let without: Vec<(&str, String)> = m
            .without_headers
            .iter()
            .map(|(k, sm)| (k.as_str(), alternatives_text(sm)))
            .collect();
        parts.push(keyed("withoutHeaders", &without));
    }
    if let Some(ns) = &m.source_namespace {
        parts.push(format!("sourceNamespace {}", text(ns)));
    }
    if let Some(prefix) = &m.stat_prefix {
        parts.push(format!("statPrefix {}", text(prefix)));
    }
    if parts.is_empty() {
        "anything".to_owned()
    } else {
        parts.join(" and ")
    }
}

/// The alternatives set in a string match, as (`exact`|`prefix`|`regex`, value).
fn alternatives(sm: &StringMatch) -> Vec<(&'static str, String)> {
    [
        ("exact", sm.exact.as_deref()),
        ("prefix", sm.prefix.as_deref()),
        ("regex", sm.regex.as_ref().map(|r| r.as_str())),
    ]
    .into_iter()
    .filter_map(|(kind, value)| value.map(|v| (kind, text(v))))
    .collect()
}

/// `exact=bob`, or `-` for a presence check.
fn alternatives_text(sm: &StringMatch) -> String {
    let alts = alternatives(sm);
    if alts.is_empty() {
        return "-".to_owned();
    }
    alts.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// `end-user=jason`, `uri prefix /static`, `x-debug present`.
fn string_match(name: &str, sm: &StringMatch) -> String {
    keyed(name, &alternatives(sm))
}

/// A field whose value is a map: one entry reads `name kind value` (`name=value` for
/// `exact`), none `name present`, several `name k=v,k2=v2`.
fn keyed(name: &str, entries: &[(&str, String)]) -> String {
    match entries {
        [] => format!("{name} present"),
        [("exact", value)] => format!("{name}={value}"),
        [(kind, value)] => format!("{name} {kind} {value}"),
        many => {
            let all: Vec<String> = many.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{name} {}", all.join(","))
        }
    }
}

/// `reviews v1 80%, reviews v2 20%`; other actions as their JSON.
fn destinations(action: &RouteAction) -> String {
    let forward = match action {
        RouteAction::Forward(f) if !f.destinations.is_empty() => f,
        _ => return compact(action),
    };
    let total = u64::from(forward.total_weight);
    let single = forward.destinations.len() == 1;
    forward
        .destinations
        .iter()
        .map(|d| {
            let host = d.host.split('.').next().unwrap_or(&d.host);
            let subset = d
                .subset
                .as_deref()
                .map_or_else(String::new, |s| format!(" {s}"));
            let pct = match u64::from(d.weight) {
                _ if single => 100,
                w if total > 0 => w * 100 / total,
                _ => 0,
            };
            format!("{host}{subset} {pct}%")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value as one line of JSON, for what has no summary of its own.
fn compact(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "?".to_owned())
}

/// A route's effective fault: `delay 7s (100%)`, `abort 503 (50%)`.
fn route_fault(f: &EffectiveFault) -> String {
    if *f == EffectiveFault::default() {
        compact(f)
    } else {
        f.to_string()
    }
}

/// A `{secs, nanos}` object (serde's `Duration`) as `10s`.
fn duration(m: &serde_json::Map<String, Value>) -> Option<String> {
    let secs = m.get("secs")?.as_u64()?;
    let nanos = m.get("nanos").and_then(Value::as_u64).unwrap_or(0);
    let nanos = u32::try_from(nanos).ok()?;
    Some(human::istio(std::time::Duration::new(secs, nanos)))
}

/// Makes a policy readable: durations as `10s`, `u32::MAX` limits as `unlimited`,
/// nulls dropped (they mean "not set").
fn humanize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(d) = duration(m) {
                return Value::String(d);
            }
            Value::Object(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), humanize(v)))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(humanize).collect()),
        Value::Number(n) if n.as_u64() == Some(u64::from(u32::MAX)) => {
            Value::String("unlimited".to_owned())
        }
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The literals are what the control plane sends: deserializing them pins the wire
    // types to it from meshctl's side.

    /// Istio's default retry policy, as every compiled route carries it.
    fn retry() -> Value {
        json!({"attempts": 2, "retry_on": ["connect-failure", "refused-stream", "unavailable", "cancelled", "retriable-status-codes"],
               "retriable_status_codes": [503], "per_try_timeout": null, "backoff": {"secs": 0, "nanos": 25000000},
               "retry_ignore_previous_hosts": true, "retry_remote_localities": false})
    }

    /// The effective policy of a DestinationRule without a trafficPolicy.
    fn policy() -> Value {
        json!({"load_balancer": "leastRequest",
               "connection_pool": {"max_connections": 4294967295u64, "connect_timeout": {"secs": 10, "nanos": 0},
                                   "idle_timeout": {"secs": 3600, "nanos": 0}, "max_connection_duration": null,
                                   "http1_max_pending_requests": 4294967295u64, "http2_max_requests": 4294967295u64,
                                   "max_requests_per_connection": 0, "max_retries": 4294967295u64,
                                   "h2_upgrade": false, "use_client_protocol": false},
               "outlier_detection": null, "tls": "auto"})
    }

    fn to(host: &str, subset: &str, weight: u32) -> Value {
        json!({"host": host, "subset": subset, "port": null, "weight": weight, "headers": null})
    }

    fn described(v: Value) -> ServiceDescription {
        serde_json::from_value(v).unwrap()
    }

    fn compiled(v: Value) -> CompiledRoute {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn routes_subsets_endpoints_faults() {
        let host = "reviews.default.svc.cluster.local";
        let d = described(json!({
            "host": host,
            "routes": [
                {"name": null, "matches": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "action": {"forward": {"destinations": [to(host, "v2", 100)], "total_weight": 100}},
                 "timeout": null, "retry": retry(), "fault": null, "mirrors": [], "rewrite": null, "headers": null, "cors": null},
                {"name": null, "matches": [],
                 "action": {"forward": {"destinations": [to(host, "v1", 80), to(host, "v3", 20)], "total_weight": 100}},
                 "timeout": {"secs": 10, "nanos": 0}, "retry": retry(), "fault": null, "mirrors": [], "rewrite": null, "headers": null, "cors": null}
            ],
            "subsets": {"v1": {"labels": {"version": "v1"}, "policy": policy(), "port_policies": {}},
                        "v2": {"labels": {"version": "v2"}, "policy": policy(), "port_policies": {}}},
            "policy": null,
            "endpoints": [
                {"address": "127.0.0.1:15122", "labels": {"app": "reviews", "version": "v1"}, "workload": "reviews-v1", "sidecar": true, "serviceAccount": "bookinfo-reviews"},
                {"address": "127.0.0.1:15132", "labels": {"app": "reviews", "version": "v2"}, "workload": "reviews-v2", "sidecar": true, "serviceAccount": "bookinfo-reviews"},
                {"address": "127.0.0.1:15142", "labels": {"app": "reviews", "version": "v2"}, "workload": "reviews-v2b", "sidecar": false}
            ],
            "faults": [{"id": "f-1", "service": "reviews", "namespace": "default", "host": host,
                        "delay": {"fixed_delay": "7s", "percentage": 100.0}, "headers": {"end-user": "jason"},
                        "ttl_seconds": 120, "created_at_ms": 1, "expires_at_ms": 2, "remaining_ms": 65000}],
            "authorization": [],
            "peer_authentication": [{"apiVersion": "security.istio.io/v1", "kind": "PeerAuthentication",
                                     "metadata": {"name": "default", "namespace": "default"},
                                     "spec": {"mtls": {"mode": "PERMISSIVE"}}}],
            "virtual_services": ["default/reviews"],
            "destination_rule": "default/reviews",
            "version": "7"
        }));
        let text = render(&d);
        assert!(
            text.contains("Service:   reviews.default.svc.cluster.local"),
            "{text}"
        );
        assert!(
            text.contains("  1. when end-user=jason -> reviews v2 100%\n"),
            "{text}"
        );
        assert!(
            text.contains("  2. every request -> reviews v1 80%, reviews v3 20%, timeout 10s\n"),
            "{text}"
        );
        assert!(
            text.contains("v1       version=v1               1 endpoint\n"),
            "{text}"
        );
        assert!(
            text.contains("v2       version=v2               2 endpoints\n"),
            "{text}"
        );
        assert!(text.contains("Traffic policy: none"), "{text}");
        assert!(text.contains("127.0.0.1:15132"), "{text}");
        assert!(
            text.contains(
                "  127.0.0.1:15142       reviews-v2b    app=reviews,version=v2  (no sidecar)\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("f-1: delay 7s (100%) for end-user=jason, 1m 5s left"),
            "{text}"
        );
        assert!(text.contains("Authorization: none"), "{text}");
        assert!(
            text.contains("Peer authentication:\n  - apiVersion: security.istio.io/v1\n"),
            "{text}"
        );
        assert!(
            text.contains("    spec:\n      mtls:\n        mode: PERMISSIVE\n"),
            "{text}"
        );
    }

    #[test]
    fn fault_lease_routes_and_policies_read_well() {
        let r = compiled(json!({"name": "f-1-default", "matches": [],
            "action": {"forward": {"destinations": [{"host": "ratings.default.svc.cluster.local", "subset": null, "port": null, "weight": 100, "headers": null}], "total_weight": 100}},
            "timeout": null, "retry": retry(),
            "fault": {"delay": {"fixed_delay": {"secs": 7, "nanos": 0}, "percent": 100.0}, "abort": null},
            "mirrors": [], "rewrite": null, "headers": null, "cors": null,
            "expires_at_ms": crate::commands::render::now_ms() + 60_000}));
        let text = route(&r);
        assert!(
            text.starts_with(
                "[f-1-default] every request -> ratings 100%, fault delay 7s (100%) (fault lease, "
            ),
            "{text}"
        );
        let mut p = policy();
        p["connection_pool"]["max_connections"] = json!(4);
        let p: mesh_api::EffectivePolicy = serde_json::from_value(p).unwrap();
        assert_eq!(
            block(&Some(p)),
            "\n  load_balancer: leastRequest\n  connection_pool:\n    max_connections: 4\n    connect_timeout: 10s\n    idle_timeout: 3600s\n    http1_max_pending_requests: unlimited\n    http2_max_requests: unlimited\n    max_requests_per_connection: 0\n    max_retries: unlimited\n    h2_upgrade: false\n    use_client_protocol: false\n  tls: auto\n"
        );
    }

    #[test]
    fn other_actions_and_aborts() {
        let r = compiled(
            json!({"name": "moved", "matches": [{"uri": {"prefix": "/old"}}],
            "action": {"redirect": {"uri": "/new"}},
            "timeout": {"secs": 1, "nanos": 500000000}, "retry": retry(),
            "fault": {"delay": null, "abort": {"status": {"http": 503}, "percent": 50.0}},
            "mirrors": [], "rewrite": null, "headers": null, "cors": null}),
        );
        assert_eq!(
            route(&r),
            "[moved] when uri prefix /old -> {\"redirect\":{\"uri\":\"/new\"}}, timeout 1500ms, fault abort 503 (50%)"
        );
    }

    #[test]
    fn empty_service() {
        let d = described(json!({
            "host": "ratings.default.svc.cluster.local", "routes": [], "subsets": {}, "policy": null,
            "endpoints": [], "faults": [], "authorization": [], "peer_authentication": [],
            "virtual_services": [], "destination_rule": null, "version": "3"
        }));
        let text = render(&d);
        assert!(text.contains("Service:   ratings.default.svc.cluster.local\n"));
        assert!(text.contains("none: every request goes to all endpoints"));
        assert!(text.contains("none (no DestinationRule subsets)"));
        assert!(text.contains("none registered"));
        assert!(text.contains("Peer authentication: none\n"));
    }

    #[test]
    fn matches() {
        let m: HttpMatchRequest = serde_json::from_value(
            json!({"uri": {"prefix": "/static"}, "method": {"exact": "GET"}, "headers": {"x": {}}}),
        )
        .unwrap();
        assert_eq!(
            match_request(&m),
            "uri prefix /static and method=GET and x present"
        );
        let m: HttpMatchRequest = serde_json::from_value(json!({
            "uri": {"exact": "/login"}, "port": 9080, "queryParams": {"q": {"regex": "a.*"}},
            "ignoreUriCase": true, "withoutHeaders": {"end-user": {"exact": "bob"}},
            "sourceLabels": {"app": "productpage", "version": "v1"}, "gateways": ["mesh"],
            "sourceNamespace": "default"
        }))
        .unwrap();
        assert_eq!(
            match_request(&m),
            "uri=/login and port 9080 and sourceLabels app=productpage,version=v1 and gateways mesh \
             and q regex a.* and ignoreUriCase true and withoutHeaders end-user exact=bob \
             and sourceNamespace default"
        );
    }
}
