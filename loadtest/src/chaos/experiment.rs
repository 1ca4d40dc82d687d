//! Experiment documents in the Chaos Toolkit shape (YAML or JSON): reading, `${var}`
//! configuration, and validation into typed activities. Every problem is reported with the
//! path of the field at fault (`method[2].provider.url: required`), all at once.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use regex::Regex;
use serde_json::{Map, Value};

use super::tolerance::Tolerance;
use mesh_api::duration::parse_duration;

/// Why an experiment cannot be run.
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("cannot read experiment {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("experiment is not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("invalid experiment: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Probe or action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub delay: Option<String>,
    pub abort: Option<u16>,
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
pub fn parse_document(text: &str) -> Result<Value, ExperimentError> {
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
pub fn parse_var(text: &str) -> Result<(String, Value), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("--var {text:?}: expected name=value"))?;
    let (name, kind) = key.split_once(':').unwrap_or((key, "str"));
    if name.is_empty() {
        return Err(format!("--var {text:?}: empty name"));
    }
    let value = match kind {
        "str" => Value::String(value.to_string()),
        "int" => Value::from(
            value
                .parse::<i64>()
                .map_err(|_| format!("--var {text:?}: {value:?} is not an integer"))?,
        ),
        "float" => Value::from(
            value
                .parse::<f64>()
                .map_err(|_| format!("--var {text:?}: {value:?} is not a number"))?,
        ),
        other => {
            return Err(format!(
                "--var {text:?}: unknown type {other:?} (int, float, str)"
            ));
        }
    };
    Ok((name.to_string(), value))
}

fn variable() -> Regex {
    // A literal pattern known to be valid.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}").unwrap()
}

/// Replaces `${name}` everywhere in `v`. A string that is exactly one reference takes the
/// variable's value with its type (a number stays a number).
fn substitute(
    v: &Value,
    vars: &BTreeMap<String, Value>,
    re: &Regex,
    path: &str,
    errors: &mut Vec<String>,
) -> Value {
    match v {
        Value::String(s) => {
            for caps in re.captures_iter(s) {
                if !vars.contains_key(&caps[1]) {
                    errors.push(format!("{path}: unknown variable ${{{}}}", &caps[1]));
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

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Reads fields of one mapping, collecting errors with their paths.
struct Fields<'a> {
    map: &'a Map<String, Value>,
    path: String,
    errors: &'a mut Vec<String>,
}

impl Fields<'_> {
    fn err(&mut self, key: &str, message: impl std::fmt::Display) {
        self.errors
            .push(format!("{}: {message}", join(&self.path, key)));
    }

    fn string(&mut self, key: &str) -> Option<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => {
                self.err(key, "must be a string");
                None
            }
        }
    }

    fn required(&mut self, key: &str) -> String {
        match self.string(key) {
            Some(s) if !s.is_empty() => s,
            Some(_) => {
                self.err(key, "must not be empty");
                String::new()
            }
            None => {
                if !self.map.contains_key(key) || self.map[key].is_null() {
                    self.err(key, "required");
                }
                String::new()
            }
        }
    }

    fn number(&mut self, key: &str) -> Option<f64> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => n.as_f64(),
            Some(_) => {
                self.err(key, "must be a number");
                None
            }
        }
    }

    fn boolean(&mut self, key: &str) -> bool {
        match self.map.get(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                self.err(key, "must be true or false");
                false
            }
        }
    }

    /// A duration: a number of seconds (Chaos Toolkit style) or `500ms`, `7s`, `2m`.
    fn duration(&mut self, key: &str) -> Option<Duration> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(s) if s >= 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
                _ => {
                    self.err(key, "must be a non-negative number of seconds");
                    None
                }
            },
            Some(Value::String(s)) => match parse_duration(s) {
                Ok(d) => Some(d),
                Err(e) => {
                    self.err(key, e);
                    None
                }
            },
            Some(_) => {
                self.err(key, "must be a duration like 30s or a number of seconds");
                None
            }
        }
    }

    fn strings(&mut self, key: &str) -> Vec<String> {
        match self.map.get(key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
            Some(_) => {
                self.err(key, "must be a string or a list of strings");
                Vec::new()
            }
        }
    }

    fn unknown(&mut self, allowed: &[&str]) {
        let extra: Vec<String> = self
            .map
            .keys()
            .filter(|k| !allowed.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in extra {
            let path = self.path.clone();
            self.errors.push(format!("{path}: unknown field '{k}'"));
        }
    }
}

fn provider(v: Option<&Value>, path: &str, errors: &mut Vec<String>) -> Option<Provider> {
    let Some(map) = v.and_then(Value::as_object) else {
        errors.push(format!(
            "{path}: {}",
            if v.is_some() {
                "must be a mapping"
            } else {
                "required"
            }
        ));
        return None;
    };
    let mut f = Fields {
        map,
        path: path.to_string(),
        errors,
    };
    let kind = f.required("type");
    let ten = Duration::from_secs(10);
    let p = match kind.as_str() {
        "http" => {
            f.unknown(&[
                "type",
                "url",
                "method",
                "headers",
                "arguments",
                "timeout",
                "verify_tls",
                "max_retries",
                "secrets",
                "expected_status",
            ]);
            let url = f.required("url");
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                f.err(
                    "url",
                    format!("{url:?} must start with http:// or https://"),
                );
            }
            let method = f
                .string("method")
                .unwrap_or_else(|| "GET".into())
                .to_uppercase();
            let headers = match map.get("headers") {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Object(h)) => h
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            v.as_str().map_or_else(|| v.to_string(), str::to_string),
                        )
                    })
                    .collect(),
                Some(_) => {
                    f.err("headers", "must be a mapping of names to values");
                    Vec::new()
                }
            };
            // Chaos Toolkit also allows [connect, read]: the larger bounds the whole call.
            let timeout = match map.get("timeout") {
                Some(Value::Array(pair)) => pair
                    .iter()
                    .filter_map(Value::as_f64)
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
                    .map(Duration::from_secs_f64),
                _ => f.duration("timeout"),
            };
            Provider::Http {
                url,
                method,
                headers,
                arguments: map.get("arguments").cloned(),
                timeout: timeout.unwrap_or(ten),
            }
        }
        "process" => {
            f.unknown(&["type", "path", "arguments", "timeout", "secrets"]);
            Provider::Process {
                path: f.required("path"),
                arguments: f.strings("arguments"),
                timeout: f.duration("timeout").unwrap_or(Duration::from_secs(60)),
            }
        }
        "mesh-fault" => {
            f.unknown(&[
                "type",
                "service",
                "subset",
                "delay",
                "abort",
                "percentage",
                "headers",
                "ttl",
            ]);
            let service = f.required("service");
            let subset = f.string("subset");
            let delay = f.string("delay");
            if let Some(d) = &delay
                && let Err(e) = parse_duration(d)
            {
                f.err("delay", e);
            }
            let abort = f.number("abort").map(|n| n as u16);
            if let Some(code) = abort
                && !(200..=599).contains(&code)
            {
                f.err("abort", "must be an HTTP status between 200 and 599");
            }
            if delay.is_none() && abort.is_none() {
                let path = f.path.clone();
                f.errors.push(format!("{path}: needs delay and/or abort"));
            }
            let percentage = f.number("percentage").unwrap_or(100.0);
            if !(0.0..=100.0).contains(&percentage) {
                f.err("percentage", "must be between 0 and 100");
            }
            let headers = match map.get("headers") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(h)) => h.clone(),
                Some(_) => {
                    f.err(
                        "headers",
                        "must be a mapping of header names to exact values",
                    );
                    Map::new()
                }
            };
            let ttl = f.duration("ttl");
            if let Some(t) = ttl
                && !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&t)
            {
                f.err("ttl", "must be between 1s and 1h");
            }
            Provider::MeshFault(FaultSpec {
                service,
                subset,
                delay,
                abort,
                percentage,
                headers,
                ttl,
            })
        }
        "mesh-fault-clear" => {
            f.unknown(&["type", "all"]);
            Provider::MeshFaultClear {
                all: f.boolean("all"),
            }
        }
        "kill" => {
            f.unknown(&[
                "type", "workload", "sidecar", "signal", "meshctl", "args", "timeout",
            ]);
            let workloads = match map.get("workload") {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(items))
                    if !items.is_empty() && items.iter().all(Value::is_string) =>
                {
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }
                None | Some(Value::Null) => {
                    f.err("workload", "required");
                    Vec::new()
                }
                Some(_) => {
                    f.err(
                        "workload",
                        "must be a workload name or a non-empty list to pick one from",
                    );
                    Vec::new()
                }
            };
            // `meshctl kill` sends SIGKILL; `signal` asks it for another one (TERM for a
            // graceful stop) and `sidecar` targets the workload's proxy instead of the app.
            let mut args = Vec::new();
            if f.boolean("sidecar") {
                args.push("--sidecar".to_string());
            }
            match f.string("signal").as_deref() {
                None | Some("KILL") => {}
                Some(sig @ ("TERM" | "INT" | "HUP")) => {
                    args.extend(["--signal".to_string(), sig.to_string()]);
                }
                Some(other) => f.err(
                    "signal",
                    format!("{other:?} must be KILL, TERM, INT or HUP"),
                ),
            }
            args.extend(f.strings("args"));
            Provider::Kill {
                workloads,
                meshctl: f.string("meshctl"),
                args,
                timeout: f.duration("timeout").unwrap_or(Duration::from_secs(30)),
            }
        }
        "mesh-apply" | "mesh-delete" => {
            f.unknown(&["type", "file"]);
            Provider::MeshApply {
                file: f.required("file"),
                delete: kind == "mesh-delete",
            }
        }
        "load" => {
            f.unknown(&[
                "type",
                "target",
                "rate",
                "duration",
                "mix",
                "connections",
                "timeout",
                "window",
                "serve",
            ]);
            let target = f.required("target");
            if !target.is_empty() && !target.starts_with("http://") {
                f.err("target", format!("{target:?} must be a plain http:// URL"));
            }
            let rate = f.number("rate").unwrap_or(0.0);
            if rate <= 0.0 {
                f.err("rate", "required, a number of requests per second above 0");
            }
            let duration = f.duration("duration").unwrap_or_default();
            if duration.is_zero() {
                f.err("duration", "required, e.g. 60s (every run is bounded)");
            }
            let mix = match f.string("mix").as_deref() {
                None | Some("url") => MixSpec::Url,
                Some("bookinfo") => MixSpec::Bookinfo,
                Some(file) => MixSpec::File(file.to_string()),
            };
            let connections = f.number("connections").unwrap_or(64.0);
            if connections < 1.0 {
                f.err("connections", "must be at least 1");
            }
            Provider::Load(LoadSpec {
                target,
                rate,
                duration,
                mix,
                connections: connections.max(1.0) as usize,
                timeout: f.duration("timeout").unwrap_or(ten),
                window: f.duration("window").unwrap_or(Duration::from_secs(5)),
                serve: f.string("serve"),
            })
        }
        "load-stop" => {
            f.unknown(&["type"]);
            Provider::LoadStop
        }
        "load-window" => {
            f.unknown(&["type"]);
            Provider::LoadWindow
        }
        "" => return None,
        "python" => {
            f.err(
                "type",
                "python providers are not supported here; use http, process or a native provider",
            );
            return None;
        }
        other => {
            f.err(
                "type",
                format!("unknown provider {other:?} (http, process, mesh-fault, mesh-fault-clear, kill, mesh-apply, mesh-delete, load, load-stop, load-window)"),
            );
            return None;
        }
    };
    Some(p)
}

fn activity(
    v: &Value,
    path: &str,
    in_hypothesis: bool,
    declared: &BTreeMap<String, Value>,
    errors: &mut Vec<String>,
) -> Option<Activity> {
    let Some(map) = v.as_object() else {
        errors.push(format!("{path}: must be a mapping (type, name, provider)"));
        return None;
    };
    // `{ref: name}` re-runs an activity declared earlier.
    if let Some(name) = map.get("ref") {
        let Some(target) = name.as_str().and_then(|n| declared.get(n)) else {
            errors.push(format!("{path}.ref: no earlier activity is named {name}"));
            return None;
        };
        return activity(&target.clone(), path, in_hypothesis, declared, errors);
    }
    let before = errors.len();
    let mut f = Fields {
        map,
        path: path.to_string(),
        errors,
    };
    f.unknown(&[
        "type",
        "name",
        "provider",
        "tolerance",
        "pauses",
        "background",
        "controls",
        "configuration",
        "secrets",
    ]);
    let kind = match f.required("type").as_str() {
        "probe" => Some(Kind::Probe),
        "action" => Some(Kind::Action),
        "" => None,
        other => {
            f.err("type", format!("must be probe or action, not {other:?}"));
            None
        }
    };
    let name = f.string("name").unwrap_or_default();
    let background = f.boolean("background");
    let (mut pause_before, mut pause_after) = (Duration::ZERO, Duration::ZERO);
    match map.get("pauses") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            let mut pf = Fields {
                map: p,
                path: join(path, "pauses"),
                errors: f.errors,
            };
            pf.unknown(&["before", "after"]);
            pause_before = pf.duration("before").unwrap_or_default();
            pause_after = pf.duration("after").unwrap_or_default();
        }
        Some(_) => f.err("pauses", "must be {before, after}"),
    }
    let errors = f.errors;
    let provider = provider(map.get("provider"), &join(path, "provider"), errors);
    let tolerance = match (in_hypothesis, map.get("tolerance")) {
        (true, None | Some(Value::Null)) => {
            errors.push(format!("{path}: missing tolerance"));
            None
        }
        (_, None | Some(Value::Null)) => None,
        (_, Some(t)) => match Tolerance::parse(t) {
            Ok(t) => Some(t),
            Err(e) => {
                errors.push(format!("{path}.tolerance: {e}"));
                None
            }
        },
    };
    if in_hypothesis && kind == Some(Kind::Action) {
        errors.push(format!("{path}.type: the hypothesis holds probes only"));
    }
    if errors.len() > before {
        return None;
    }
    Some(Activity {
        kind: kind?,
        name,
        provider: provider?,
        tolerance,
        pause_before,
        pause_after,
        background,
        source: v.clone(),
    })
}

fn configuration(
    doc: &Map<String, Value>,
    vars: &BTreeMap<String, Value>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<String>,
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
                                errors.push(format!("configuration.{k}.key: required"));
                                continue;
                            }
                            Some(key) => match (env(key), spec.get("default")) {
                                (Some(found), _) => Value::String(found),
                                (None, Some(default)) => default.clone(),
                                (None, None) if vars.contains_key(k) => Value::Null,
                                (None, None) => {
                                    errors.push(format!(
                                        "configuration.{k}: environment variable {key} is not set and there is no default"
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
        Some(_) => errors.push("configuration: must be a mapping".into()),
    }
    for (k, v) in vars {
        out.insert(k.clone(), v.clone());
    }
    out
}

fn list<'a>(
    doc: &'a Map<String, Value>,
    key: &str,
    required: bool,
    errors: &mut Vec<String>,
) -> &'a [Value] {
    match doc.get(key) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) if !required => &[],
        None | Some(Value::Null) => {
            errors.push(format!("{key}: required (may be an empty list)"));
            &[]
        }
        Some(_) => {
            errors.push(format!("{key}: must be a list"));
            &[]
        }
    }
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
        let mut errors = Vec::new();
        let Some(doc) = raw.as_object() else {
            return Err(ExperimentError::Invalid(vec![
                "the document must be a mapping".into(),
            ]));
        };
        let config = configuration(doc, vars, env, &mut errors);
        let re = variable();
        let mut body = doc.clone();
        body.remove("configuration");
        let resolved_body = substitute(&Value::Object(body), &config, &re, "", &mut errors);
        let mut resolved = resolved_body.as_object().cloned().unwrap_or_default();
        if let Some(c) = doc.get("configuration") {
            resolved.insert("configuration".into(), c.clone());
        }
        let mut top = Fields {
            map: &resolved,
            path: String::new(),
            errors: &mut errors,
        };
        top.unknown(&[
            "version",
            "title",
            "description",
            "tags",
            "configuration",
            "secrets",
            "controls",
            "contributions",
            "extensions",
            "runtime",
            "steady-state-hypothesis",
            "method",
            "rollbacks",
        ]);
        let title = top.required("title");
        let description = top.required("description");

        let mut declared = BTreeMap::new();
        let remember = |v: &Value, declared: &mut BTreeMap<String, Value>| {
            if let Some(name) = v.get("name").and_then(Value::as_str) {
                declared
                    .entry(name.to_string())
                    .or_insert_with(|| v.clone());
            }
        };

        let hypothesis = match resolved.get("steady-state-hypothesis") {
            None | Some(Value::Null) => None,
            Some(Value::Object(h)) => {
                let mut hf = Fields {
                    map: h,
                    path: "steady-state-hypothesis".into(),
                    errors: &mut errors,
                };
                hf.unknown(&["title", "probes", "controls"]);
                let title = hf.required("title");
                let probes = match h.get("probes") {
                    Some(Value::Array(items)) => items.as_slice(),
                    None | Some(Value::Null) => &[],
                    Some(_) => {
                        errors.push("steady-state-hypothesis.probes: must be a list".into());
                        &[]
                    }
                };
                let mut list = Vec::new();
                for (i, p) in probes.iter().enumerate() {
                    let path = format!("steady-state-hypothesis.probes[{i}]");
                    if let Some(a) = activity(p, &path, true, &declared, &mut errors) {
                        list.push(a);
                    }
                    remember(p, &mut declared);
                }
                Some(Hypothesis {
                    title,
                    probes: list,
                })
            }
            Some(_) => {
                errors.push("steady-state-hypothesis: must be a mapping {title, probes}".into());
                None
            }
        };
        let section = |key: &str,
                       required: bool,
                       errors: &mut Vec<String>,
                       declared: &mut BTreeMap<String, Value>| {
            let mut out = Vec::new();
            for (i, v) in list(&resolved, key, required, errors).iter().enumerate() {
                if let Some(a) = activity(v, &format!("{key}[{i}]"), false, declared, errors) {
                    out.push(a);
                }
                remember(v, declared);
            }
            out
        };
        let method = section("method", true, &mut errors, &mut declared);
        let rollbacks = section("rollbacks", false, &mut errors, &mut declared);
        for (i, r) in rollbacks.iter().enumerate() {
            if r.kind != Kind::Action {
                errors.push(format!("rollbacks[{i}].type: rollbacks are actions"));
            }
        }
        let runtime = runtime(resolved.get("runtime"), &mut errors);
        if !errors.is_empty() {
            return Err(ExperimentError::Invalid(errors));
        }
        Ok(Experiment {
            title,
            description,
            raw: raw.clone(),
            resolved: Value::Object(resolved),
            configuration: config,
            hypothesis,
            method,
            rollbacks,
            runtime,
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

fn runtime(v: Option<&Value>, errors: &mut Vec<String>) -> Runtime {
    let mut out = Runtime::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return out;
    };
    let Some(map) = v.as_object() else {
        errors.push("runtime: must be a mapping".into());
        return out;
    };
    let strategy = |section: &str, allowed: &[&str], errors: &mut Vec<String>| -> Option<String> {
        let s = map.get(section)?.get("strategy")?;
        match s.as_str() {
            Some(s) if allowed.contains(&s) => Some(s.to_string()),
            _ => {
                errors.push(format!(
                    "runtime.{section}.strategy: must be one of {}",
                    allowed.join(", ")
                ));
                None
            }
        }
    };
    out.rollback_strategy = strategy("rollbacks", &ROLLBACK_STRATEGIES, errors);
    out.hypothesis_strategy = strategy("hypothesis", &HYPOTHESIS_STRATEGIES, errors);
    if let Some(freq) = map.get("hypothesis").and_then(|h| h.get("frequency")) {
        match freq.as_f64() {
            Some(s) if s > 0.0 => out.frequency = Some(Duration::from_secs_f64(s)),
            _ => errors
                .push("runtime.hypothesis.frequency: must be a number of seconds above 0".into()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn errors(yaml: &str) -> Vec<String> {
        match Experiment::from_text(yaml, &BTreeMap::new(), &no_env) {
            Err(ExperimentError::Invalid(e)) => e,
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
  - {type: action, name: f, provider: {type: kill, signal: STOP}, extra: 1}
  - {type: action, name: g, provider: {type: http, url: "${nope}"}}
"#;
        let e = errors(doc);
        let expected = [
            "steady-state-hypothesis.probes[0]: missing tolerance",
            "method[2].provider.url: required",
            "method[3].provider: needs delay and/or abort",
            "method[3].provider.percentage: must be between 0 and 100",
            "method[4].pauses.after: invalid duration \"soon\": expected a number followed by h, m, s, ms, us or ns (e.g. \"7s\", \"0.5s\", \"100ms\")",
            "method[4].provider.duration: required, e.g. 60s (every run is bounded)",
            "method[5]: unknown field 'extra'",
            "method[5].provider.workload: required",
            "method[5].provider.signal: \"STOP\" must be KILL, TERM, INT or HUP",
            "method[6].provider.url: unknown variable ${nope}",
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
            vec!["title: required"]
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
        assert!(parse_var("n:int=x").unwrap_err().contains("not an integer"));
        assert!(parse_var("novalue").unwrap_err().contains("name=value"));
    }
}
