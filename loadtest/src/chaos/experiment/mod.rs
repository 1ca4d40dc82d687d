//! Experiment documents in the Chaos Toolkit shape (YAML or JSON): the typed experiment the
//! runner executes, and loading one (read, substitute `${var}`, validate). Every problem is
//! reported with the path of the field at fault (e.g. `method[2].provider.ttl`), and one
//! activity's mistakes do not hide the next's.
//!
//! - `format`: the document as written, as serde types.
//! - `validate`: from those to the types below, with the checks serde cannot make.
//! - `variables`: `configuration`, `--var` and `${name}` substitution.

mod format;
mod validate;
mod variables;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use mesh_api::defaults::Direction;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::tolerance::Tolerance;

/// Why an experiment cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("cannot read experiment {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("experiment is not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("invalid experiment: {}", list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// One thing wrong with an experiment, at the path of the field at fault
/// (`method[2].provider.url`; empty for the document as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

impl Problem {
    pub fn new(path: impl Into<String>, message: impl std::fmt::Display) -> Self {
        Problem {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Why a `--var` argument was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum VarError {
    #[error("--var {0:?}: expected name=value")]
    Shape(String),
    #[error("--var {0:?}: empty name")]
    EmptyName(String),
    #[error("--var {text:?}: {value:?} is not an integer")]
    Integer { text: String, value: String },
    #[error("--var {text:?}: {value:?} is not a number")]
    Float { text: String, value: String },
    #[error("--var {text:?}: unknown type {kind:?} (int, float, str)")]
    Type { text: String, kind: String },
}

/// Probe or action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Probe,
    Action,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Probe => "probe",
            Kind::Action => "action",
        }
    }
}

/// Where the request mix of a `load` provider comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum MixSpec {
    /// The built-in Bookinfo mix.
    Bookinfo,
    /// Every request to the target URL itself.
    Url,
    /// A mix YAML file.
    File(String),
}

/// A `load` provider: an open-model loadgen run in the background.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadSpec {
    pub target: String,
    pub rate: f64,
    pub duration: Duration,
    pub mix: MixSpec,
    pub connections: usize,
    pub timeout: Duration,
    pub window: Duration,
    pub serve: Option<String>,
}

/// A `mesh-fault` provider: one fault lease.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpec {
    pub service: String,
    pub subset: Option<String>,
    /// Istio durations, sent as written once they parse.
    pub delay: Option<String>,
    pub jitter: Option<String>,
    pub abort: Option<u16>,
    /// Bytes per second.
    pub bandwidth: Option<u64>,
    /// Response body bytes let through before the cut.
    pub reset_after: Option<u64>,
    pub blackhole: bool,
    pub slow_close: Option<String>,
    /// `None` leaves each kind's own default.
    pub direction: Option<Direction>,
    pub percentage: f64,
    pub headers: Map<String, Value>,
    /// Explicit lease length; when absent the runner derives a bounded one.
    pub ttl: Option<Duration>,
}

/// What an activity does.
#[derive(Debug, Clone, PartialEq)]
pub enum Provider {
    Http {
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        arguments: Option<Value>,
        timeout: Duration,
    },
    Process {
        path: String,
        arguments: Vec<String>,
        timeout: Duration,
    },
    MeshFault(FaultSpec),
    /// Ends the fault leases this run created (or, with `all`, every fault: the halt).
    MeshFaultClear {
        all: bool,
    },
    Kill {
        workloads: Vec<String>,
        meshctl: Option<String>,
        args: Vec<String>,
        timeout: Duration,
    },
    MeshApply {
        file: String,
        delete: bool,
    },
    Load(LoadSpec),
    LoadStop,
    LoadWindow,
}

impl Provider {
    pub fn type_name(&self) -> &'static str {
        match self {
            Provider::Http { .. } => "http",
            Provider::Process { .. } => "process",
            Provider::MeshFault(_) => "mesh-fault",
            Provider::MeshFaultClear { .. } => "mesh-fault-clear",
            Provider::Kill { .. } => "kill",
            Provider::MeshApply { delete: false, .. } => "mesh-apply",
            Provider::MeshApply { delete: true, .. } => "mesh-delete",
            Provider::Load(_) => "load",
            Provider::LoadStop => "load-stop",
            Provider::LoadWindow => "load-window",
        }
    }

    /// How long the activity may take at most, for the lease bound.
    fn expected(&self) -> Duration {
        match self {
            Provider::Http { timeout, .. }
            | Provider::Process { timeout, .. }
            | Provider::Kill { timeout, .. } => *timeout,
            Provider::Load(l) => l.duration,
            _ => Duration::from_secs(5),
        }
    }
}

/// One probe or action.
#[derive(Debug, Clone)]
pub struct Activity {
    pub kind: Kind,
    pub name: String,
    pub provider: Provider,
    pub tolerance: Option<Tolerance>,
    pub pause_before: Duration,
    pub pause_after: Duration,
    pub background: bool,
    /// The activity as written (after substitution), copied into the journal.
    pub source: Value,
}

/// The steady-state hypothesis.
#[derive(Debug, Clone)]
pub struct Hypothesis {
    pub title: String,
    pub probes: Vec<Activity>,
}

/// The `runtime` section.
#[derive(Debug, Clone, Default)]
pub struct Runtime {
    pub rollback_strategy: Option<String>,
    pub hypothesis_strategy: Option<String>,
    pub frequency: Option<Duration>,
}

/// A validated experiment.
#[derive(Debug, Clone)]
pub struct Experiment {
    pub title: String,
    pub description: String,
    /// The document as written.
    pub raw: Value,
    /// The document after `${var}` substitution.
    pub resolved: Value,
    pub configuration: BTreeMap<String, Value>,
    pub hypothesis: Option<Hypothesis>,
    pub method: Vec<Activity>,
    pub rollbacks: Vec<Activity>,
    pub runtime: Runtime,
}

pub const ROLLBACK_STRATEGIES: [&str; 4] = ["always", "default", "never", "deviated"];
pub const HYPOTHESIS_STRATEGIES: [&str; 5] = [
    "default",
    "before-method-only",
    "after-method-only",
    "during-method-only",
    "continuously",
];

/// Parses YAML or JSON text into a document.
///
/// Texts with brackets nested deeper than [`mesh_api::MAX_FLOW_DEPTH`] are refused before
/// parsing: the YAML parser's time grows with the square of the depth (the fuzzer's
/// `chaos-experiment` target found 20,000 levels holding it for seconds), and no
/// experiment needs more than a few levels. The same bound as Istio YAML's.
pub fn parse_document(text: &str) -> Result<Value, ExperimentError> {
    let depth = mesh_api::flow_depth(text);
    if depth > mesh_api::MAX_FLOW_DEPTH {
        return Err(ExperimentError::Syntax(format!(
            "brackets nested {depth} deep (at most {}); no experiment needs more than a few levels",
            mesh_api::MAX_FLOW_DEPTH
        )));
    }
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| ExperimentError::Syntax(e.to_string()))?
    } else {
        serde_norway::from_str(text).map_err(|e| ExperimentError::Syntax(e.to_string()))?
    };
    if !doc.is_object() {
        return Err(ExperimentError::Syntax(
            "the document must be a mapping (title, description, method, ...)".into(),
        ));
    }
    Ok(doc)
}

/// Reads, substitutes and validates an experiment file. `vars` override `configuration`
/// (`--var k=v`); `env` looks up `{type: env}` configuration values.
pub fn load(
    path: &Path,
    vars: &BTreeMap<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Experiment, ExperimentError> {
    let text = std::fs::read_to_string(path).map_err(|e| ExperimentError::Read {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    Experiment::from_text(&text, vars, env)
}

/// Parses a `--var` argument: `name=value`, `name:int=3`, `name:float=0.5`.
pub fn parse_var(text: &str) -> Result<(String, Value), VarError> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| VarError::Shape(text.to_string()))?;
    let (name, kind) = key.split_once(':').unwrap_or((key, "str"));
    if name.is_empty() {
        return Err(VarError::EmptyName(text.to_string()));
    }
    let value = match kind {
        "str" => Value::String(value.to_string()),
        "int" => Value::from(value.parse::<i64>().map_err(|_| VarError::Integer {
            text: text.to_string(),
            value: value.to_string(),
        })?),
        "float" => Value::from(value.parse::<f64>().map_err(|_| VarError::Float {
            text: text.to_string(),
            value: value.to_string(),
        })?),
        other => {
            return Err(VarError::Type {
                text: text.to_string(),
                kind: other.to_string(),
            });
        }
    };
    Ok((name.to_string(), value))
}

impl Experiment {
    /// Parses and validates experiment text.
    pub fn from_text(
        text: &str,
        vars: &BTreeMap<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Experiment, ExperimentError> {
        let raw = parse_document(text)?;
        Experiment::from_value(raw, vars, env)
    }

    /// Validates a parsed document.
    pub fn from_value(
        raw: Value,
        vars: &BTreeMap<String, Value>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Experiment, ExperimentError> {
        let mut problems = Vec::new();
        let Some(doc) = raw.as_object() else {
            return Err(ExperimentError::Invalid(vec![Problem::new(
                "",
                "the document must be a mapping",
            )]));
        };
        // `configuration` is read as written; everything else after substitution.
        let config = variables::configuration(doc, vars, env, &mut problems);
        let mut body = doc.clone();
        body.remove("configuration");
        let re = variables::variable();
        let resolved_body =
            variables::substitute(&Value::Object(body), &config, &re, "", &mut problems);
        let mut resolved = match resolved_body {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        if let Some(c) = doc.get("configuration") {
            resolved.insert("configuration".into(), c.clone());
        }
        let resolved = Value::Object(resolved);
        let parts = validate::experiment(&resolved, &mut problems);
        let parts = match parts {
            Some(parts) if problems.is_empty() => parts,
            _ => return Err(ExperimentError::Invalid(problems)),
        };
        Ok(Experiment {
            title: parts.title,
            description: parts.description,
            raw: raw.clone(),
            resolved,
            configuration: config,
            hypothesis: parts.hypothesis,
            method: parts.method,
            rollbacks: parts.rollbacks,
            runtime: parts.runtime,
        })
    }

    /// A generous upper bound of how long a run takes (pauses, activity bounds, loads),
    /// used to bound fault leases that have no explicit TTL.
    pub fn expected_duration(&self) -> Duration {
        let all = self
            .hypothesis
            .iter()
            .flat_map(|h| h.probes.iter())
            .chain(&self.method)
            .chain(&self.rollbacks);
        all.map(|a| a.pause_before + a.pause_after + a.provider.expected())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by fuzzing (`chaos-experiment`): deeply nested brackets made the YAML parser
    /// take seconds. Refused before parsing, with the depth and the limit in the message.
    #[test]
    fn deeply_nested_brackets_are_refused_before_parsing() {
        let yaml = format!(
            "title: t\nmethod: {}1{}\n",
            "[".repeat(20_000),
            "]".repeat(20_000)
        );
        let json = format!(
            "{{\"title\": \"t\", \"x\": {}1{}}}",
            "[".repeat(20_000),
            "]".repeat(20_000)
        );
        for text in [yaml, json] {
            let error = Experiment::from_text(&text, &BTreeMap::new(), &no_env).unwrap_err();
            assert!(matches!(error, ExperimentError::Syntax(_)), "{error}");
            let message = error.to_string();
            assert!(
                message.contains("brackets nested 20001 deep (at most 64)")
                    || message.contains("brackets nested 20000 deep (at most 64)"),
                "{message}"
            );
        }
        // At the limit the document is parsed, and judged on its content.
        let at_limit = format!(
            "title: t\ndescription: d\nmethod: []\nx: {}1{}\n",
            "[".repeat(64),
            "]".repeat(64)
        );
        if let Err(ExperimentError::Syntax(reason)) =
            Experiment::from_text(&at_limit, &BTreeMap::new(), &no_env)
        {
            panic!("refused as syntax: {reason}");
        }
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn errors(yaml: &str) -> Vec<String> {
        match Experiment::from_text(yaml, &BTreeMap::new(), &no_env) {
            Err(ExperimentError::Invalid(e)) => e.iter().map(Problem::to_string).collect(),
            Err(other) => vec![other.to_string()],
            Ok(_) => Vec::new(),
        }
    }

    const GOOD: &str = r#"
title: Ratings delay for ${user}
description: a test
configuration:
  app: "http://127.0.0.1:9080"
  user: jason
  rate: 5
steady-state-hypothesis:
  title: page loads
  probes:
    - {type: probe, name: page, tolerance: 200, provider: {type: http, url: "${app}/productpage", timeout: 3}}
method:
  - type: action
    name: delay
    provider: {type: mesh-fault, service: ratings, delay: 7s, headers: {end-user: "${user}"}}
    pauses: {after: 2}
  - {type: action, name: load, background: true, provider: {type: load, target: "${app}", rate: "${rate}", duration: 10s}}
rollbacks:
  - {type: action, name: clear, provider: {type: mesh-fault-clear}}
"#;

    #[test]
    fn a_valid_experiment_is_substituted_and_typed() {
        let e = Experiment::from_text(GOOD, &BTreeMap::new(), &no_env).unwrap();
        assert_eq!(e.title, "Ratings delay for jason");
        let Provider::Http { url, timeout, .. } =
            &e.hypothesis.as_ref().unwrap().probes[0].provider
        else {
            panic!("not http")
        };
        assert_eq!(url, "http://127.0.0.1:9080/productpage");
        assert_eq!(*timeout, Duration::from_secs(3));
        let Provider::MeshFault(f) = &e.method[0].provider else {
            panic!("not a fault")
        };
        assert_eq!(f.headers["end-user"], "jason");
        assert_eq!(f.delay.as_deref(), Some("7s"));
        // A whole-string reference keeps the variable's type.
        let Provider::Load(l) = &e.method[1].provider else {
            panic!("not load")
        };
        assert_eq!(l.rate, 5.0);
        assert_eq!(e.method[0].pause_after, Duration::from_secs(2));
    }

    #[test]
    fn vars_override_configuration() {
        let mut vars = BTreeMap::new();
        vars.insert("user".to_string(), Value::String("alice".into()));
        let e = Experiment::from_text(GOOD, &vars, &no_env).unwrap();
        assert_eq!(e.title, "Ratings delay for alice");
    }

    #[test]
    fn env_configuration_and_defaults() {
        let doc = "title: t\ndescription: d\nconfiguration:\n  a: {type: env, key: A_URL, default: 'http://x'}\n  b: {type: env, key: B_URL}\nmethod: []\n";
        let env = |k: &str| (k == "B_URL").then(|| "http://b".to_string());
        let e = Experiment::from_text(doc, &BTreeMap::new(), &env).unwrap();
        assert_eq!(e.configuration["a"], "http://x");
        assert_eq!(e.configuration["b"], "http://b");
        assert_eq!(
            errors(doc),
            vec!["configuration.b: environment variable B_URL is not set and there is no default"]
        );
    }

    #[test]
    fn errors_name_the_field() {
        let doc = r#"
title: t
description: d
steady-state-hypothesis:
  title: h
  probes:
    - {type: probe, name: p, provider: {type: http, url: "http://x"}}
method:
  - {type: action, name: a, provider: {type: mesh-fault, service: ratings, delay: 7s}}
  - {type: probe, name: b, provider: {type: process, path: /bin/true}}
  - {type: action, name: c, provider: {type: http}}
  - {type: action, name: d, provider: {type: mesh-fault, service: ratings, percentage: 120}}
  - {type: action, name: e, provider: {type: load, target: "http://x", rate: 10}, pauses: {after: soon}}
  - {type: action, name: f, provider: {type: kill, workload: reviews-v1, signal: STOP}, extra: 1}
  - {type: action, name: g, provider: {type: http, url: "${nope}"}}
  - {type: action, name: h, provider: {type: kill}}
  - {type: action, name: i, provider: {type: load-stop, rate: 1}}
  - {type: action, name: j, provider: {type: mesh-fault, service: r, bandwidth: fast, jitter: 1s, direction: up}}
  - {type: action, name: k, provider: {type: mesh-fault, service: r, reset: false, reset_after: 10}}
"#;
        let e = errors(doc);
        let expected = [
            "steady-state-hypothesis.probes[0]: missing tolerance",
            "method[2].provider: missing field `url`",
            "method[3].provider: needs at least one of delay, abort, bandwidth, reset, blackhole, slow_close",
            "method[3].provider.percentage: must be between 0 and 100",
            "method[4].pauses.after: invalid duration \"soon\": expected a number followed by h, m, s, ms, us or ns (e.g. \"7s\", \"0.5s\", \"100ms\")",
            "method[4].provider.duration: required, e.g. 60s (every run is bounded)",
            "method[5].extra: unknown field `extra`, expected one of `type`, `name`, `provider`, `tolerance`, `pauses`, `background`, `controls`, `configuration`, `secrets`",
            "method[5].provider.signal: unknown variant `STOP`, expected one of `KILL`, `TERM`, `INT`, `HUP`",
            "method[6].provider.url: unknown variable ${nope}",
            "method[7].provider: missing field `workload`",
            "method[8].provider.rate: unknown field `rate`, there are no fields",
            "method[9].provider.jitter: needs a delay to vary",
            "method[9].provider.bandwidth: invalid rate \"fast\": expected a whole number with B, KB, KiB, MB or MiB, such as 2KB/s",
            "method[9].provider.direction: must be request or response",
            "method[10].provider.reset_after: contradicts reset: false",
        ];
        for want in expected {
            assert!(
                e.iter().any(|got| got == want),
                "missing {want:?} in {e:#?}"
            );
        }
    }

    #[test]
    fn top_level_problems() {
        assert_eq!(
            errors("description: d\nmethod: []\n"),
            vec!["missing field `title`"]
        );
        assert_eq!(
            errors("title: t\ndescription: d\n"),
            vec!["method: required (may be an empty list)"]
        );
        assert_eq!(
            errors(
                "title: t\ndescription: d\nmethod: []\nruntime: {rollbacks: {strategy: sometimes}}\n"
            ),
            vec!["runtime.rollbacks.strategy: must be one of always, default, never, deviated"]
        );
        assert!(
            errors("title: [unclosed\n")[0].starts_with("experiment is not valid YAML or JSON")
        );
        assert!(errors("[1, 2]")[0].contains("must be a mapping"));
    }

    #[test]
    fn provider_types_are_named_and_python_is_explained() {
        let doc = |provider: &str| {
            format!(
                "title: t\ndescription: d\nmethod:\n  - {{type: action, name: a, provider: {provider}}}\n"
            )
        };
        assert_eq!(
            errors(&doc("{type: nope}")),
            vec![
                "method[0].provider.type: unknown variant `nope`, expected one of `http`, `process`, `mesh-fault`, `mesh-fault-clear`, `kill`, `mesh-apply`, `mesh-delete`, `load`, `load-stop`, `load-window`"
            ]
        );
        assert!(
            errors(&doc("{type: python, module: x}"))[0]
                .starts_with("method[0].provider.type: python providers are not supported")
        );
        assert_eq!(
            errors(&doc("{url: 'http://x'}")),
            vec!["method[0].provider: missing field `type`"]
        );
        // A problem inside a provider keeps its whole path.
        assert_eq!(
            errors(&doc(
                "{type: mesh-fault, service: r, abort: 503, ttl: soon}"
            )),
            vec![
                "method[0].provider.ttl: invalid duration \"soon\": expected a number followed by h, m, s, ms, us or ns (e.g. \"7s\", \"0.5s\", \"100ms\")"
            ]
        );
    }

    #[test]
    fn refs_reuse_declared_activities() {
        let doc = "title: t\ndescription: d\nmethod:\n  - {type: probe, name: p, provider: {type: process, path: /bin/true}}\n  - {ref: p}\n  - {ref: q}\n";
        assert_eq!(
            errors(doc),
            vec!["method[2].ref: no earlier activity is named \"q\""]
        );
    }

    #[test]
    fn json_documents_are_accepted() {
        let doc = r#"{"title": "t", "description": "d", "method": [{"type": "action", "name": "x", "provider": {"type": "mesh-apply", "file": "a.yaml"}}]}"#;
        assert!(errors(doc).is_empty());
    }

    #[test]
    fn var_arguments() {
        assert_eq!(parse_var("a=b").unwrap(), ("a".into(), Value::from("b")));
        assert_eq!(parse_var("n:int=3").unwrap(), ("n".into(), Value::from(3)));
        assert!(
            parse_var("n:int=x")
                .unwrap_err()
                .to_string()
                .contains("not an integer")
        );
        assert!(
            parse_var("novalue")
                .unwrap_err()
                .to_string()
                .contains("name=value")
        );
    }
}
