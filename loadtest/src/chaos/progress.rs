//! The run's progress, reported to the control plane while it runs, for the dashboard's
//! experiment strip: title, phase, the hypothesis at its last check and the fault windows.
//! Each report is the whole state, sent at every change and every couple of seconds in
//! between, so a report lost costs nothing and a fault appears while it bites.
//!
//! Reporting never fails a run: a control plane that does not take reports (an older
//! one, or an experiment that uses no mesh at all) gets one warning on stderr.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_api::wire::{ExperimentFault, ExperimentReport};

use super::providers::Context;

/// How often the state is sent when nothing changes (the strip's fault windows and
/// elapsed time stay current; the control plane calls a run silent for 30 s stale).
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// What changes as the run goes.
#[derive(Debug, Clone)]
struct State {
    phase: &'static str,
    status: &'static str,
    hypothesis: &'static str,
    deviated: bool,
}

/// One run's reporter.
pub struct Progress {
    id: String,
    title: String,
    started_at_ms: u64,
    ctx: Arc<Context>,
    state: Mutex<State>,
    warned: AtomicBool,
    /// Serializes sends, so reports reach the control plane in the order they were made.
    sending: tokio::sync::Mutex<()>,
}

impl Progress {
    /// A reporter for the run of `title` whose providers share `ctx`; `has_hypothesis`
    /// tells whether there is a steady state to report on.
    pub fn new(title: &str, ctx: Arc<Context>, has_hypothesis: bool) -> Arc<Self> {
        let started_at_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Arc::new(Self {
            id: format!("run-{started_at_ms}-{}", std::process::id()),
            title: title.chars().take(200).collect(),
            started_at_ms,
            ctx,
            state: Mutex::new(State {
                phase: "before",
                status: "running",
                hypothesis: if has_hypothesis { "unchecked" } else { "none" },
                deviated: false,
            }),
            warned: AtomicBool::new(false),
            sending: tokio::sync::Mutex::new(()),
        })
    }

    fn update(&self, change: impl FnOnce(&mut State)) {
        change(&mut self.state.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// The run enters `phase`.
    pub async fn phase(&self, phase: &'static str) {
        self.update(|s| s.phase = phase);
        self.send().await;
    }

    /// The hypothesis was checked: it held or not.
    pub async fn hypothesis(&self, met: bool) {
        self.update(|s| {
            s.hypothesis = if met { "met" } else { "deviated" };
            // Missed before the method fails the run; during or after it, the run deviated.
            s.deviated |= !met && matches!(s.phase, "method" | "after");
        });
        self.send().await;
    }

    /// The run ended with `status` (`completed`, `failed` or `interrupted`).
    pub async fn done(&self, status: &'static str) {
        self.update(|s| {
            s.phase = "done";
            s.status = status;
        });
        self.send().await;
    }

    /// Sends the state every [`HEARTBEAT`] until the returned handle is aborted.
    pub fn heartbeat(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT).await;
                me.send().await;
            }
        })
    }

    /// The report of the state now.
    pub fn report(&self) -> ExperimentReport {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let faults = self
            .ctx
            .faults()
            .into_iter()
            .map(|f| ExperimentFault {
                id: f.id,
                description: f.description.chars().take(200).collect(),
                start_s: f.start_s,
                end_s: f.end_s.max(f.start_s),
                removed: f.removed,
            })
            .collect();
        ExperimentReport {
            id: self.id.clone(),
            title: self.title.clone(),
            phase: state.phase.to_owned(),
            status: state.status.to_owned(),
            hypothesis: state.hypothesis.to_owned(),
            deviated: state.deviated,
            started_at_ms: self.started_at_ms,
            elapsed_s: self.ctx.offset(),
            faults,
        }
    }

    async fn send(&self) {
        let _order = self.sending.lock().await;
        let report = self.report();
        if let Err(e) = self.ctx.control.report_progress(&report).await
            && !self.warned.swap(true, Ordering::Relaxed)
        {
            eprintln!(
                "chaos: the dashboard will not show this run: reporting to {} failed: {e}",
                self.ctx.control.url()
            );
        }
    }
}
