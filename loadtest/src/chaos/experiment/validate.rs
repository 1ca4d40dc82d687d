//! From the document as written to typed activities: each part is read with the serde types
//! of [`super::format`], then checked for what serde cannot say (ranges, fields that need
//! each other, probes only in the hypothesis, actions only in the rollbacks). Problems are
//! collected, not returned at the first: each activity, its provider and its tolerance are
//! read on their own, so one mistake does not hide the next.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_api::defaults::{Direction, parse_rate};
use mesh_api::duration::parse_duration;
use serde_json::Value;

use super::format::{
    self, ActivityDoc, ExperimentDoc, FaultDoc, HttpDoc, KillDoc, LoadDoc, ProviderDoc, RuntimeDoc,
    Signal, Text,
};
use super::variables::join;
use super::{
    Activity, FaultSpec, HYPOTHESIS_STRATEGIES, Hypothesis, Kind, LoadSpec, MixSpec, Problem,
    Provider, ROLLBACK_STRATEGIES, Runtime,
};
use crate::chaos::tolerance::Tolerance;

/// The typed parts of a valid experiment.
pub(super) struct Parts {
    pub title: String,
    pub description: String,
    pub hypothesis: Option<Hypothesis>,
    pub method: Vec<Activity>,
    pub rollbacks: Vec<Activity>,
    pub runtime: Runtime,
}

/// Reads and checks the substituted document; `None` when anything was wrong (then
/// `problems` says what).
pub(super) fn experiment(resolved: &Value, problems: &mut Vec<Problem>) -> Option<Parts> {
    let doc: ExperimentDoc = match format::read(resolved, "") {
        Ok(doc) => doc,
        Err(problem) => {
            problems.push(problem);
            return None;
        }
    };
    let before = problems.len();
    let mut walk = Walk {
        problems,
        declared: BTreeMap::new(),
    };
    let hypothesis = doc.steady_state_hypothesis.map(|h| Hypothesis {
        title: h.title.0,
        probes: walk.activities(
            "steady-state-hypothesis.probes",
            &h.probes.unwrap_or_default(),
            true,
        ),
    });
    let method = match doc.method {
        Some(list) => walk.activities("method", &list, false),
        None => {
            walk.problems
                .push(Problem::new("method", "required (may be an empty list)"));
            Vec::new()
        }
    };
    let rollbacks = walk.activities("rollbacks", &doc.rollbacks.unwrap_or_default(), false);
    for (i, r) in rollbacks.iter().enumerate() {
        if r.kind != Kind::Action {
            walk.problems.push(Problem::new(
                format!("rollbacks[{i}].type"),
                "rollbacks are actions",
            ));
        }
    }
    let runtime = runtime(doc.runtime, walk.problems);
    (problems.len() == before).then_some(Parts {
        title: doc.title.0,
        description: doc.description.0,
        hypothesis,
        method,
        rollbacks,
        runtime,
    })
}

/// Walks the activity lists in document order, remembering named activities for `ref`.
struct Walk<'a> {
    problems: &'a mut Vec<Problem>,
    /// Activities seen so far, by name (the first of a name wins), as written.
    declared: BTreeMap<String, Value>,
}

impl Walk<'_> {
    fn activities(&mut self, key: &str, list: &[Value], in_hypothesis: bool) -> Vec<Activity> {
        let mut out = Vec::new();
        for (i, v) in list.iter().enumerate() {
            if let Some(a) = self.activity(v, &format!("{key}[{i}]"), in_hypothesis) {
                out.push(a);
            }
            if let Some(name) = v.get("name").and_then(Value::as_str) {
                self.declared
                    .entry(name.to_string())
                    .or_insert_with(|| v.clone());
            }
        }
        out
    }

    fn activity(&mut self, v: &Value, path: &str, in_hypothesis: bool) -> Option<Activity> {
        let Some(map) = v.as_object() else {
            self.problems.push(Problem::new(
                path,
                "must be a mapping (type, name, provider)",
            ));
            return None;
        };
        // `{ref: name}` re-runs an activity declared earlier.
        if let Some(name) = map.get("ref") {
            let Some(target) = name.as_str().and_then(|n| self.declared.get(n)).cloned() else {
                self.problems.push(Problem::new(
                    format!("{path}.ref"),
                    format!("no earlier activity is named {name}"),
                ));
                return None;
            };
            return self.activity(&target, path, in_hypothesis);
        }
        let before = self.problems.len();
        let shell = self.ok(format::read::<ActivityDoc>(v, path));
        let provider = map.get("provider").and_then(|p| {
            let at = join(path, "provider");
            let doc = self.ok(format::read_provider(p, &at))?;
            provider(doc, &at, self.problems)
        });
        let tolerance = match (in_hypothesis, map.get("tolerance")) {
            (true, None | Some(Value::Null)) => {
                self.problems.push(Problem::new(path, "missing tolerance"));
                None
            }
            (_, None | Some(Value::Null)) => None,
            (_, Some(t)) => {
                self.ok(Tolerance::parse(t).map_err(|e| Problem::new(join(path, "tolerance"), e)))
            }
        };
        let shell = shell?;
        if in_hypothesis && shell.kind == Kind::Action {
            self.problems.push(Problem::new(
                join(path, "type"),
                "the hypothesis holds probes only",
            ));
        }
        if self.problems.len() > before {
            return None;
        }
        let pauses = shell.pauses;
        let pause = |p: Option<format::Span>| p.map_or(Duration::ZERO, |s| s.0);
        Some(Activity {
            kind: shell.kind,
            name: shell.name.map(|n| n.0).unwrap_or_default(),
            provider: provider?,
            tolerance,
            pause_before: pause(pauses.as_ref().and_then(|p| p.before)),
            pause_after: pause(pauses.as_ref().and_then(|p| p.after)),
            background: shell.background.unwrap_or(false),
            source: v.clone(),
        })
    }

    /// The value, or `None` with the problem noted.
    fn ok<T>(&mut self, result: Result<T, Problem>) -> Option<T> {
        result.map_err(|p| self.problems.push(p)).ok()
    }
}

/// Checks one provider at `at` and gives its typed form.
fn provider(doc: ProviderDoc, at: &str, problems: &mut Vec<Problem>) -> Option<Provider> {
    let before = problems.len();
    // A field of the provider, or the provider as a whole for "".
    let mut problem = |field: &str, message: String| {
        let path = if field.is_empty() {
            at.to_string()
        } else {
            join(at, field)
        };
        problems.push(Problem::new(path, message));
    };
    let ten = Duration::from_secs(10);
    let span = |s: Option<format::Span>, default: Duration| s.map_or(default, |s| s.0);
    let p = match doc {
        ProviderDoc::Http(h) => http(h, ten, &mut problem),
        ProviderDoc::Process(p) => Provider::Process {
            path: p.path.0,
            arguments: p.arguments.unwrap_or_default().0,
            timeout: span(p.timeout, Duration::from_secs(60)),
        },
        ProviderDoc::MeshFault(f) => Provider::MeshFault(fault(f, &mut problem)),
        ProviderDoc::MeshFaultClear(c) => Provider::MeshFaultClear {
            all: c.all.unwrap_or(false),
        },
        ProviderDoc::Kill(k) => kill(k),
        ProviderDoc::MeshApply(f) => Provider::MeshApply {
            file: f.file.0,
            delete: false,
        },
        ProviderDoc::MeshDelete(f) => Provider::MeshApply {
            file: f.file.0,
            delete: true,
        },
        ProviderDoc::Load(l) => Provider::Load(load(l, ten, &mut problem)),
        ProviderDoc::LoadStop(_) => Provider::LoadStop,
        ProviderDoc::LoadWindow(_) => Provider::LoadWindow,
    };
    (problems.len() == before).then_some(p)
}

fn http(h: HttpDoc, default_timeout: Duration, problem: &mut impl FnMut(&str, String)) -> Provider {
    let url = h.url.0;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        problem(
            "url",
            format!("{url:?} must start with http:// or https://"),
        );
    }
    let headers = h
        .headers
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (k, v)
        })
        .collect();
    Provider::Http {
        url,
        method: h
            .method
            .map_or_else(|| "GET".into(), |m| m.0)
            .to_uppercase(),
        headers,
        arguments: h.arguments,
        timeout: h.timeout.and_then(|t| t.0).unwrap_or(default_timeout),
    }
}

fn fault(f: FaultDoc, problem: &mut impl FnMut(&str, String)) -> FaultSpec {
    let mut duration = |field: &str, text: Option<Text>| {
        let text = text.map(|t| t.0);
        if let Some(d) = &text
            && let Err(e) = parse_duration(d)
        {
            problem(field, e.to_string());
        }
        text
    };
    let delay = duration("delay", f.delay);
    let jitter = duration("jitter", f.jitter);
    let slow_close = duration("slow_close", f.slow_close);
    if jitter.is_some() && delay.is_none() {
        problem("jitter", "needs a delay to vary".into());
    }
    // Chaos Toolkit files are YAML: `abort: 503` may arrive as 503.0.
    let abort = f.abort.map(|n| n.0 as u16);
    if let Some(code) = abort
        && !(200..=599).contains(&code)
    {
        problem("abort", "must be an HTTP status between 200 and 599".into());
    }
    let bandwidth_given = f.bandwidth.is_some();
    let bandwidth = f.bandwidth.and_then(|b| match parse_rate(&b.0) {
        Ok(rate) => Some(rate),
        Err(e) => {
            problem("bandwidth", e);
            None
        }
    });
    let reset_after = match (f.reset, f.reset_after) {
        (_, Some(n)) if n.0 < 0.0 || n.0.fract() != 0.0 => {
            problem("reset_after", "must be a whole number of bytes".into());
            None
        }
        (Some(false), Some(_)) => {
            problem("reset_after", "contradicts reset: false".into());
            None
        }
        (_, Some(n)) => Some(n.0 as u64),
        (Some(true), None) => Some(0),
        (_, None) => None,
    };
    let blackhole = f.blackhole.unwrap_or(false);
    let direction = match f.direction.as_ref().map(|d| d.0.as_str()) {
        None => None,
        Some("request") => Some(Direction::Request),
        Some("response") => Some(Direction::Response),
        Some(_) => {
            problem("direction", "must be request or response".into());
            None
        }
    };
    if delay.is_none()
        && abort.is_none()
        && !bandwidth_given
        && reset_after.is_none()
        && !blackhole
        && slow_close.is_none()
    {
        problem(
            "",
            "needs at least one of delay, abort, bandwidth, reset, blackhole, slow_close".into(),
        );
    }
    let percentage = f.percentage.map_or(100.0, |p| p.0);
    if !(0.0..=100.0).contains(&percentage) {
        problem("percentage", "must be between 0 and 100".into());
    }
    // The control plane grants leases of 1 s to 1 h.
    let ttl = f.ttl.map(|t| t.0);
    if let Some(t) = ttl
        && !(Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&t)
    {
        problem("ttl", "must be between 1s and 1h".into());
    }
    FaultSpec {
        service: f.service.0,
        subset: f.subset.map(|s| s.0),
        delay,
        jitter,
        abort,
        bandwidth,
        reset_after,
        blackhole,
        slow_close,
        direction,
        percentage,
        headers: f.headers.unwrap_or_default(),
        ttl,
    }
}

fn kill(k: KillDoc) -> Provider {
    // `meshctl kill` sends SIGKILL; `signal` asks it for another one (TERM for a graceful
    // stop) and `sidecar` targets the workload's proxy instead of the app.
    let mut args = Vec::new();
    if k.sidecar == Some(true) {
        args.push("--sidecar".to_string());
    }
    let signal = match k.signal {
        None | Some(Signal::Kill) => None,
        Some(Signal::Term) => Some("TERM"),
        Some(Signal::Int) => Some("INT"),
        Some(Signal::Hup) => Some("HUP"),
    };
    if let Some(sig) = signal {
        args.extend(["--signal".to_string(), sig.to_string()]);
    }
    args.extend(k.args.unwrap_or_default().0);
    Provider::Kill {
        workloads: k.workload.0,
        meshctl: k.meshctl.map(|m| m.0),
        args,
        timeout: k.timeout.map_or(Duration::from_secs(30), |t| t.0),
    }
}

fn load(l: LoadDoc, default_timeout: Duration, problem: &mut impl FnMut(&str, String)) -> LoadSpec {
    let target = l.target.0;
    // The load engine speaks plain HTTP/1.1 and h2c only.
    if !target.starts_with("http://") {
        problem("target", format!("{target:?} must be a plain http:// URL"));
    }
    let rate = l.rate.map_or(0.0, |r| r.0);
    if rate <= 0.0 {
        problem(
            "rate",
            "required, a number of requests per second above 0".into(),
        );
    }
    let duration = l.duration.map_or(Duration::ZERO, |d| d.0);
    if duration.is_zero() {
        problem(
            "duration",
            "required, e.g. 60s (every run is bounded)".into(),
        );
    }
    let mix = match l.mix.as_ref().map(|m| m.0.as_str()) {
        None | Some("url") => MixSpec::Url,
        Some("bookinfo") => MixSpec::Bookinfo,
        Some(file) => MixSpec::File(file.to_string()),
    };
    let connections = l.connections.map_or(64.0, |c| c.0);
    if connections < 1.0 {
        problem("connections", "must be at least 1".into());
    }
    LoadSpec {
        target,
        rate,
        duration,
        mix,
        connections: connections.max(1.0) as usize,
        timeout: l.timeout.map_or(default_timeout, |t| t.0),
        window: l.window.map_or(Duration::from_secs(5), |w| w.0),
        serve: l.serve.map(|s| s.0),
    }
}

/// Checks the `runtime` strategies against the ones the runner knows.
fn runtime(doc: Option<RuntimeDoc>, problems: &mut Vec<Problem>) -> Runtime {
    let Some(doc) = doc else {
        return Runtime::default();
    };
    let mut strategy = |section: &str, value: Option<format::Text>, allowed: &[&str]| {
        let value = value?.0;
        if allowed.contains(&value.as_str()) {
            return Some(value);
        }
        problems.push(Problem::new(
            format!("runtime.{section}.strategy"),
            format!("must be one of {}", allowed.join(", ")),
        ));
        None
    };
    let rollback_strategy = strategy(
        "rollbacks",
        doc.rollbacks.and_then(|r| r.strategy),
        &ROLLBACK_STRATEGIES,
    );
    let hypothesis = doc.hypothesis;
    let (h_strategy, frequency) =
        hypothesis.map_or((None, None), |h| (h.strategy, h.frequency.map(|f| f.0)));
    let hypothesis_strategy = strategy("hypothesis", h_strategy, &HYPOTHESIS_STRATEGIES);
    let frequency = match frequency {
        None => None,
        Some(s) if s > 0.0 && s.is_finite() => Some(Duration::from_secs_f64(s)),
        Some(_) => {
            problems.push(Problem::new(
                "runtime.hypothesis.frequency",
                "must be a number of seconds above 0",
            ));
            None
        }
    };
    Runtime {
        rollback_strategy,
        hypothesis_strategy,
        frequency,
    }
}
