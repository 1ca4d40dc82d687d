//! Reading the shipped Grafana dashboards (`k8s/components/observability/dashboards/`):
//! their panels' queries and template variables, and Grafana's variable substitution, for
//! the offline checks in `tests/observability.rs` and the live run in
//! `tests/e2e/prometheus.rs`.

#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Variables Grafana defines itself, and what the tests put in their place: with a 1 s
/// scrape interval a one-minute window always holds enough samples for `rate`.
pub(crate) const BUILTINS: [(&str, &str); 3] = [
    ("__rate_interval", "1m"),
    ("__interval", "1m"),
    ("__range", "1m"),
];

/// The observability component's folder.
pub(crate) fn component_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../k8s/components/observability")
}

/// Every shipped dashboard: file name and JSON.
pub(crate) fn dashboards() -> Vec<(String, Value)> {
    let dir = component_dir().join("dashboards");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", p.display()));
            (p.file_name().unwrap().to_string_lossy().into_owned(), json)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// One query of one panel.
#[derive(Debug, Clone)]
pub(crate) struct PanelQuery {
    pub(crate) dashboard: String,
    pub(crate) panel: String,
    pub(crate) ref_id: String,
    pub(crate) expr: String,
}

/// The panels that show data (rows are only headings), top level and inside collapsed rows.
pub(crate) fn panels(dashboard: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in dashboard["panels"].as_array().into_iter().flatten() {
        if p["type"] == "row" {
            out.extend(p["panels"].as_array().into_iter().flatten());
        } else {
            out.push(p);
        }
    }
    out
}

/// Every query of every panel of `dashboard`.
pub(crate) fn queries(file: &str, dashboard: &Value) -> Vec<PanelQuery> {
    let title = dashboard["title"].as_str().unwrap_or(file);
    panels(dashboard)
        .into_iter()
        .flat_map(|p| {
            let panel = p["title"].as_str().unwrap_or("(untitled)").to_owned();
            p["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |t| PanelQuery {
                    dashboard: title.to_owned(),
                    panel: panel.clone(),
                    ref_id: t["refId"].as_str().unwrap_or("?").to_owned(),
                    expr: t["expr"].as_str().unwrap_or("").to_owned(),
                })
        })
        .collect()
}

/// The dashboard's template variables: name → the variable's JSON.
pub(crate) fn variables(dashboard: &Value) -> BTreeMap<String, Value> {
    dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| (v["name"].as_str().unwrap().to_owned(), v.clone()))
        .collect()
}

/// A query variable's `label_values(selector, label)`, split.
pub(crate) fn label_values(variable: &Value) -> Option<(String, String)> {
    let q = variable["query"]["query"]
        .as_str()
        .or_else(|| variable["query"].as_str())?;
    let inner = q.strip_prefix("label_values(")?.strip_suffix(')')?;
    let (selector, label) = inner.rsplit_once(',')?;
    Some((selector.trim().to_owned(), label.trim().to_owned()))
}

/// Names referenced as `$name` or `${name}` in `text`.
pub(crate) fn referenced(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(text, |name| {
        out.insert(name.to_owned());
        None
    });
    out
}

/// `text` with every `$name` / `${name}` replaced from `values`; the error names the
/// first variable without a value.
pub(crate) fn substitute(text: &str, values: &BTreeMap<&str, &str>) -> Result<String, String> {
    let mut missing = None;
    let out = walk(text, |name| {
        let v = values
            .get(name)
            .copied()
            .or_else(|| BUILTINS.iter().find(|(n, _)| *n == name).map(|(_, v)| *v));
        if v.is_none() && missing.is_none() {
            missing = Some(name.to_owned());
        }
        v.map(str::to_owned)
    });
    match missing {
        Some(name) => Err(format!("no value for ${name}")),
        None => Ok(out),
    }
}

/// Scans `text` for variable references, replacing each with what `f` returns (kept when
/// `None`).
fn walk(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> String {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, len) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !is_name(c)).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match f(name) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[at..at + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitution_takes_whole_names() {
        let values = BTreeMap::from([("srcwl", "productpage-v1"), ("srcns", "default")]);
        assert_eq!(
            substitute(r#"{a=~"$srcwl",b=~"${srcns}"}[$__rate_interval]"#, &values).unwrap(),
            r#"{a=~"productpage-v1",b=~"default"}[1m]"#
        );
        assert_eq!(
            substitute("$srcwlx", &values).unwrap_err(),
            "no value for $srcwlx"
        );
        assert_eq!(
            referenced("x{a=\"$service\"} / $qrep"),
            BTreeSet::from(["service".to_owned(), "qrep".to_owned()])
        );
    }
}
