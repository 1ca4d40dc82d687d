//! Small helpers to turn the control plane's JSON into table cells and summary lines.
//! They are lenient on purpose: a field that is missing shows as `-` rather than failing
//! the whole command.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::duration::human_ms;

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

/// "3.2s ago" for a `last_seen_ms` field: an epoch timestamp, or an age when small (the
/// API documents the name only; both readings are handled).
pub(super) fn ago(v: &Value, key: &str) -> String {
    let Some(ms) = v.get(key).and_then(Value::as_u64) else {
        return "-".to_owned();
    };
    let age = if ms > 1_000_000_000_000 {
        now_ms().saturating_sub(ms)
    } else {
        ms
    };
    format!("{} ago", human_ms(age))
}

/// The time left of a fault: `remaining_ms`, else computed from `expires_at_ms`.
pub(super) fn remaining(fault: &Value) -> String {
    let ms = fault
        .get("remaining_ms")
        .and_then(Value::as_u64)
        .or_else(|| {
            fault
                .get("expires_at_ms")
                .and_then(Value::as_u64)
                .map(|t| t.saturating_sub(now_ms()))
        });
    ms.map_or_else(|| "-".to_owned(), human_ms)
}

/// `delay 7s (100%), abort 500 (50%)`.
pub(super) fn fault_effect(fault: &Value) -> String {
    let mut parts = Vec::new();
    let pct = |v: &Value| {
        v.get("percentage")
            .and_then(Value::as_f64)
            .map_or_else(String::new, |p| format!(" ({p}%)"))
    };
    if let Some(d) = fault.get("delay").filter(|d| !d.is_null()) {
        parts.push(format!("delay {}{}", cell(d, &["fixed_delay"]), pct(d)));
    }
    if let Some(a) = fault.get("abort").filter(|a| !a.is_null()) {
        parts.push(format!("abort {}{}", cell(a, &["http_status"]), pct(a)));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The header match of a fault: `end-user=jason`, or `*` for every request.
pub(super) fn fault_match(fault: &Value) -> String {
    match fault.get("headers").map(scalar) {
        Some(s) if s != "-" => s,
        _ => "*".to_owned(),
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

    #[test]
    fn faults() {
        let f = json!({"delay": {"fixed_delay": "7s", "percentage": 100}, "headers": {"end-user": "jason"}, "remaining_ms": 112000});
        assert_eq!(fault_effect(&f), "delay 7s (100%)");
        assert_eq!(fault_match(&f), "end-user=jason");
        assert_eq!(remaining(&f), "1m 52s");
        let f = json!({"abort": {"http_status": 500, "percentage": 50.5}, "expires_at_ms": now_ms() + 5000});
        assert_eq!(fault_effect(&f), "abort 500 (50.5%)");
        assert_eq!(fault_match(&f), "*");
        assert!(remaining(&f).ends_with('s'));
    }

    #[test]
    fn ages() {
        assert_eq!(ago(&json!({"t": 1500}), "t"), "1.5s ago");
        assert_eq!(ago(&json!({"t": now_ms()}), "t").chars().last(), Some('o'));
        assert_eq!(ago(&json!({}), "t"), "-");
    }
}
