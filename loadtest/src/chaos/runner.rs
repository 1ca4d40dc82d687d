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
}

fn duration_s(d: Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Run {
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

/// Runs `experiment` and returns its journal. Never fails: problems end up in the journal.
pub async fn run(
    experiment: &Experiment,
    opts: &Options,
    cancel: Cancel,
    client: reqwest::Client,
) -> Value {
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
    let lease = default_lease(experiment);
    let run = Run {
        ctx: Arc::new(Context::new(
            client,
            opts.control.clone(),
            opts.meshctl.clone(),
            opts.base_dir.clone(),
            opts.seed,
            lease,
        )),
        dry: opts.dry,
        cancel: cancel.clone(),
    };
    let start_wall = SystemTime::now();
    let started = Instant::now();
    let mut status = "completed";
    let mut deviated = false;
    let mut phases = Vec::new();
    let mut phase = |name: &str, from: f64, to: f64| {
        phases.push(json!({"name": name, "start_s": from, "end_s": to}))
    };

    let checks_before = matches!(
        hypothesis_strategy.as_str(),
        "default" | "before-method-only" | "continuously"
    );
    let checks_during = matches!(
        hypothesis_strategy.as_str(),
        "during-method-only" | "continuously"
    );
    let checks_after = matches!(
        hypothesis_strategy.as_str(),
        "default" | "after-method-only" | "continuously"
    );

    // Background loads at the head of the method start first, with their `pauses.after` as
    // a warm-up: the steady state is measured on the same traffic before anything is
    // injected.
    let lead = experiment
        .method
        .iter()
        .take_while(|a| a.background && matches!(a.provider, Provider::Load(_)))
        .count();
    let mut entries = Vec::new();
    let mut warm = true;
    for a in &experiment.method[..lead] {
        let (entry, ok) = run.activity(a, true).await;
        entries.push(entry);
        if !ok {
            status = "failed";
            warm = false;
            break;
        }
        if !run.pause(a.pause_after, true).await {
            warm = false;
            break;
        }
    }
    let before = if checks_before && warm && !cancel.is_cancelled() {
        run.hypothesis(experiment, true).await
    } else {
        None
    };
    if cancel.is_cancelled() {
        status = "interrupted";
    } else if !met(&before) {
        status = "failed";
    }

    // The method, with the continuous check running beside it.
    let method_start = run.ctx.offset();
    phase("before", 0.0, method_start);
    let during: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let method_ran = status == "completed";
    if method_ran {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let watcher = async {
            if !checks_during || experiment.hypothesis.is_none() {
                return;
            }
            let mut stop_rx = stop_rx.clone();
            loop {
                tokio::select! {
                    () = tokio::time::sleep(frequency) => {}
                    _ = stop_rx.wait_for(|s| *s) => return,
                }
                if let Some(state) = run.hypothesis(experiment, true).await {
                    during.lock().unwrap_or_else(|e| e.into_inner()).push(state);
                }
            }
        };
        let method = async {
            let mut background = Vec::new();
            let mut failed = false;
            for a in &experiment.method[lead..] {
                if !run.pause(a.pause_before, true).await {
                    break;
                }
                if a.background && !matches!(a.provider, Provider::Load(_)) {
                    let (r, a) = (run.clone(), a.clone());
                    background.push(tokio::spawn(async move { r.activity(&a, true).await }));
                } else {
                    let (entry, ok) = run.activity(a, true).await;
                    entries.push(entry);
                    // A failed action ends the method (probes in the method only collect data).
                    if !ok && a.kind == Kind::Action {
                        failed = true;
                        break;
                    }
                }
                if cancel.is_cancelled() || !run.pause(a.pause_after, true).await {
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
        if cancel.is_cancelled() {
            status = "interrupted";
        } else if failed {
            status = "failed";
        }
    }
    let during = std::mem::take(&mut *during.lock().unwrap_or_else(|e| e.into_inner()));
    if during.iter().any(|s| s["steady_state_met"] != json!(true)) {
        deviated = true;
    }
    let method_end = run.ctx.offset();
    phase("method", method_start, method_end);

    let after = if status == "completed" && checks_after {
        run.hypothesis(experiment, true).await
    } else {
        None
    };
    if cancel.is_cancelled() {
        status = "interrupted";
    }
    if !met(&after) {
        deviated = true;
    }

    // Rollbacks are not cancellable: an interrupt is exactly when they matter most.
    let play = match rollback_strategy.as_str() {
        "always" => true,
        "never" => false,
        "deviated" => deviated,
        _ => !matches!(status, "failed" | "interrupted"),
    };
    let rollbacks_start = run.ctx.offset();
    phase("after", method_end, rollbacks_start);
    let mut rollbacks = Vec::new();
    if play {
        for a in &experiment.rollbacks {
            run.pause(a.pause_before, false).await;
            let (entry, _) = run.activity(a, false).await;
            rollbacks.push(entry);
            run.pause(a.pause_after, false).await;
        }
    }
    let rollbacks_end = run.ctx.offset();
    phase("rollbacks", rollbacks_start, rollbacks_end);

    // Recovery: the steady state must come back once the rollbacks are done.
    let mut recovery = json!({"checked": false});
    let mut recovery_state = None;
    // Nothing to recover from when the method never ran (the steady state was already off).
    if play && method_ran && !opts.dry && experiment.hypothesis.is_some() {
        let deadline = Instant::now() + opts.recovery_timeout;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let state = run.hypothesis(experiment, false).await;
            let ok = met(&state);
            recovery_state = state;
            if ok || cancel.is_cancelled() || Instant::now() >= deadline {
                let elapsed = run.ctx.offset() - rollbacks_end;
                recovery = json!({
                    "checked": true,
                    "recovered": ok,
                    "attempts": attempts,
                    "time_to_recover_s": if ok { json!(duration_s(Duration::from_secs_f64(elapsed))) } else { Value::Null },
                    "timeout_s": duration_s(opts.recovery_timeout),
                });
                break;
            }
            tokio::time::sleep(frequency).await;
        }
    }
    let end_s = run.ctx.offset();
    phase("recovery", rollbacks_end, end_s);

    let loads = run.ctx.finish_loads();
    let faults: Vec<Value> = run
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
        "start": rfc3339(start_wall),
        "end": rfc3339(SystemTime::now()),
        "duration": duration_s(started.elapsed()),
        "status": status,
        "deviated": deviated,
        "steady_states": {"before": before, "after": after, "during": during, "recovery": recovery_state},
        "run": entries,
        "rollbacks": rollbacks,
        "dry": opts.dry,
        "recovery": recovery,
        "chaos-run": {
            "seed": opts.seed,
            "config_hash": config_hash(experiment),
            "versions": {"chaos": env!("CARGO_PKG_VERSION"), "journal": "chaostoolkit-1"},
            "rollback_strategy": rollback_strategy,
            "hypothesis_strategy": hypothesis_strategy,
            "hypothesis_frequency_s": duration_s(frequency),
            "control": opts.control,
            "default_fault_ttl_s": lease.as_secs(),
            "configuration": experiment.configuration,
        },
        "phases": phases,
        "faults": faults,
        "load": load_json,
    });
    journal["slo_budgets"] = json!(report::budgets(&journal, experiment));
    journal
}
