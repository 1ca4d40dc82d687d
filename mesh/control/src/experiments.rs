//! The chaos experiments in progress, as the chaos runner reports them: each report is
//! the run's whole state (title, phase, hypothesis, fault windows), kept for the
//! dashboard's experiment strip. Only the last few runs are kept, and a run that stops
//! reporting while `running` is shown as stale: its runner may have died.

use std::sync::Mutex;

use mesh_api::wire::experiment::{HYPOTHESES, PHASES, STATUSES};
use mesh_api::wire::{ExperimentReport, ExperimentView};

/// Runs kept (the oldest report goes first).
pub const MAX_RUNS: usize = 8;
/// A running experiment silent this long is stale (the runner reports at every phase and
/// hypothesis check, at least every few seconds while faults are in force).
pub const STALE_MS: u64 = 30_000;
/// Fault windows one report may carry.
pub const MAX_FAULTS: usize = 64;

/// A report refused; Display names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ExperimentError {
    /// The field, e.g. `phase` or `faults[2].id`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ExperimentError {
    ExperimentError {
        field: field.into(),
        message: message.into(),
    }
}

/// The reported runs, most recently updated last.
#[derive(Debug, Default)]
pub struct Experiments {
    runs: Mutex<Vec<(ExperimentReport, u64)>>,
}

impl Experiments {
    /// Takes a report received at `now_ms`: it replaces the run's previous one.
    pub fn record(&self, report: ExperimentReport, now_ms: u64) -> Result<(), ExperimentError> {
        validate(&report)?;
        let mut runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        // A finished run's last report is final: a late heartbeat cannot reopen it.
        if report.status == "running"
            && runs
                .iter()
                .any(|(r, _)| r.id == report.id && r.status != "running")
        {
            return Ok(());
        }
        runs.retain(|(r, _)| r.id != report.id);
        runs.push((report, now_ms));
        let excess = runs.len().saturating_sub(MAX_RUNS);
        runs.drain(..excess);
        Ok(())
    }

    /// The runs, the most recently updated first.
    pub fn list(&self, now_ms: u64) -> Vec<ExperimentView> {
        let runs = self.runs.lock().unwrap_or_else(|e| e.into_inner());
        runs.iter()
            .rev()
            .map(|(report, at)| ExperimentView {
                stale: report.status == "running" && now_ms.saturating_sub(*at) > STALE_MS,
                updated_at_ms: *at,
                report: report.clone(),
            })
            .collect()
    }
}

fn one_of(field: &str, value: &str, allowed: &[&str]) -> Result<(), ExperimentError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            format!("{value:?} is not one of {}", allowed.join(", ")),
        ))
    }
}

fn text(field: &str, value: &str, max: usize) -> Result<(), ExperimentError> {
    if value.chars().count() > max {
        return Err(invalid(field, format!("longer than {max} characters")));
    }
    Ok(())
}

fn id(field: &str, value: &str) -> Result<(), ExperimentError> {
    if value.is_empty() || value.len() > 64 {
        return Err(invalid(field, "expected 1 to 64 characters"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(invalid(
            field,
            format!("{value:?}: only letters, digits, '-', '_' and '.'"),
        ));
    }
    Ok(())
}

fn seconds(field: &str, value: f64) -> Result<(), ExperimentError> {
    if !value.is_finite() || value < 0.0 {
        return Err(invalid(field, "expected seconds, 0 or more"));
    }
    Ok(())
}

fn validate(r: &ExperimentReport) -> Result<(), ExperimentError> {
    id("id", &r.id)?;
    text("title", &r.title, 200)?;
    one_of("phase", &r.phase, &PHASES)?;
    one_of("status", &r.status, &STATUSES)?;
    one_of("hypothesis", &r.hypothesis, &HYPOTHESES)?;
    if (r.phase == "done") != (r.status != "running") {
        return Err(invalid(
            "status",
            format!(
                "{:?} in phase {:?}: a run is running until its phase is done",
                r.status, r.phase
            ),
        ));
    }
    seconds("elapsed_s", r.elapsed_s)?;
    if r.faults.len() > MAX_FAULTS {
        return Err(invalid("faults", format!("more than {MAX_FAULTS} windows")));
    }
    for (i, f) in r.faults.iter().enumerate() {
        id(&format!("faults[{i}].id"), &f.id)?;
        text(&format!("faults[{i}].description"), &f.description, 200)?;
        seconds(&format!("faults[{i}].start_s"), f.start_s)?;
        seconds(&format!("faults[{i}].end_s"), f.end_s)?;
        if f.end_s < f.start_s {
            return Err(invalid(format!("faults[{i}].end_s"), "before start_s"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_api::wire::ExperimentFault;

    fn report(id: &str, phase: &str, status: &str) -> ExperimentReport {
        ExperimentReport {
            id: id.into(),
            title: "Ratings slow: the page still answers".into(),
            phase: phase.into(),
            status: status.into(),
            hypothesis: "met".into(),
            deviated: false,
            started_at_ms: 1_000,
            elapsed_s: 3.5,
            faults: vec![ExperimentFault {
                id: "f-1".into(),
                description: "delay 7s 100% on ratings".into(),
                start_s: 1.0,
                end_s: 31.0,
                removed: false,
            }],
        }
    }

    #[test]
    fn a_run_keeps_its_last_report_and_goes_stale_when_silent() {
        let e = Experiments::default();
        e.record(report("run-1", "before", "running"), 10_000)
            .unwrap();
        e.record(report("run-1", "method", "running"), 11_000)
            .unwrap();
        let runs = e.list(12_000);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].report.phase, "method");
        assert!(!runs[0].stale);
        assert!(e.list(11_000 + STALE_MS + 1)[0].stale);
        // A finished run is never stale, and a late heartbeat does not reopen it.
        e.record(report("run-1", "done", "completed"), 12_000)
            .unwrap();
        e.record(report("run-1", "recovery", "running"), 12_001)
            .unwrap();
        let runs = e.list(12_000 + STALE_MS * 10);
        assert_eq!(runs[0].report.status, "completed");
        assert!(!runs[0].stale);
    }

    #[test]
    fn only_the_latest_runs_are_kept_newest_first() {
        let e = Experiments::default();
        for i in 0..MAX_RUNS + 3 {
            e.record(report(&format!("run-{i}"), "method", "running"), i as u64)
                .unwrap();
        }
        let runs = e.list(100);
        assert_eq!(runs.len(), MAX_RUNS);
        assert_eq!(runs[0].report.id, format!("run-{}", MAX_RUNS + 2));
        assert_eq!(runs[MAX_RUNS - 1].report.id, "run-3");
    }

    #[test]
    fn bad_reports_name_the_field_and_change_nothing() {
        let e = Experiments::default();
        e.record(report("run-1", "method", "running"), 1).unwrap();
        let mut cases = vec![
            ("id", report("", "method", "running")),
            ("id", report("run 1/x", "method", "running")),
            ("phase", report("run-1", "warmup", "running")),
            ("status", report("run-1", "method", "completed")),
            ("status", report("run-1", "done", "running")),
        ];
        let mut r = report("run-1", "method", "running");
        r.hypothesis = "maybe".into();
        cases.push(("hypothesis", r));
        let mut r = report("run-1", "method", "running");
        r.elapsed_s = f64::NAN;
        cases.push(("elapsed_s", r));
        let mut r = report("run-1", "method", "running");
        r.faults[0].end_s = 0.5;
        cases.push(("faults[0].end_s", r));
        let mut r = report("run-1", "method", "running");
        r.title = "x".repeat(201);
        cases.push(("title", r));
        for (field, bad) in cases {
            let err = e.record(bad, 2).unwrap_err();
            assert_eq!(err.field, field, "{err}");
        }
        let runs = e.list(3);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].updated_at_ms, 1);
    }
}
