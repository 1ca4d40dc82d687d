//! Steady-state tolerances: Chaos Toolkit's forms with its exact rules, plus typed metric
//! tolerances for the load window (`p99_ms < 300`, `{type: slo, ...}`).
//!
//! Every check returns the measured value next to the expectation, so the journal and the
//! report can say "expected p99_ms < 300, measured 512.3" instead of just "failed".

use std::sync::OnceLock;

use regex::Regex;
use serde_json::{Map, Value, json};

use super::jsonpath::JsonPath;

/// A comparison in a typed tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "<" | "lt" => Op::Lt,
            "<=" | "le" => Op::Le,
            ">" | "gt" => Op::Gt,
            ">=" | "ge" => Op::Ge,
            "==" | "eq" => Op::Eq,
            "!=" | "ne" => Op::Ne,
            _ => return None,
        })
    }

    fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// One typed condition on a metric of the probe's output, e.g. `p99_ms < 300`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub metric: String,
    pub op: Op,
    pub value: f64,
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.metric, self.op.symbol(), self.value)
    }
}

fn expression() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        // The pattern is a literal known to be valid.
        #[allow(clippy::unwrap_used)]
        Regex::new(
            r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(-?[0-9]+(?:\.[0-9]+)?)\s*$",
        )
        .unwrap()
    })
}

impl Condition {
    /// Parses `metric op number`; `None` when the text is not of that shape.
    pub fn parse(text: &str) -> Option<Condition> {
        let caps = expression().captures(text)?;
        Some(Condition {
            metric: caps[1].to_string(),
            op: Op::parse(&caps[2])?,
            value: caps[3].parse().ok()?,
        })
    }
}

/// An error budget attached to an SLO tolerance: `availability` percent of requests must
/// succeed (no transport error, no 5xx) and, with `latency_ms`, also be answered within
/// that many milliseconds ("99.5 % of requests under 500 ms"). The report shows how much
/// of the budget each phase used.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub availability: f64,
    pub latency_ms: Option<u32>,
}

/// Why a tolerance was refused; the message names the offending field relative to
/// `tolerance` (`range: must be two numbers [min, max]`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct ToleranceError(String);

impl From<String> for ToleranceError {
    fn from(message: String) -> Self {
        ToleranceError(message)
    }
}

impl From<&str> for ToleranceError {
    fn from(message: &str) -> Self {
        ToleranceError(message.to_string())
    }
}

/// A parsed tolerance.
#[derive(Debug, Clone)]
pub enum Tolerance {
    Bool(bool),
    /// A string: equality, or a typed condition when the value has that metric.
    Text(String, Option<Condition>),
    Integer(i64),
    /// Two elements: an inclusive range, or membership for a value with a `status`.
    Pair(Value, Value),
    Members(Vec<Value>),
    Range {
        min: f64,
        max: f64,
        target: Option<String>,
    },
    Regex {
        pattern: Regex,
        target: Option<String>,
    },
    JsonPath {
        path: JsonPath,
        source: String,
        expect: Option<Value>,
        count: Option<usize>,
        target: Option<String>,
    },
    Slo {
        conditions: Vec<Condition>,
        budget: Option<Budget>,
    },
}

impl Tolerance {
    /// Parses a tolerance; the error names the offending field relative to `tolerance`.
    pub fn parse(v: &Value) -> Result<Tolerance, ToleranceError> {
        match v {
            Value::Bool(b) => Ok(Tolerance::Bool(*b)),
            Value::String(s) => Ok(Tolerance::Text(s.clone(), Condition::parse(s))),
            Value::Number(n) => n.as_i64().map(Tolerance::Integer).ok_or_else(|| {
                "a bare decimal number is not a tolerance; use {type: range, range: [min, max]}"
                    .into()
            }),
            Value::Array(items) if items.len() == 2 => {
                Ok(Tolerance::Pair(items[0].clone(), items[1].clone()))
            }
            Value::Array(items) if items.is_empty() => {
                Err("an empty list is not a tolerance".into())
            }
            Value::Array(items) => Ok(Tolerance::Members(items.clone())),
            Value::Object(map) => parse_object(map),
            Value::Null => Err("missing tolerance".into()),
        }
    }

    /// Checks `value` (a probe's output) against the tolerance.
    pub fn check(&self, value: &Value) -> Verdict {
        check(self, value)
    }

    /// The SLO budget, if this is an SLO tolerance with one.
    pub fn budget(&self) -> Option<Budget> {
        match self {
            Tolerance::Slo { budget, .. } => *budget,
            _ => None,
        }
    }
}

/// Which field of a probe's output a tolerance looks at; `None` for the whole output.
type TargetField = Option<String>;

fn target_of(map: &Map<String, Value>) -> Result<TargetField, ToleranceError> {
    match map.get("target") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err("target: must be a string".into()),
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn parse_object(map: &Map<String, Value>) -> Result<Tolerance, ToleranceError> {
    let kind = match map.get("type") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err("type: must be a string".into()),
        None => return Err("type: required".into()),
    };
    match kind {
        "range" => {
            let range = map
                .get("range")
                .and_then(Value::as_array)
                .ok_or("range: required, a list [min, max]")?;
            let (Some(min), Some(max)) = (
                range.first().and_then(number),
                range.get(1).and_then(number),
            ) else {
                return Err("range: must be two numbers [min, max]".into());
            };
            if range.len() != 2 {
                return Err("range: must be two numbers [min, max]".into());
            }
            if min > max {
                return Err(format!("range: minimum {min} is above maximum {max}").into());
            }
            Ok(Tolerance::Range {
                min,
                max,
                target: target_of(map)?,
            })
        }
        "regex" => {
            let pattern = map
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or("pattern: required")?;
            let pattern = Regex::new(pattern).map_err(|e| format!("pattern: {e}"))?;
            Ok(Tolerance::Regex {
                pattern,
                target: target_of(map)?,
            })
        }
        "jsonpath" => {
            let source = map
                .get("path")
                .and_then(Value::as_str)
                .ok_or("path: required")?;
            let path = JsonPath::parse(source).map_err(|e| format!("path: {e}"))?;
            let count = match map.get("count") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().ok_or("count: must be a whole number")? as usize),
            };
            Ok(Tolerance::JsonPath {
                path,
                source: source.to_string(),
                expect: map.get("expect").cloned(),
                count,
                target: target_of(map)?,
            })
        }
        "slo" => parse_slo(map),
        "probe" => Err(
            "type: nested probe tolerances are not supported; use jsonpath, range or regex".into(),
        ),
        other => Err(format!(
            "type: unknown tolerance type {other:?} (expected range, regex, jsonpath or slo)"
        )
        .into()),
    }
}

fn parse_slo(map: &Map<String, Value>) -> Result<Tolerance, ToleranceError> {
    let mut conditions = Vec::new();
    let mut budget = None;
    let mut latency_ms = None;
    for (key, v) in map {
        match key.as_str() {
            "type" => {}
            "availability" => {
                let a = number(v)
                    .filter(|a| *a > 0.0 && *a <= 100.0)
                    .ok_or("availability: must be a percentage in (0, 100]")?;
                budget = Some(Budget {
                    availability: a,
                    latency_ms: None,
                });
                conditions.push(Condition {
                    metric: "error_ratio".into(),
                    op: Op::Le,
                    value: round(1.0 - a / 100.0),
                });
            }
            "latency_ms" => {
                let t = v
                    .as_u64()
                    .and_then(|t| u32::try_from(t).ok())
                    .filter(|t| crate::load::stats::SLO_THRESHOLDS_MS.contains(t))
                    .ok_or_else(|| {
                        format!(
                            "latency_ms: must be one of {:?}",
                            crate::load::stats::SLO_THRESHOLDS_MS
                        )
                    })?;
                latency_ms = Some(t);
            }
            "latency" => {
                let obj = v
                    .as_object()
                    .ok_or("latency: must be {percentile, under_ms}")?;
                let p = obj.get("percentile").and_then(Value::as_u64);
                let metric = match p {
                    Some(50) => "p50_ms",
                    Some(95) => "p95_ms",
                    Some(99) => "p99_ms",
                    _ => return Err("latency.percentile: must be 50, 95 or 99".into()),
                };
                let under = obj
                    .get("under_ms")
                    .and_then(number)
                    .ok_or("latency.under_ms: required, a number")?;
                conditions.push(Condition {
                    metric: metric.into(),
                    op: Op::Le,
                    value: under,
                });
            }
            metric => {
                let bad =
                    || format!("{metric}: must be a comparison like {{lt: 300}} or \"< 300\"");
                match v {
                    Value::Object(cmp) => {
                        if cmp.is_empty() {
                            return Err(bad().into());
                        }
                        for (op, limit) in cmp {
                            let op = Op::parse(op).ok_or_else(|| {
                                format!(
                                    "{metric}.{op}: unknown comparison (use lt, le, gt, ge, eq, ne)"
                                )
                            })?;
                            let value = number(limit).ok_or_else(bad)?;
                            conditions.push(Condition {
                                metric: metric.to_string(),
                                op,
                                value,
                            });
                        }
                    }
                    Value::String(s) => {
                        let c = Condition::parse(&format!("{metric} {s}")).ok_or_else(bad)?;
                        conditions.push(c);
                    }
                    _ => return Err(bad().into()),
                }
            }
        }
    }
    if conditions.is_empty() {
        return Err("an slo tolerance needs at least one objective".into());
    }
    if let Some(t) = latency_ms {
        let Some(b) = budget.as_mut() else {
            return Err("latency_ms: needs an availability, e.g. availability: 99.5".into());
        };
        b.latency_ms = Some(t);
        // The objective becomes "bad (failed or slower than t) at most 1 - availability".
        for c in conditions.iter_mut().filter(|c| c.metric == "error_ratio") {
            c.metric = format!("bad_ratio_{t}ms");
        }
    }
    Ok(Tolerance::Slo { conditions, budget })
}

fn round(x: f64) -> f64 {
    (x * 1e9).round() / 1e9
}

/// The outcome of one tolerance check.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub met: bool,
    /// The expectation in words, e.g. `status in [200, 299]`.
    pub expected: String,
    /// What was compared against it.
    pub measured: Value,
}

fn status_of(value: &Value) -> Option<&Value> {
    value.as_object().and_then(|m| m.get("status"))
}

fn targeted<'a>(value: &'a Value, target: &Option<String>) -> Option<&'a Value> {
    match target {
        Some(t) => value.get(t.as_str()),
        None => Some(value),
    }
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Reads a metric of a load window, including the derived `achieved_ratio`
/// (achieved over requested rate).
pub fn metric(value: &Value, name: &str) -> Option<f64> {
    if let Some(v) = value.get(name).and_then(number) {
        return Some(v);
    }
    if name == "achieved_ratio" {
        let achieved = value.get("achieved_rps").and_then(number)?;
        let requested = value.get("requested_rps").and_then(number)?;
        return Some(if requested > 0.0 {
            achieved / requested
        } else {
            1.0
        });
    }
    None
}

fn conditions(list: &[Condition], value: &Value) -> Verdict {
    let mut met = true;
    let mut measured = Map::new();
    for c in list {
        match metric(value, &c.metric) {
            Some(m) => {
                met &= c.op.holds(m, c.value);
                measured.insert(c.metric.clone(), json!(m));
            }
            None => {
                met = false;
                measured.insert(c.metric.clone(), Value::Null);
            }
        }
    }
    Verdict {
        met,
        expected: list
            .iter()
            .map(Condition::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        measured: Value::Object(measured),
    }
}

fn check(tolerance: &Tolerance, value: &Value) -> Verdict {
    let verdict = |met, expected: String, measured: &Value| Verdict {
        met,
        expected,
        measured: measured.clone(),
    };
    match tolerance {
        Tolerance::Bool(b) => verdict(value == &Value::Bool(*b), format!("== {b}"), value),
        Tolerance::Text(s, condition) => match condition {
            Some(c) if metric(value, &c.metric).is_some() => {
                conditions(std::slice::from_ref(c), value)
            }
            _ => verdict(value.as_str() == Some(s), format!("== {s:?}"), value),
        },
        Tolerance::Integer(n) => match status_of(value) {
            Some(status) => verdict(status == &json!(n), format!("status == {n}"), status),
            None => verdict(value == &json!(n), format!("== {n}"), value),
        },
        Tolerance::Pair(a, b) => match status_of(value) {
            // Chaos Toolkit's rule: on a value with a status, two elements are a set.
            Some(status) => verdict(
                status == a || status == b,
                format!("status in [{a}, {b}]"),
                status,
            ),
            None => {
                let inside = match (number(a), number(b), number(value)) {
                    (Some(lo), Some(hi), Some(v)) => lo <= v && v <= hi,
                    _ => false,
                };
                verdict(inside, format!("between {a} and {b} inclusive"), value)
            }
        },
        Tolerance::Members(items) => {
            let v = status_of(value).unwrap_or(value);
            let shown = items.iter().map(Value::to_string).collect::<Vec<_>>();
            verdict(items.contains(v), format!("in [{}]", shown.join(", ")), v)
        }
        Tolerance::Range { min, max, target } => {
            let v = targeted(value, target).cloned().unwrap_or(Value::Null);
            let met = number(&v).is_some_and(|x| *min <= x && x <= *max);
            let what = target.as_deref().unwrap_or("value");
            verdict(met, format!("{what} in range [{min}, {max}]"), &v)
        }
        Tolerance::Regex { pattern, target } => {
            let v = targeted(value, target).cloned().unwrap_or(Value::Null);
            let met = !v.is_null() && pattern.is_match(&text_of(&v));
            let what = target.as_deref().unwrap_or("value");
            verdict(met, format!("{what} matches /{}/", pattern.as_str()), &v)
        }
        Tolerance::JsonPath {
            path,
            source,
            expect,
            count,
            target,
        } => {
            let v = targeted(value, target).cloned().unwrap_or(Value::Null);
            // Strings are JSON documents to look into (a text body, say).
            let doc = match &v {
                Value::String(s) => serde_json::from_str(s).unwrap_or(Value::Null),
                other => other.clone(),
            };
            let found: Vec<Value> = path.find(&doc).into_iter().cloned().collect();
            let mut met = match expect {
                None => !found.is_empty(),
                Some(Value::Array(list)) => &found == list,
                Some(one) => found == vec![one.clone()],
            };
            let mut expected = match expect {
                None => format!("{source} matches"),
                Some(e) => format!("{source} == {e}"),
            };
            if let Some(n) = count {
                met = if expect.is_some() {
                    met && found.len() == *n
                } else {
                    found.len() == *n
                };
                expected = format!("{expected}, {n} match(es)");
            }
            verdict(met, expected, &Value::Array(found))
        }
        Tolerance::Slo {
            conditions: list, ..
        } => conditions(list, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn met(tolerance: Value, value: Value) -> bool {
        Tolerance::parse(&tolerance).unwrap().check(&value).met
    }

    fn http(status: u16, body: Value) -> Value {
        json!({"status": status, "headers": {}, "body": body})
    }

    #[test]
    fn booleans_and_strings_compare_exactly() {
        assert!(met(json!(true), json!(true)));
        assert!(!met(json!(true), json!(1)));
        // No unwrapping of `status` for booleans.
        assert!(!met(json!(true), json!({"status": true})));
        assert!(met(json!("OK"), json!("OK")));
        assert!(!met(json!("OK"), json!("ok")));
    }

    #[test]
    fn integers_unwrap_the_status_of_http_results() {
        assert!(met(json!(200), http(200, json!(""))));
        assert!(!met(json!(200), http(503, json!(""))));
        assert!(met(json!(0), json!(0)));
        assert!(!met(json!(0), json!(1)));
    }

    #[test]
    fn a_pair_is_a_range_for_numbers_but_membership_for_http_results() {
        assert!(met(json!([4, 9]), json!(6)));
        assert!(met(json!([4, 9]), json!(4)));
        assert!(!met(json!([4, 9]), json!(10)));
        // Chaos Toolkit's rule: [200, 299] on an HTTP probe means 200 or 299.
        assert!(met(json!([200, 299]), http(299, json!(""))));
        assert!(!met(json!([200, 299]), http(204, json!(""))));
    }

    #[test]
    fn longer_lists_are_membership() {
        assert!(met(json!([4, 9, 78]), json!(78)));
        assert!(!met(json!([4, 9, 78]), json!(5)));
        assert!(met(json!([200, 201, 204]), http(204, json!(""))));
    }

    #[test]
    fn range_with_and_without_target() {
        assert!(met(json!({"type": "range", "range": [1, 3]}), json!(2.5)));
        assert!(!met(json!({"type": "range", "range": [1, 3]}), json!(3.5)));
        let tol = json!({"type": "range", "range": [200, 299], "target": "status"});
        assert!(met(tol.clone(), http(204, json!(""))));
        assert!(!met(tol, http(500, json!(""))));
        // Without a target, an HTTP result is not a number.
        assert!(!met(
            json!({"type": "range", "range": [200, 299]}),
            http(204, json!(""))
        ));
    }

    #[test]
    fn regex_searches_the_value_or_its_target() {
        let tol = json!({"type": "regex", "pattern": "Reviewer\\d", "target": "body"});
        assert!(met(tol.clone(), http(200, json!("<p>Reviewer1</p>"))));
        assert!(!met(tol, http(200, json!("<p>no one</p>"))));
        assert!(met(
            json!({"type": "regex", "pattern": "^ok"}),
            json!("ok then")
        ));
    }

    #[test]
    fn jsonpath_with_and_without_expect_and_count() {
        let body = json!({"reviews": [{"stars": 5}, {"stars": 4}]});
        let value = http(200, body.clone());
        let at = |extra: Value| {
            let mut t = json!({"type": "jsonpath", "path": "$.reviews[*].stars", "target": "body"});
            t.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            t
        };
        assert!(met(at(json!({})), value.clone()));
        assert!(met(at(json!({"expect": [5, 4]})), value.clone()));
        assert!(!met(at(json!({"expect": 5})), value.clone()));
        assert!(met(at(json!({"count": 2})), value.clone()));
        assert!(!met(at(json!({"count": 3})), value.clone()));
        assert!(met(
            json!({"type": "jsonpath", "path": "$.reviews[0].stars", "expect": 5, "target": "body"}),
            value.clone()
        ));
        // A text body is parsed as JSON first.
        let text = http(200, json!(body.to_string()));
        assert!(met(at(json!({"expect": [5, 4]})), text));
        // No match at all without expect: not met.
        assert!(!met(json!({"type": "jsonpath", "path": "$.nothing"}), body));
    }

    #[test]
    fn typed_expressions_on_load_windows() {
        let window = json!({"p99_ms": 250.0, "error_ratio": 0.02, "achieved_rps": 45.0, "requested_rps": 50.0});
        assert!(met(json!("p99_ms < 300"), window.clone()));
        assert!(!met(json!("p99_ms < 200"), window.clone()));
        assert!(met(json!("achieved_ratio >= 0.9"), window.clone()));
        let v = Tolerance::parse(&json!("p99_ms < 200"))
            .unwrap()
            .check(&window);
        assert_eq!(v.expected, "p99_ms < 200");
        assert_eq!(v.measured, json!({"p99_ms": 250.0}));
        // A string that is not a metric of the value stays an equality check.
        assert!(met(json!("p99_ms < 300"), json!("p99_ms < 300")));
    }

    #[test]
    fn latency_slos_count_slow_answers_against_the_budget() {
        let tol = json!({"type": "slo", "availability": 99.5, "latency_ms": 500});
        let t = Tolerance::parse(&tol).unwrap();
        assert_eq!(
            t.budget(),
            Some(Budget {
                availability: 99.5,
                latency_ms: Some(500)
            })
        );
        let ok = json!({"error_ratio": 0.0, "bad_ratio_500ms": 0.004});
        let slow = json!({"error_ratio": 0.0, "bad_ratio_500ms": 0.02});
        assert!(t.check(&ok).met, "0.4 % bad is within a 99.5 % objective");
        assert!(!t.check(&slow).met, "2 % slower than 500 ms misses it");
        let bad =
            Tolerance::parse(&json!({"type": "slo", "availability": 99.5, "latency_ms": 123}))
                .unwrap_err()
                .to_string();
        assert!(bad.starts_with("latency_ms: must be one of"), "{bad}");
        assert!(
            Tolerance::parse(&json!({"type": "slo", "latency_ms": 500})).is_err(),
            "needs an availability"
        );
    }

    #[test]
    fn slo_objects_check_every_objective_and_keep_the_budget() {
        let tol = json!({"type": "slo", "p99_ms": {"lt": 3000}, "error_ratio": "< 0.01", "availability": 99.5});
        let t = Tolerance::parse(&tol).unwrap();
        assert_eq!(
            t.budget(),
            Some(Budget {
                availability: 99.5,
                latency_ms: None
            })
        );
        let good = json!({"p99_ms": 120.0, "error_ratio": 0.004});
        assert!(t.check(&good).met);
        let bad = json!({"p99_ms": 120.0, "error_ratio": 0.006});
        let v = t.check(&bad);
        assert!(!v.met);
        assert_eq!(v.measured["error_ratio"], json!(0.006));
        let latency = json!({"type": "slo", "latency": {"percentile": 99, "under_ms": 500}});
        assert!(met(latency.clone(), json!({"p99_ms": 499.0})));
        assert!(!met(latency, json!({"p99_ms": 501.0})));
        // A missing metric never passes.
        assert!(!met(json!({"type": "slo", "p95_ms": {"lt": 1}}), json!({})));
    }

    #[test]
    fn malformed_tolerances_are_explained() {
        let err = |v: Value| Tolerance::parse(&v).unwrap_err().to_string();
        assert!(err(json!(0.5)).contains("range"));
        assert_eq!(
            err(json!({"type": "range"})),
            "range: required, a list [min, max]"
        );
        assert!(err(json!({"type": "regex", "pattern": "("})).starts_with("pattern: "));
        assert_eq!(err(json!({"type": "jsonpath"})), "path: required");
        assert!(err(json!({"type": "nope"})).contains("unknown tolerance type"));
        assert!(err(json!({"type": "slo", "p99_ms": {"below": 3}})).starts_with("p99_ms.below"));
        assert_eq!(
            err(json!({"type": "slo", "latency": {"percentile": 90, "under_ms": 1}})),
            "latency.percentile: must be 50, 95 or 99"
        );
    }
}
