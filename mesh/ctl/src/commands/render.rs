//! Small helpers to turn the control plane's answers into table cells and summary lines.
//! A resource in force is untyped on the wire (any kind, in its Istio YAML shape), so its
//! cells are read from JSON leniently: a field that is missing shows as `-` rather than
//! failing the whole command. Everything else is typed.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_api::wire::LeaseView;
use serde_json::Value;

use crate::human;

/// The value at `path`.
pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

/// A cell for the value at `path`: strings as they are, numbers and booleans printed,
/// arrays of scalars comma-joined, anything missing `-`.
pub(super) fn cell(v: &Value, path: &[&str]) -> String {
    at(v, path).map_or_else(|| "-".to_owned(), scalar)
}

/// A scalar or list of scalars as text.
pub(super) fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) if s.is_empty() => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "-".to_owned(),
        Value::Array(a) => a.iter().map(scalar).collect::<Vec<_>>().join(","),
        Value::Object(m) if m.is_empty() => "-".to_owned(),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", scalar(v)))
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A text cell: `-` when empty.
pub(super) fn text(s: &str) -> String {
    if s.is_empty() {
        "-".to_owned()
    } else {
        s.to_owned()
    }
}

/// An optional text cell: `-` when absent or empty.
pub(super) fn opt(s: Option<&str>) -> String {
    text(s.unwrap_or_default())
}

/// Labels or header matches as `k=v,k2=v2`, or `-` when there are none.
pub(super) fn pairs(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_owned();
    }
    map.iter()
        .map(|(k, v)| format!("{k}={}", text(v)))
        .collect::<Vec<_>>()
        .join(",")
}

/// "3.2s ago" for a `last_seen_ms` field: an epoch timestamp, or an age when small (the
/// API documents the name only; both readings are handled).
pub(super) fn ago(ms: u64) -> String {
    let age = if ms > 1_000_000_000_000 {
        now_ms().saturating_sub(ms)
    } else {
        ms
    };
    format!("{} ago", human::ms(age))
}

/// The time left of a fault lease.
pub(super) fn remaining(fault: &LeaseView) -> String {
    human::ms(fault.remaining_ms)
}

/// `delay 7s (100%) + abort 500 (50%)`.
pub(super) fn fault_effect(fault: &LeaseView) -> String {
    fault.effect().to_string()
}

/// The header match of a fault: `end-user=jason`, or `*` for every request.
pub(super) fn fault_match(fault: &LeaseView) -> String {
    if fault.headers.is_empty() {
        "*".to_owned()
    } else {
        pairs(&fault.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cells() {
        let v = json!({"a": {"b": ["x", "y"]}, "n": 3, "e": "", "m": {"app": "reviews"}});
        assert_eq!(cell(&v, &["a", "b"]), "x,y");
        assert_eq!(cell(&v, &["n"]), "3");
        assert_eq!(cell(&v, &["e"]), "-");
        assert_eq!(cell(&v, &["nope"]), "-");
        assert_eq!(cell(&v, &["m"]), "app=reviews");
    }

    /// A lease as the control plane lists it.
    fn lease(extra: Value) -> LeaseView {
        let mut v = json!({"id": "f-1", "service": "ratings", "namespace": "default",
            "host": "ratings.default.svc.cluster.local", "headers": {}, "ttl_seconds": 120,
            "created_at_ms": 1, "expires_at_ms": 2, "remaining_ms": 112000});
        if let (Some(v), Value::Object(extra)) = (v.as_object_mut(), extra) {
            v.extend(extra);
        }
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn faults() {
        let f = lease(
            json!({"delay": {"fixed_delay": "7s", "percentage": 100.0}, "headers": {"end-user": "jason"}}),
        );
        assert_eq!(fault_effect(&f), "delay 7s (100%)");
        assert_eq!(fault_match(&f), "end-user=jason");
        assert_eq!(remaining(&f), "1m 52s");
        let f =
            lease(json!({"abort": {"http_status": 500, "percentage": 50.5}, "remaining_ms": 5000}));
        assert_eq!(fault_effect(&f), "abort 500 (50.5%)");
        assert_eq!(fault_match(&f), "*");
        assert_eq!(remaining(&f), "5.0s");
    }

    #[test]
    fn ages() {
        assert_eq!(ago(1500), "1.5s ago");
        assert_eq!(ago(now_ms()).chars().last(), Some('o'));
    }

    #[test]
    fn pairs_and_texts() {
        let m: BTreeMap<String, String> = [("b", "2"), ("a", "")]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .into();
        assert_eq!(pairs(&m), "a=-,b=2");
        assert_eq!(pairs(&BTreeMap::new()), "-");
        assert_eq!(
            (text(""), opt(None), opt(Some("x"))),
            ("-".into(), "-".into(), "x".into())
        );
    }
}
