//! A chaos experiment's progress, as the chaos runner reports it while it runs
//! (`POST /api/v1/experiments`) and the dashboard shows it (`GET /api/v1/experiments`).

use serde::{Deserialize, Serialize};

/// The phases of a run, in order (Chaos Toolkit's, plus our recovery check).
pub const PHASES: [&str; 6] = ["before", "method", "after", "rollbacks", "recovery", "done"];
/// How a run stands: running until `done`, then how it ended.
pub const STATUSES: [&str; 4] = ["running", "completed", "failed", "interrupted"];
/// The steady-state hypothesis at its last check.
pub const HYPOTHESES: [&str; 4] = ["unchecked", "met", "deviated", "none"];

/// One report of a run: the whole state each time, so a lost report costs nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentReport {
    /// The run's id (letters, digits, `-`), the same in every report of one run.
    pub id: String,
    /// The experiment's title.
    pub title: String,
    /// One of [`PHASES`].
    pub phase: String,
    /// One of [`STATUSES`].
    pub status: String,
    /// One of [`HYPOTHESES`]: `none` when the experiment has no hypothesis.
    pub hypothesis: String,
    /// The steady state was missed during or after the method (Chaos Toolkit's
    /// `deviated`), even if it came back since.
    #[serde(default)]
    pub deviated: bool,
    /// When the run started (ms since the epoch).
    pub started_at_ms: u64,
    /// Seconds since the start when this report was made.
    pub elapsed_s: f64,
    /// The fault leases the run created so far.
    #[serde(default)]
    pub faults: Vec<ExperimentFault>,
}

/// A fault window of a run: when a lease it created was in force.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentFault {
    /// The lease id (`f-3`).
    pub id: String,
    /// The fault in words (`delay 7s 100% on ratings`).
    pub description: String,
    /// Seconds since the run's start.
    pub start_s: f64,
    /// When it was removed or its lease runs out (seconds since the start).
    pub end_s: f64,
    /// Removed before its lease ran out.
    #[serde(default)]
    pub removed: bool,
}

/// A run as `GET /api/v1/experiments` lists it: its last report and when that came.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentView {
    /// The last report.
    #[serde(flatten)]
    pub report: ExperimentReport,
    /// When the control plane received it (ms since the epoch).
    pub updated_at_ms: u64,
    /// Still `running` but no report for a while: the runner may have died.
    pub stale: bool,
}

/// Answer of `POST /api/v1/experiments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExperimentRecorded {
    /// The run's id.
    pub recorded: String,
}
