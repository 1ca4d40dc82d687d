//! Running an experiment: steady state before, during and after the method, rollbacks per
//! strategy (always by default, even after a deviation, a failure or Ctrl-C), then the
//! steady state again until it holds, timing the recovery. The result is the journal.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::Cancel;
use super::experiment::{Activity, Experiment, Kind, Provider};
use super::progress::Progress;
use super::providers::{Context, ProviderError};
use super::report;
use super::time::rfc3339;

/// Margin added to an experiment's expected duration for fault leases without a TTL.
pub const LEASE_MARGIN: Duration = Duration::from_secs(60);

/// How a run is carried out (CLI flags; `None` falls back to the experiment's `runtime`).
#[derive(Debug, Clone)]
pub struct Options {
    pub rollback_strategy: Option<String>,
    pub hypothesis_strategy: Option<String>,
    pub frequency: Option<Duration>,
    pub dry: bool,
    pub seed: u64,
    pub control: String,
    pub meshctl: Option<PathBuf>,
    pub base_dir: PathBuf,
    /// How long to wait for the steady state to come back after the rollbacks.
    pub recovery_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            rollback_strategy: None,
            hypothesis_strategy: None,
            frequency: None,
            dry: false,
            seed: 0,
            control: "http://127.0.0.1:15010".into(),
            meshctl: None,
            base_dir: PathBuf::from("."),
            recovery_timeout: Duration::from_secs(60),
        }
    }
}

/// The exit code for a journal: 0 held, 1 deviated or failed, 130 interrupted.
pub fn exit_code(journal: &Value) -> u8 {
    match (journal["status"].as_str(), journal["deviated"].as_bool()) {
        (Some("completed"), Some(false)) => 0,
        (Some("interrupted"), _) => 130,
        _ => 1,
    }
}

/// Lease length for faults that name no TTL: the experiment's expected duration plus a
/// margin, within the control plane's 1 s to 1 h.
pub fn default_lease(experiment: &Experiment) -> Duration {
    let secs = (experiment.expected_duration() + LEASE_MARGIN)
        .as_secs_f64()
        .ceil() as u64;
    Duration::from_secs(secs.clamp(1, 3600))
}

/// SHA-256 of the resolved experiment: two runs with the same hash and seed did the same.
pub fn config_hash(experiment: &Experiment) -> String {
    let digest = Sha256::digest(experiment.resolved.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Clone)]
struct Run {
    ctx: Arc<Context>,
    dry: bool,
    cancel: Cancel,
    /// The dashboard's view of the run (none in a rehearsal).
    progress: Option<Arc<Progress>>,
}

fn duration_s(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Run {
    /// Tells the dashboard the run entered `phase`.
    async fn phase(&self, phase: &'static str) {
        if let Some(p) = &self.progress {
            p.phase(phase).await;
        }
    }

    /// Runs one activity and returns its journal entry and whether it succeeded.
    async fn activity(&self, a: &Activity, cancellable: bool) -> (Value, bool) {
        let start_wall = SystemTime::now();
        let start = Instant::now();
        let start_s = self.ctx.offset();
        let result = if self.dry {
            Ok(Value::Null)
        } else if cancellable {
            tokio::select! {
                r = self.ctx.execute(&a.name, &a.provider) => r,
                () = self.cancel.cancelled() => Err(ProviderError::Interrupted),
            }
        } else {
            self.ctx.execute(&a.name, &a.provider).await
        };
        let mut entry = Map::new();
        entry.insert("activity".into(), a.source.clone());
        let ok = result.is_ok();
        entry.insert(
            "status".into(),
            json!(if ok { "succeeded" } else { "failed" }),
        );
        entry.insert("start".into(), json!(rfc3339(start_wall)));
        entry.insert("end".into(), json!(rfc3339(SystemTime::now())));
        entry.insert("duration".into(), json!(duration_s(start.elapsed())));
        entry.insert(
            "start_offset_s".into(),
            json!(duration_s(Duration::from_secs_f64(start_s))),
        );
        match result {
            Ok(output) => {
                entry.insert("output".into(), output);
            }
            Err(e) => {
                entry.insert("output".into(), Value::Null);
                entry.insert("exception".into(), json!([e.to_string()]));
            }
        }
        (Value::Object(entry), ok)
    }

    /// Checks every probe of the hypothesis once.
    async fn hypothesis(&self, experiment: &Experiment, cancellable: bool) -> Option<Value> {
        let h = experiment.hypothesis.as_ref()?;
        let mut probes = Vec::new();
        let mut all_met = true;
        for p in &h.probes {
            let (mut entry, ok) = self.activity(p, cancellable).await;
            let verdict = match (&p.tolerance, self.dry, ok) {
                (Some(t), false, true) => Some(t.check(&entry["output"])),
                _ => None,
            };
            let met = match &verdict {
                Some(v) => v.met,
                // A rehearsal assumes the steady state; a probe that failed misses it.
                None => self.dry,
            };
            all_met &= met;
            entry["tolerance_met"] = json!(met);
            if let Some(v) = verdict {
                entry["expected"] = json!(v.expected);
                entry["measured"] = v.measured;
            }
            probes.push(entry);
        }
        if let Some(p) = &self.progress {
            p.hypothesis(all_met).await;
        }
        Some(
            json!({"steady_state_met": all_met, "probes": probes, "offset_s": duration_s(Duration::from_secs_f64(self.ctx.offset()))}),
        )
    }

    async fn pause(&self, d: Duration, cancellable: bool) -> bool {
        if d.is_zero() || self.dry {
            return true;
        }
        if !cancellable {
            tokio::time::sleep(d).await;
            return true;
        }
        tokio::select! {
            () = tokio::time::sleep(d) => true,
            () = self.cancel.cancelled() => false,
        }
    }
}

fn met(state: &Option<Value>) -> bool {
    state
        .as_ref()
        .is_none_or(|s| s["steady_state_met"].as_bool() == Some(true))
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The run's settings: the CLI's, else the experiment's `runtime`, else the defaults.
struct Plan {
    rollback_strategy: String,
    hypothesis_strategy: String,
    /// How often the hypothesis is checked during the method.
    frequency: Duration,
    /// Lease length for faults without a TTL.
    lease: Duration,
    checks_before: bool,
    checks_during: bool,
    checks_after: bool,
}

impl Plan {
    fn new(experiment: &Experiment, opts: &Options) -> Self {
        let rollback_strategy = opts
            .rollback_strategy
            .clone()
            .or_else(|| experiment.runtime.rollback_strategy.clone())
            .unwrap_or_else(|| "always".into());
        let hypothesis_strategy = opts
            .hypothesis_strategy
            .clone()
            .or_else(|| experiment.runtime.hypothesis_strategy.clone())
            .unwrap_or_else(|| "default".into());
        let frequency = opts
            .frequency
            .or(experiment.runtime.frequency)
            .unwrap_or(Duration::from_secs(1))
            .max(Duration::from_millis(50));
        let strategy = hypothesis_strategy.as_str();
        Plan {
            checks_before: matches!(strategy, "default" | "before-method-only" | "continuously"),
            checks_during: matches!(strategy, "during-method-only" | "continuously"),
            checks_after: matches!(strategy, "default" | "after-method-only" | "continuously"),
            lease: default_lease(experiment),
            rollback_strategy,
            hypothesis_strategy,
            frequency,
        }
    }
}

/// What the phases decide and collect as the run goes; becomes the journal.
struct Record {
    start_wall: SystemTime,
    started: Instant,
    /// `completed`, `failed` or `interrupted`.
    status: &'static str,
    deviated: bool,
    /// Journal entries of the method's activities (warm-up loads included).
    entries: Vec<Value>,
    rollbacks: Vec<Value>,
    before: Option<Value>,
    during: Vec<Value>,
    after: Option<Value>,
    recovery_state: Option<Value>,
    recovery: Value,
    /// `{name, start_s, end_s}` of each phase.
    phases: Vec<Value>,
}

impl Record {
    fn phase(&mut self, name: &str, from: f64, to: f64) {
        self.phases
            .push(json!({"name": name, "start_s": from, "end_s": to}));
    }
}

/// Runs `experiment` and returns its journal. Never fails: problems end up in the journal.
///
/// The phases follow Chaos Toolkit: steady state before, the method (with the load running
/// and, per strategy, the steady state checked alongside), steady state after, rollbacks
/// (by default always), then our own recovery check, and the journal.
pub async fn run(
    experiment: &Experiment,
    opts: &Options,
    cancel: Cancel,
    client: reqwest::Client,
) -> Value {
    let plan = Plan::new(experiment, opts);
    let ctx = Arc::new(Context::new(
        client,
        opts.control.clone(),
        opts.meshctl.clone(),
        opts.base_dir.clone(),
        opts.seed,
        plan.lease,
    ));
    let progress = (!opts.dry).then(|| {
        Progress::new(
            &experiment.title,
            Arc::clone(&ctx),
            experiment.hypothesis.is_some(),
        )
    });
    let run = Run {
        ctx,
        dry: opts.dry,
        cancel,
        progress,
    };
    let heartbeat = match &run.progress {
        Some(p) => {
            p.phase("before").await;
            Some(p.heartbeat())
        }
        None => None,
    };
    let mut record = Record {
        start_wall: SystemTime::now(),
        started: Instant::now(),
        status: "completed",
        deviated: false,
        entries: Vec::new(),
        rollbacks: Vec::new(),
        before: None,
        during: Vec::new(),
        after: None,
        recovery_state: None,
        recovery: json!({"checked": false}),
        phases: Vec::new(),
    };
    let lead = leading_loads(experiment);

    run.before(experiment, &plan, lead, &mut record).await;
    let method_start = run.ctx.offset();
    record.phase("before", 0.0, method_start);

    let method_ran = record.status == "completed";
    if method_ran {
        run.phase("method").await;
        run.method(experiment, &plan, lead, &mut record).await;
    }
    let method_end = run.ctx.offset();
    record.phase("method", method_start, method_end);

    run.phase("after").await;
    run.after(experiment, &plan, &mut record).await;
    let rollbacks_start = run.ctx.offset();
    record.phase("after", method_end, rollbacks_start);

    run.phase("rollbacks").await;
    let played = run.rollbacks(experiment, &plan, &mut record).await;
    let rollbacks_end = run.ctx.offset();
    record.phase("rollbacks", rollbacks_start, rollbacks_end);

    // Nothing to recover from when the method never ran (the steady state was already off).
    if played && method_ran && !opts.dry && experiment.hypothesis.is_some() {
        run.phase("recovery").await;
        run.recovery(experiment, opts, &plan, rollbacks_end, &mut record)
            .await;
    }
    let end_s = run.ctx.offset();
    record.phase("recovery", rollbacks_end, end_s);
    if let Some(h) = heartbeat {
        h.abort();
    }
    if let Some(p) = &run.progress {
        p.done(record.status).await;
    }

    run.journal(experiment, opts, &plan, record, end_s)
}

/// How many activities at the head of the method are background loads: they start before
/// the steady state is first checked.
fn leading_loads(experiment: &Experiment) -> usize {
    experiment
        .method
        .iter()
        .take_while(|a| a.background && matches!(a.provider, Provider::Load(_)))
        .count()
}

impl Run {
    /// Steady state before: background loads at the head of the method start first, with
    /// their `pauses.after` as a warm-up, so the steady state is measured on the same
    /// traffic before anything is injected. A steady state that does not hold fails the
    /// run before the method.
    async fn before(&self, experiment: &Experiment, plan: &Plan, lead: usize, record: &mut Record) {
        let mut warm = true;
        for a in &experiment.method[..lead] {
            let (entry, ok) = self.activity(a, true).await;
            record.entries.push(entry);
            if !ok {
                record.status = "failed";
                warm = false;
                break;
            }
            if !self.pause(a.pause_after, true).await {
                warm = false;
                break;
            }
        }
        record.before = if plan.checks_before && warm && !self.cancel.is_cancelled() {
            self.hypothesis(experiment, true).await
        } else {
            None
        };
        if self.cancel.is_cancelled() {
            record.status = "interrupted";
        } else if !met(&record.before) {
            record.status = "failed";
        }
    }

    /// The method: the remaining activities in order (background ones spawned and awaited
    /// at the end), with the continuous steady-state check running beside it when the
    /// strategy asks for one. A failed action ends the method; a deviation seen during it
    /// marks the run deviated.
    async fn method(&self, experiment: &Experiment, plan: &Plan, lead: usize, record: &mut Record) {
        let during: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let watcher = async {
            if !plan.checks_during || experiment.hypothesis.is_none() {
                return;
            }
            let mut stop_rx = stop_rx.clone();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(plan.frequency) => {}
                    _ = stop_rx.wait_for(|s| *s) => return,
                }
                if let Some(state) = self.hypothesis(experiment, true).await {
                    during.lock().unwrap_or_else(|e| e.into_inner()).push(state);
                }
            }
        };
        let entries = &mut record.entries;
        let method = async {
            let mut background = Vec::new();
            let mut failed = false;
            for a in &experiment.method[lead..] {
                if !self.pause(a.pause_before, true).await {
                    break;
                }
                if a.background && !matches!(a.provider, Provider::Load(_)) {
                    let (r, a) = (self.clone(), a.clone());
                    background.push(tokio::spawn(async move { r.activity(&a, true).await }));
                } else {
                    let (entry, ok) = self.activity(a, true).await;
                    entries.push(entry);
                    // A failed action ends the method (probes in the method only collect data).
                    if !ok && a.kind == Kind::Action {
                        failed = true;
                        break;
                    }
                }
                if self.cancel.is_cancelled() || !self.pause(a.pause_after, true).await {
                    break;
                }
            }
            for handle in background {
                match handle.await {
                    Ok((entry, ok)) => {
                        failed |= !ok;
                        entries.push(entry);
                    }
                    Err(e) => {
                        failed = true;
                        entries.push(json!({"status": "failed", "exception": [e.to_string()]}));
                    }
                }
            }
            let _ = stop_tx.send(true);
            failed
        };
        let ((), failed) = tokio::join!(watcher, method);
        if self.cancel.is_cancelled() {
            record.status = "interrupted";
        } else if failed {
            record.status = "failed";
        }
        record.during = std::mem::take(&mut *during.lock().unwrap_or_else(|e| e.into_inner()));
        if record
            .during
            .iter()
            .any(|s| s["steady_state_met"] != json!(true))
        {
            record.deviated = true;
        }
    }

    /// Steady state after the method (only after a completed method): if it does not hold,
    /// the run deviated.
    async fn after(&self, experiment: &Experiment, plan: &Plan, record: &mut Record) {
        record.after = if record.status == "completed" && plan.checks_after {
            self.hypothesis(experiment, true).await
        } else {
            None
        };
        if self.cancel.is_cancelled() {
            record.status = "interrupted";
        }
        if !met(&record.after) {
            record.deviated = true;
        }
    }

    /// Rollbacks, per the rollback strategy; returns whether they were played. They are
    /// not cancellable: an interrupt is exactly when they matter most.
    async fn rollbacks(&self, experiment: &Experiment, plan: &Plan, record: &mut Record) -> bool {
        let play = match plan.rollback_strategy.as_str() {
            "always" => true,
            "never" => false,
            "deviated" => record.deviated,
            _ => !matches!(record.status, "failed" | "interrupted"),
        };
        if play {
            for a in &experiment.rollbacks {
                self.pause(a.pause_before, false).await;
                let (entry, _) = self.activity(a, false).await;
                record.rollbacks.push(entry);
                self.pause(a.pause_after, false).await;
            }
        }
        play
    }

    /// Recovery: checks the steady state until it holds again (or the recovery timeout
    /// passes), timing how long that took after the rollbacks ended at `rollbacks_end`.
    async fn recovery(
        &self,
        experiment: &Experiment,
        opts: &Options,
        plan: &Plan,
        rollbacks_end: f64,
        record: &mut Record,
    ) {
        let deadline = Instant::now() + opts.recovery_timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let state = self.hypothesis(experiment, false).await;
            let ok = met(&state);
            record.recovery_state = state;
            if ok || self.cancel.is_cancelled() || Instant::now() >= deadline {
                let elapsed = self.ctx.offset() - rollbacks_end;
                record.recovery = json!({
                    "checked": true,
                    "recovered": ok,
                    "attempts": attempts,
                    "time_to_recover_s": if ok { json!(duration_s(Duration::from_secs_f64(elapsed))) } else { Value::Null },
                    "timeout_s": duration_s(opts.recovery_timeout),
                });
                return;
            }
            tokio::time::sleep(plan.frequency).await;
        }
    }

    /// The journal: Chaos Toolkit's fields, then ours (`chaos-run`, phases, fault windows,
    /// load series, SLO budgets). `end_s` is when the last phase ended.
    fn journal(
        &self,
        experiment: &Experiment,
        opts: &Options,
        plan: &Plan,
        record: Record,
        end_s: f64,
    ) -> Value {
        let loads = self.ctx.finish_loads();
        let faults: Vec<Value> = self
            .ctx
            .faults()
            .into_iter()
            .map(|f| {
                json!({"id": f.id, "activity": f.activity, "service": f.service, "description": f.description,
                       "ttl_s": f.ttl_s, "start_s": f.start_s, "end_s": f.end_s.min(end_s.max(f.start_s)), "removed": f.removed})
            })
            .collect();
        let load_json: Vec<Value> = loads
            .iter()
            .map(|l| json!({"activity": l.activity, "target": l.target, "start_s": l.start_s, "series": l.series}))
            .collect();

        let mut journal = json!({
            "chaoslib-version": format!("bookinfo-chaos {}", env!("CARGO_PKG_VERSION")),
            "platform": format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
            "node": hostname(),
            "experiment": experiment.raw,
            "start": rfc3339(record.start_wall),
            "end": rfc3339(SystemTime::now()),
            "duration": duration_s(record.started.elapsed()),
            "status": record.status,
            "deviated": record.deviated,
            "steady_states": {"before": record.before, "after": record.after, "during": record.during, "recovery": record.recovery_state},
            "run": record.entries,
            "rollbacks": record.rollbacks,
            "dry": opts.dry,
            "recovery": record.recovery,
            "chaos-run": {
                "seed": opts.seed,
                "config_hash": config_hash(experiment),
                "versions": {"chaos": env!("CARGO_PKG_VERSION"), "journal": "chaostoolkit-1"},
                "rollback_strategy": plan.rollback_strategy,
                "hypothesis_strategy": plan.hypothesis_strategy,
                "hypothesis_frequency_s": duration_s(plan.frequency),
                "control": opts.control,
                "default_fault_ttl_s": plan.lease.as_secs(),
                "configuration": experiment.configuration,
            },
            "phases": record.phases,
            "faults": faults,
            "load": load_json,
        });
        journal["slo_budgets"] = json!(report::budgets(&journal, experiment));
        journal
    }
}
