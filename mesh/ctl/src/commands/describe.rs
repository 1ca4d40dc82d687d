//! `meshctl describe <service>`: a human summary of `/api/v1/describe/{service}`: routes
//! in order with their matches and weights, subsets with endpoint counts, the traffic
//! policy, endpoints, fault leases, and the security policies that apply.

use serde_json::Value;

use super::path_name;
use super::render::{at, cell, fault_effect, fault_match, remaining, scalar};
use crate::CtlError;
use crate::control::Control;

pub(super) async fn run(control: &Control, service: &str) -> Result<u8, CtlError> {
    let service = path_name("service", service)?;
    let answer = control
        .get(&format!("api/v1/describe/{service}"), &[])
        .await?;
    print!("{}", render(service, &answer));
    Ok(0)
}

/// The whole summary.
pub(super) fn render(service: &str, d: &Value) -> String {
    let mut out = String::new();
    let host = d.get("host").and_then(Value::as_str).unwrap_or(service);
    out.push_str(&format!("Service:   {host}\n"));

    let routes = list(d.get("routes"));
    out.push_str("\nRoutes (first match wins):\n");
    if routes.is_empty() {
        out.push_str("  none: every request goes to all endpoints (no VirtualService)\n");
    }
    for (i, r) in routes.iter().enumerate() {
        out.push_str(&format!("  {}. {}\n", i + 1, route(r)));
    }

    let endpoints = list(d.get("endpoints"));
    out.push_str("\nSubsets:\n");
    let subsets = subsets(d.get("subsets"));
    if subsets.is_empty() {
        out.push_str("  none (no DestinationRule subsets)\n");
    }
    let rows: Vec<(String, String, usize)> = subsets
        .iter()
        .map(|(name, s)| {
            let labels = s.get("labels").map_or_else(|| "-".to_owned(), scalar);
            (name.clone(), labels, endpoint_count(s, &endpoints))
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
    out.push_str(&block(d.get("policy")));

    out.push_str("\nEndpoints:\n");
    if endpoints.is_empty() {
        out.push_str("  none registered: is the workload running? (`meshctl get workloads`)\n");
    }
    for e in &endpoints {
        let sidecar = match e.get("sidecar").and_then(Value::as_bool) {
            Some(false) => "  (no sidecar)",
            _ => "",
        };
        out.push_str(&format!(
            "  {:<21} {:<14} {}{sidecar}\n",
            cell(e, &["address"]),
            cell(e, &["workload"]),
            cell(e, &["labels"])
        ));
    }

    out.push_str("\nFaults:\n");
    let faults = list(d.get("faults"));
    if faults.is_empty() {
        out.push_str("  none\n");
    }
    for f in &faults {
        let subset = f
            .get("subset")
            .and_then(Value::as_str)
            .map_or_else(String::new, |s| format!(" subset {s}"));
        out.push_str(&format!(
            "  {}{subset}: {} for {}, {} left\n",
            cell(f, &["id"]),
            fault_effect(f),
            match fault_match(f).as_str() {
                "*" => "every request".to_owned(),
                m => m.to_owned(),
            },
            remaining(f)
        ));
    }

    out.push_str("\nAuthorization:");
    out.push_str(&block(d.get("authorization")));
    out.push_str("\nPeer authentication:");
    out.push_str(&block(d.get("peer_authentication")));
    out
}

fn list(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array).cloned().unwrap_or_default()
}

/// Subsets by name, from a map (`{"v1": {...}}`) or a list (`[{"name": "v1", ...}]`).
fn subsets(v: Option<&Value>) -> Vec<(String, Value)> {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(Value::Array(a)) => a.iter().map(|s| (cell(s, &["name"]), s.clone())).collect(),
        _ => Vec::new(),
    }
}

/// The subset's endpoint count: given by the API, or counted by label match.
fn endpoint_count(subset: &Value, endpoints: &[Value]) -> usize {
    match subset.get("endpoints") {
        Some(Value::Number(n)) => return n.as_u64().map_or(0, |n| n as usize),
        Some(Value::Array(a)) => return a.len(),
        _ => {}
    }
    let Some(labels) = subset.get("labels").and_then(Value::as_object) else {
        return endpoints.len();
    };
    endpoints
        .iter()
        .filter(|e| labels.iter().all(|(k, v)| at(e, &["labels", k]) == Some(v)))
        .count()
}

/// A nested value as indented YAML, or ` none`.
fn block(v: Option<&Value>) -> String {
    let empty = match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(m)) => m.is_empty(),
        _ => false,
    };
    if empty {
        return " none\n".to_owned();
    }
    let text = v
        .and_then(|v| serde_norway::to_string(&humanize(v)).ok())
        .unwrap_or_else(|| v.map(Value::to_string).unwrap_or_default());
    let mut out = String::from("\n");
    for line in text.lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One route: `name: when <matches> -> <destinations>, timeout 10s`.
fn route(r: &Value) -> String {
    let mut s = String::new();
    if let Some(name) = r.get("name").and_then(Value::as_str) {
        s.push_str(&format!("[{name}] "));
    }
    let matches = list(r.get("matches").or_else(|| r.get("match")));
    if matches.is_empty() {
        s.push_str("every request");
    } else {
        let alts: Vec<String> = matches.iter().map(match_request).collect();
        s.push_str(&format!("when {}", alts.join(" or ")));
    }
    s.push_str(" -> ");
    s.push_str(&destinations(r));
    if let Some(t) = r.get("timeout").and_then(duration) {
        s.push_str(&format!(", timeout {t}"));
    }
    if let Some(f) = r.get("fault").filter(|f| !f.is_null()) {
        s.push_str(&format!(", fault {}", route_fault(f)));
    }
    if r.get("expires_at_ms").is_some_and(|v| !v.is_null()) {
        s.push_str(&format!(" (fault lease, {} left)", remaining(r)));
    }
    s
}

/// `uri prefix /static and end-user=jason`.
fn match_request(m: &Value) -> String {
    let Some(obj) = m.as_object() else {
        return scalar(m);
    };
    let mut parts = Vec::new();
    for (field, value) in obj {
        match field.as_str() {
            "name" => {}
            "headers" | "queryParams" | "query_params" => {
                if let Some(map) = value.as_object() {
                    for (k, v) in map {
                        parts.push(string_match(k, v));
                    }
                }
            }
            _ => parts.push(string_match(field, value)),
        }
    }
    if parts.is_empty() {
        "anything".to_owned()
    } else {
        parts.join(" and ")
    }
}

/// `end-user=jason`, `uri prefix /static`, `port 9080`.
fn string_match(name: &str, v: &Value) -> String {
    match v.as_object() {
        Some(m) if m.len() == 1 => {
            let (kind, val) = m
                .iter()
                .next()
                .map_or(("", &Value::Null), |(k, v)| (k.as_str(), v));
            if kind == "exact" {
                format!("{name}={}", scalar(val))
            } else {
                format!("{name} {kind} {}", scalar(val))
            }
        }
        Some(m) if m.is_empty() => format!("{name} present"),
        _ => format!("{name} {}", scalar(v)),
    }
}

/// `reviews v1 80%, reviews v2 20%`.
fn destinations(r: &Value) -> String {
    let action = r.get("action").unwrap_or(r);
    let forward = action
        .get("forward")
        .or_else(|| action.get("Forward"))
        .unwrap_or(action);
    let dests = list(forward.get("destinations").or_else(|| forward.get("route")));
    if dests.is_empty() {
        return compact(action);
    }
    let total: u64 = forward
        .get("total_weight")
        .and_then(Value::as_u64)
        .unwrap_or_else(|| {
            dests
                .iter()
                .filter_map(|d| d.get("weight").and_then(Value::as_u64))
                .sum()
        });
    dests
        .iter()
        .map(|d| {
            let d2 = d.get("destination").unwrap_or(d);
            let host = d2.get("host").and_then(Value::as_str).unwrap_or("?");
            let host = host.split('.').next().unwrap_or(host);
            let subset = d2
                .get("subset")
                .and_then(Value::as_str)
                .map_or_else(String::new, |s| format!(" {s}"));
            let weight = d.get("weight").and_then(Value::as_u64);
            let pct = match (weight, total) {
                (_, _) if dests.len() == 1 => 100,
                (Some(w), t) if t > 0 => w * 100 / t,
                _ => 0,
            };
            format!("{host}{subset} {pct}%")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A duration as JSON: `"10s"`, or serde's `{"secs": 10, "nanos": 0}`.
fn duration(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(m) => {
            let secs = m.get("secs")?.as_u64()?;
            let nanos = m.get("nanos").and_then(Value::as_u64).unwrap_or(0);
            Some(crate::duration::to_istio(std::time::Duration::new(
                secs,
                nanos as u32,
            )))
        }
        _ => None,
    }
}

fn compact(v: &Value) -> String {
    v.to_string()
}

/// A route's effective fault: `delay 7s (100%)`, `abort 500 (50%)`.
fn route_fault(f: &Value) -> String {
    let pct = |v: &Value| {
        v.get("percent")
            .or_else(|| v.get("percentage"))
            .and_then(Value::as_f64)
            .map_or_else(String::new, |p| format!(" ({p}%)"))
    };
    let mut parts = Vec::new();
    if let Some(d) = f.get("delay").filter(|d| !d.is_null()) {
        let how_long = d
            .get("fixed_delay")
            .and_then(duration)
            .unwrap_or_else(|| "?".to_owned());
        parts.push(format!("delay {how_long}{}", pct(d)));
    }
    if let Some(a) = f.get("abort").filter(|a| !a.is_null()) {
        parts.push(format!("abort {}{}", cell(a, &["http_status"]), pct(a)));
    }
    if parts.is_empty() {
        compact(f)
    } else {
        parts.join(" + ")
    }
}

/// Makes a policy readable: `{secs, nanos}` as `10s`, `u32::MAX` limits as `unlimited`,
/// nulls dropped (they mean "not set").
fn humanize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            if let Some(d) = duration(v).filter(|_| m.contains_key("secs")) {
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

    #[test]
    fn routes_subsets_endpoints_faults() {
        let d = json!({
            "host": "reviews.default.svc.cluster.local",
            "routes": [
                {"name": null, "matches": [{"headers": {"end-user": {"exact": "jason"}}}],
                 "action": {"forward": {"destinations": [{"host": "reviews.default.svc.cluster.local", "subset": "v2", "weight": 100}], "total_weight": 100}},
                 "timeout": null},
                {"matches": [], "action": {"forward": {"destinations": [
                    {"host": "reviews.default.svc.cluster.local", "subset": "v1", "weight": 80},
                    {"host": "reviews.default.svc.cluster.local", "subset": "v3", "weight": 20}], "total_weight": 100}},
                 "timeout": {"secs": 10, "nanos": 0}}
            ],
            "subsets": {"v1": {"labels": {"version": "v1"}}, "v2": {"labels": {"version": "v2"}}},
            "policy": {},
            "endpoints": [
                {"address": "127.0.0.1:15122", "labels": {"app": "reviews", "version": "v1"}, "workload": "reviews-v1", "sidecar": true},
                {"address": "127.0.0.1:15132", "labels": {"app": "reviews", "version": "v2"}, "workload": "reviews-v2", "sidecar": true},
                {"address": "127.0.0.1:15142", "labels": {"app": "reviews", "version": "v2"}, "workload": "reviews-v2b", "sidecar": true}
            ],
            "faults": [{"id": "f-1", "service": "reviews", "delay": {"fixed_delay": "7s", "percentage": 100}, "headers": {"end-user": "jason"}, "remaining_ms": 65000}],
            "authorization": [],
            "peer_authentication": {"mode": "PERMISSIVE"}
        });
        let text = render("reviews", &d);
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
            text.contains("f-1: delay 7s (100%) for end-user=jason, 1m 5s left"),
            "{text}"
        );
        assert!(text.contains("Authorization: none"), "{text}");
        assert!(
            text.contains("Peer authentication:\n  mode: PERMISSIVE\n"),
            "{text}"
        );
    }

    #[test]
    fn fault_lease_routes_and_policies_read_well() {
        let r = json!({"name": "f-1-default", "matches": [],
            "action": {"forward": {"destinations": [{"host": "ratings.default.svc.cluster.local", "subset": null, "weight": 100}], "total_weight": 100}},
            "fault": {"delay": {"fixed_delay": {"secs": 7, "nanos": 0}, "percent": 100.0}, "abort": null},
            "expires_at_ms": crate::commands::render::now_ms() + 60_000});
        let text = route(&r);
        assert!(
            text.starts_with(
                "[f-1-default] every request -> ratings 100%, fault delay 7s (100%) (fault lease, "
            ),
            "{text}"
        );
        let p = json!({"connection_pool": {"max_connections": 4294967295u64, "connect_timeout": {"secs": 10, "nanos": 0}, "max_connection_duration": null}});
        assert_eq!(
            block(Some(&p)),
            "\n  connection_pool:\n    max_connections: unlimited\n    connect_timeout: 10s\n"
        );
    }

    #[test]
    fn empty_service() {
        let text = render("ratings", &json!({}));
        assert!(text.contains("Service:   ratings\n"));
        assert!(text.contains("none: every request goes to all endpoints"));
        assert!(text.contains("none registered"));
    }

    #[test]
    fn matches() {
        let m =
            json!({"uri": {"prefix": "/static"}, "method": {"exact": "GET"}, "headers": {"x": {}}});
        assert_eq!(
            match_request(&m),
            "uri prefix /static and method=GET and x present"
        );
    }
}
