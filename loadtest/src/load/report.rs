//! The run report: what was asked, what happened, as text and as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::config::{Model, RunConfig};
use super::plan::Stage;
use super::stats::{Percentiles, SecondSummary, Totals};

/// Run parameters, echoed in the JSON so a report file explains itself.
#[derive(Debug, Clone, Serialize)]
pub struct Parameters {
    pub target: String,
    /// `open` or `closed`.
    pub model: &'static str,
    pub connections: usize,
    pub http2: bool,
    pub timeout_s: f64,
    /// Open model: the planned length; closed model: the `--duration`, if any.
    pub planned_duration_s: Option<f64>,
    /// Open model only.
    pub max_lateness_s: Option<f64>,
    /// Closed model `-n`, or the open-model cap.
    pub request_limit: Option<u64>,
    pub mix: Vec<MixLine>,
}

/// One mix entry as shown in the report.
#[derive(Debug, Clone, Serialize)]
pub struct MixLine {
    pub name: String,
    pub weight: u32,
    pub method: String,
    pub path: String,
    pub login: Option<String>,
}

/// Request counters.
#[derive(Debug, Clone, Serialize)]
pub struct Counts {
    /// Requests the schedule asked for.
    pub intended: u64,
    /// Requests put on the wire.
    pub started: u64,
    /// Responses received (any status).
    pub completed: u64,
    /// Requests that failed without a response (see `errors`).
    pub errors: u64,
    /// 200 answers containing one of the mix's degraded texts (also in `completed`; see
    /// `degraded_texts`).
    pub degraded: u64,
    /// Requests never sent because no connection freed up within the lateness bound.
    pub dropped: u64,
}

/// Corrected (from the intended send time) and raw (from the actual send time) latency.
#[derive(Debug, Clone, Serialize)]
pub struct Latency {
    pub corrected: Percentiles,
    pub raw: Percentiles,
}

/// A finished run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub parameters: Parameters,
    /// Wall-clock start, milliseconds since the Unix epoch.
    pub start_unix_ms: Option<u64>,
    pub duration_s: f64,
    /// Open model: intended requests / planned duration; `None` for the closed model.
    pub requested_rps: Option<f64>,
    /// Responses per second over the run.
    pub achieved_rps: f64,
    pub requests: Counts,
    pub latency_ms: Latency,
    pub status_codes: BTreeMap<String, u64>,
    pub errors: BTreeMap<String, u64>,
    /// Answers containing each degraded text of the mix, by text (every text is listed).
    pub degraded_texts: BTreeMap<String, u64>,
    pub time_series: Vec<SecondSummary>,
    /// Ramp stages of the open model (empty otherwise).
    pub stages: Vec<Stage>,
}

impl Report {
    pub fn new(cfg: &RunConfig, totals: &Totals, elapsed: Duration) -> Self {
        let (model, max_lateness_s, request_limit) = match &cfg.model {
            Model::Open {
                max_lateness,
                schedule,
            } => ("open", Some(max_lateness.as_secs_f64()), schedule.limit()),
            Model::Closed { requests, .. } => ("closed", None, *requests),
        };
        let planned = cfg.planned_duration();
        let requested_rps = match (&cfg.model, planned) {
            (Model::Open { .. }, Some(p)) if !p.is_zero() => {
                Some(totals.intended as f64 / p.as_secs_f64())
            }
            _ => None,
        };
        let seconds = elapsed.as_secs_f64();
        Report {
            parameters: Parameters {
                target: cfg.target.url(),
                model,
                connections: cfg.connections,
                http2: cfg.http2,
                timeout_s: cfg.timeout.as_secs_f64(),
                planned_duration_s: planned.map(|d| d.as_secs_f64()),
                max_lateness_s,
                request_limit,
                mix: cfg
                    .mix
                    .entries()
                    .iter()
                    .map(|e| MixLine {
                        name: e.name.clone(),
                        weight: e.weight,
                        method: e.method.to_string(),
                        path: e.path.clone(),
                        login: e.login.clone(),
                    })
                    .collect(),
            },
            start_unix_ms: totals.start_unix_ms,
            duration_s: seconds,
            requested_rps,
            achieved_rps: if seconds > 0.0 {
                totals.completed as f64 / seconds
            } else {
                0.0
            },
            requests: Counts {
                intended: totals.intended,
                started: totals.started,
                completed: totals.completed,
                errors: totals.errors,
                degraded: totals.degraded,
                dropped: totals.dropped,
            },
            latency_ms: Latency {
                corrected: totals.corrected,
                raw: totals.raw,
            },
            status_codes: totals
                .status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors: totals
                .error_kinds
                .iter()
                .map(|(k, v)| (k.as_str().to_string(), *v))
                .collect(),
            degraded_texts: cfg
                .mix
                .degraded_texts()
                .into_iter()
                .enumerate()
                .map(|(i, t)| (t, totals.degraded_by_text.get(i).copied().unwrap_or(0)))
                .collect(),
            time_series: totals.series.clone(),
            stages: match &cfg.model {
                Model::Open { schedule, .. } => schedule.stages(),
                Model::Closed { .. } => Vec::new(),
            },
        }
    }

    /// JSON text of the whole report.
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string_pretty(self)
    }

    /// The human summary printed at the end of a run.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let p = &self.parameters;
        let _ = writeln!(
            out,
            "Target      {}  ({} model, {} connections{})",
            p.target,
            p.model,
            p.connections,
            if p.http2 { ", h2c" } else { ", HTTP/1.1" }
        );
        let _ = writeln!(out, "Duration    {:.2} s", self.duration_s);
        match self.requested_rps {
            Some(req) => {
                let _ = writeln!(
                    out,
                    "Rate        requested {req:.1}/s, achieved {:.1}/s",
                    self.achieved_rps
                );
            }
            None => {
                let _ = writeln!(out, "Rate        achieved {:.1}/s", self.achieved_rps);
            }
        }
        let r = &self.requests;
        let _ = writeln!(
            out,
            "Requests    intended {}, sent {}, responses {}, errors {}, dropped {}",
            r.intended, r.started, r.completed, r.errors, r.dropped
        );
        if !self.degraded_texts.is_empty() {
            let found: Vec<String> = self
                .degraded_texts
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(t, n)| format!("{t:?}: {n}"))
                .collect();
            let _ = writeln!(
                out,
                "Degraded    {} (200 answers with an error text of the page{}{})",
                r.degraded,
                if found.is_empty() { "" } else { "; " },
                found.join(", ")
            );
        }
        if r.dropped > 0 {
            let late = p.max_lateness_s.unwrap_or(0.0);
            let _ = writeln!(
                out,
                "            dropped = not sent: no connection was free within {late} s of the intended time (raise -c or --max-lateness)"
            );
        }
        let _ = writeln!(
            out,
            "Latency ms      p50      p90      p99    p99.9      max"
        );
        for (label, l) in [
            ("corrected", &self.latency_ms.corrected),
            ("raw", &self.latency_ms.raw),
        ] {
            let _ = writeln!(
                out,
                "  {label:<9} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                l.p50, l.p90, l.p99, l.p99_9, l.max
            );
        }
        if p.model == "open" {
            let _ = writeln!(
                out,
                "            corrected = from the intended send time (includes queueing); raw = from the actual send"
            );
        } else {
            let _ = writeln!(
                out,
                "            closed model: corrected and raw are the same measurement"
            );
        }
        let codes: Vec<String> = self
            .status_codes
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "Status      {}",
            if codes.is_empty() {
                "none".into()
            } else {
                codes.join(", ")
            }
        );
        let errors: Vec<String> = self
            .errors
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let _ = writeln!(
            out,
            "Errors      {}",
            if errors.is_empty() {
                "none".into()
            } else {
                errors.join(", ")
            }
        );
        out
    }
}
