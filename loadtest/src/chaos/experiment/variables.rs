//! `${var}` configuration: the `configuration` section (with `{type: env}` lookups), the
//! `--var` overrides on top, and substitution of `${name}` throughout the document.

use std::collections::BTreeMap;

use regex::Regex;
use serde_json::{Map, Value};

use super::Problem;

pub(super) fn variable() -> Regex {
    // A literal pattern known to be valid.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}").unwrap()
}

/// Replaces `${name}` everywhere in `v`. A string that is exactly one reference takes the
/// variable's value with its type (a number stays a number).
pub(super) fn substitute(
    v: &Value,
    vars: &BTreeMap<String, Value>,
    re: &Regex,
    path: &str,
    errors: &mut Vec<Problem>,
) -> Value {
    match v {
        Value::String(s) => {
            for caps in re.captures_iter(s) {
                if !vars.contains_key(&caps[1]) {
                    errors.push(Problem::new(
                        path,
                        format!("unknown variable ${{{}}}", &caps[1]),
                    ));
                }
            }
            if let Some(caps) = re.captures(s)
                && caps[0].len() == s.len()
                && let Some(value) = vars.get(&caps[1])
            {
                return value.clone();
            }
            let replaced =
                re.replace_all(s, |caps: &regex::Captures<'_>| match vars.get(&caps[1]) {
                    Some(Value::String(t)) => t.clone(),
                    Some(other) => other.to_string(),
                    None => caps[0].to_string(),
                });
            Value::String(replaced.into_owned())
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, x)| substitute(x, vars, re, &format!("{path}[{i}]"), errors))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, x)| (k.clone(), substitute(x, vars, re, &join(path, k), errors)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `path.key`, or `key` at the top.
pub(super) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The configuration values: the document's `configuration`, then `vars` over it.
pub(super) fn configuration(
    doc: &Map<String, Value>,
    vars: &BTreeMap<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Problem>,
) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    match doc.get("configuration") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (k, v) in map {
                let value = match v.as_object() {
                    Some(spec) if spec.get("type").and_then(Value::as_str) == Some("env") => {
                        match spec.get("key").and_then(Value::as_str) {
                            None => {
                                errors.push(Problem::new(
                                    format!("configuration.{k}.key"),
                                    "required",
                                ));
                                continue;
                            }
                            Some(key) => match (env(key), spec.get("default")) {
                                (Some(found), _) => Value::String(found),
                                (None, Some(default)) => default.clone(),
                                (None, None) if vars.contains_key(k) => Value::Null,
                                (None, None) => {
                                    errors.push(Problem::new(
                                        format!("configuration.{k}"),
                                        format!("environment variable {key} is not set and there is no default"),
                                    ));
                                    continue;
                                }
                            },
                        }
                    }
                    _ => v.clone(),
                };
                out.insert(k.clone(), value);
            }
        }
        Some(_) => errors.push(Problem::new("configuration", "must be a mapping")),
    }
    for (k, v) in vars {
        out.insert(k.clone(), v.clone());
    }
    out
}
