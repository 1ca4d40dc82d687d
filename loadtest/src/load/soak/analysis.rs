//! Per fault, what its window saw: the requests that *finished* between its kill and the
//! next fault's (a request failing because of a kill ends after it, whenever it was sent),
//! split into failed (not a 200) and degraded (a 200 page with an error text of its own);
//! which of those the killed workload being the only endpoint explains; and how long it
//! took to get good pages again, from the kill and from the supervisor's restart.

use std::collections::BTreeMap;

use super::Role;
use super::inputs::FaultRecord;
use crate::load::mix::BOOKINFO_DEGRADED_TEXTS;
use crate::load::outcomes::{LogHeader, OutcomeRecord};

/// The figures of one window of time.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WindowFigures {
    /// Requests that finished in the window.
    pub requests: u64,
    /// Not a 200 (another status, no response, or never sent), by answer (`503`,
    /// `connect`, `dropped`).
    pub failed: BTreeMap<String, u64>,
    /// Degraded pages, by the service their text blames (`details`, `reviews`, `ratings`;
    /// `other` for a text that is not Bookinfo's).
    pub degraded: BTreeMap<String, u64>,
    /// Corrected latency p99 of the window's answers, milliseconds.
    pub p99_ms: f64,
    /// The last failed or degraded answer, since the window's start, milliseconds.
    pub last_bad_ms: Option<f64>,
}

impl WindowFigures {
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }

    pub fn degraded_total(&self) -> u64 {
        self.degraded.values().sum()
    }
}

/// What a fault's window saw, and the recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultFigures {
    pub fault: FaultRecord,
    /// Since the start of the load, seconds.
    pub at_s: f64,
    /// Length of the window (to the next fault or the end of the run), seconds.
    pub window_s: f64,
    pub seen: WindowFigures,
    /// Failed requests the killed workload being the only endpoint explains.
    pub explained_failed: u64,
    /// Degraded pages it explains.
    pub explained_degraded: u64,
    /// Why (empty when it explains nothing).
    pub explanation: &'static str,
    /// From the kill to the replacement's start, milliseconds.
    pub restart_ms: Option<f64>,
    /// From the kill to the first good page sent at or after it, milliseconds.
    pub first_good_after_kill_ms: Option<f64>,
    /// From the restart to the first good page sent at or after it, milliseconds.
    pub first_good_after_restart_ms: Option<f64>,
}

impl FaultFigures {
    /// The last failed or degraded answer of the window, from the restart, milliseconds
    /// (negative: before the restart).
    pub fn last_bad_after_restart_ms(&self) -> Option<f64> {
        Some(self.seen.last_bad_ms? - self.restart_ms?)
    }
}

/// The whole run, cut into the baseline before the first fault and one window per fault.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub baseline: WindowFigures,
    pub baseline_s: f64,
    pub faults: Vec<FaultFigures>,
}

/// The service the `i`-th degraded text of the log blames.
fn blamed(header: &LogHeader, i: usize) -> &'static str {
    header
        .degraded_texts
        .get(i)
        .and_then(|t| BOOKINFO_DEGRADED_TEXTS.iter().find(|(_, text)| text == t))
        .map_or("other", |(service, _)| service)
}

/// Which failed and degraded answers a fault explains by the killed workload being the
/// only endpoint of its service (or the only way in).
fn explains(
    fault: &FaultRecord,
    endpoints: &BTreeMap<String, usize>,
) -> (bool, &'static [&'static str], &'static str) {
    let single = fault
        .service()
        .is_some_and(|s| endpoints.get(s).copied().unwrap_or(0) <= 1);
    match (fault.role, fault.service()) {
        (Role::Gateway, _) => (true, &[], "the gateway is the only way in"),
        (Role::Control | Role::Supervisor, _) => (false, &[], ""),
        (_, Some("productpage")) if single && fault.role == Role::Sidecar => (
            true,
            &["details", "reviews", "ratings"],
            "productpage has one endpoint, and its sidecar carries productpage's own calls",
        ),
        (_, Some("productpage")) if single => (true, &[], "productpage has one endpoint"),
        (_, Some("details")) if single => (false, &["details"], "details has one endpoint"),
        (_, Some("ratings")) if single => (false, &["ratings"], "ratings has one endpoint"),
        (_, Some("reviews")) if single => (false, &["reviews"], "reviews has one endpoint"),
        _ => (false, &[], ""),
    }
}

/// Lines the request log up with the faults. `endpoints`: app workloads per service.
pub fn analyse(
    header: &LogHeader,
    records: &[OutcomeRecord],
    faults: &[FaultRecord],
    endpoints: &BTreeMap<String, usize>,
    run_end_us: u64,
) -> Analysis {
    // Fault times on the log's clock: microseconds since the start of the load.
    let on_log = |unix_ms: u64| {
        unix_ms
            .saturating_sub(header.start_unix_ms)
            .saturating_mul(1000)
    };
    let kills: Vec<u64> = faults.iter().map(|f| on_log(f.kill_unix_ms)).collect();
    let mut by_done: Vec<&OutcomeRecord> = records.iter().collect();
    by_done.sort_by_key(|r| r.done_us);
    let end = run_end_us.max(by_done.last().map_or(0, |r| r.done_us) + 1);
    let window = |from: u64, to: u64| figures(header, &by_done, from, to);
    let first_kill = kills.first().copied().unwrap_or(end);
    let mut out = Vec::with_capacity(faults.len());
    for (i, fault) in faults.iter().enumerate() {
        let from = kills[i];
        let to = kills.get(i + 1).copied().unwrap_or(end).max(from);
        let seen = window(from, to);
        let (fails, services, why) = explains(fault, endpoints);
        let explained_failed = if fails { seen.failed_total() } else { 0 };
        let explained_degraded = services
            .iter()
            .map(|s| seen.degraded.get(*s).copied().unwrap_or(0))
            .sum();
        let restart = fault.restart_unix_ms.map(on_log);
        let first_good = |t: u64| {
            records
                .iter()
                .filter(|r| r.sent_us >= t && r.answer.is_good())
                .map(|r| r.done_us)
                .min()
                .map(|done| ms(done - t))
        };
        out.push(FaultFigures {
            at_s: from as f64 / 1e6,
            window_s: (to - from) as f64 / 1e6,
            explained_failed,
            explained_degraded,
            explanation: if explained_failed + explained_degraded > 0 {
                why
            } else {
                ""
            },
            restart_ms: restart.map(|r| ms(r.saturating_sub(from))),
            first_good_after_kill_ms: first_good(from),
            first_good_after_restart_ms: restart.and_then(first_good),
            seen,
            fault: fault.clone(),
        });
    }
    Analysis {
        baseline: window(0, first_kill),
        baseline_s: first_kill as f64 / 1e6,
        faults: out,
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The figures of the requests that finished in `[from, to)`; `by_done` is sorted by
/// finishing time.
fn figures(header: &LogHeader, by_done: &[&OutcomeRecord], from: u64, to: u64) -> WindowFigures {
    let lo = by_done.partition_point(|r| r.done_us < from);
    let hi = by_done.partition_point(|r| r.done_us < to);
    let mut w = WindowFigures::default();
    let mut latencies = Vec::with_capacity(hi.saturating_sub(lo));
    for r in &by_done[lo..hi] {
        w.requests += 1;
        let texts = r.answer.degraded_texts();
        let bad = if r.answer.is_failed() {
            *w.failed.entry(r.answer.label()).or_default() += 1;
            true
        } else if texts != 0 {
            // One page counts once, against the first service its texts blame.
            let first = texts.trailing_zeros() as usize;
            *w.degraded
                .entry(blamed(header, first).to_string())
                .or_default() += 1;
            true
        } else {
            false
        };
        if bad {
            w.last_bad_ms = Some(ms(r.done_us - from));
        }
        if !matches!(r.answer, crate::load::outcomes::Answer::Dropped) {
            latencies.push(r.done_us.saturating_sub(r.intended_us));
        }
    }
    latencies.sort_unstable();
    if !latencies.is_empty() {
        let rank = ((latencies.len() as f64) * 0.99).ceil() as usize;
        w.p99_ms = ms(latencies[rank.clamp(1, latencies.len()) - 1]);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::outcomes::Answer;
    use crate::load::soak::Signal;
    use crate::load::stats::ErrorKind;

    fn header() -> LogHeader {
        LogHeader {
            start_unix_ms: 1_000_000,
            entries: vec!["productpage".into()],
            degraded_texts: BOOKINFO_DEGRADED_TEXTS
                .iter()
                .map(|(_, t)| (*t).to_string())
                .collect(),
        }
    }

    fn rec(sent_ms: u64, took_ms: u64, answer: Answer) -> OutcomeRecord {
        OutcomeRecord {
            intended_us: sent_ms * 1000,
            sent_us: sent_ms * 1000,
            done_us: (sent_ms + took_ms) * 1000,
            entry: 0,
            answer,
        }
    }

    fn fault(
        at_ms: u64,
        process: &str,
        role: Role,
        workload: &str,
        restart_ms: u64,
    ) -> FaultRecord {
        FaultRecord {
            kill_unix_ms: 1_000_000 + at_ms,
            process: process.into(),
            role,
            workload: Some(workload.into()),
            signal: Signal::Kill,
            old_pid: Some(1),
            new_pid: Some(2),
            restart_unix_ms: Some(1_000_000 + restart_ms),
        }
    }

    #[test]
    fn windows_explanations_and_recovery() {
        let ok = Answer::Status(200);
        let details = Answer::Degraded {
            status: 200,
            texts: 0b11,
        };
        let ratings = Answer::Degraded {
            status: 200,
            texts: 0b10000,
        };
        // Every 100 ms a page of 10 ms; details killed at 1 s (restart at 2 s): degraded
        // pages sent from 1.0 to 2.2 s; productpage killed at 4 s (restart 5 s): 503 and
        // connection errors until 5.3 s, plus one ratings text (not explained).
        let mut records = Vec::new();
        for k in 0..80u64 {
            let t = k * 100;
            let answer = match t {
                1000..2300 => details,
                4000..4500 => Answer::Status(503),
                4500..5300 => Answer::Error(ErrorKind::Connect),
                5300 => ratings,
                _ => ok,
            };
            records.push(rec(t, 10, answer));
        }
        records.push(rec(7950, 0, Answer::Dropped));
        let endpoints = BTreeMap::from([
            ("productpage".to_string(), 1),
            ("details".to_string(), 1),
            ("reviews".to_string(), 3),
        ]);
        let faults = [
            fault(1000, "details-v1", Role::App, "details-v1", 2000),
            fault(4000, "productpage-v1", Role::App, "productpage-v1", 5000),
        ];
        let a = analyse(&header(), &records, &faults, &endpoints, 8_000_000);
        assert_eq!(a.baseline.requests, 10);
        assert_eq!(a.baseline.failed_total() + a.baseline.degraded_total(), 0);
        assert_eq!(a.baseline_s, 1.0);

        let d = &a.faults[0];
        assert_eq!((d.at_s, d.window_s), (1.0, 3.0));
        assert_eq!(d.seen.requests, 30);
        assert_eq!(d.seen.degraded["details"], 13);
        assert_eq!((d.explained_failed, d.explained_degraded), (0, 13));
        assert_eq!(d.explanation, "details has one endpoint");
        assert_eq!(d.restart_ms, Some(1000.0));
        assert_eq!(d.first_good_after_kill_ms, Some(1310.0));
        assert_eq!(d.first_good_after_restart_ms, Some(310.0));
        assert_eq!(d.seen.last_bad_ms, Some(1210.0));
        assert_eq!(d.last_bad_after_restart_ms(), Some(210.0));

        let p = &a.faults[1];
        assert_eq!(p.seen.failed["503"], 5);
        assert_eq!(p.seen.failed["connect"], 8);
        assert_eq!(p.seen.failed["dropped"], 1);
        assert_eq!(p.seen.degraded["ratings"], 1);
        assert_eq!((p.explained_failed, p.explained_degraded), (14, 0));
        assert_eq!(p.first_good_after_restart_ms, Some(410.0));
        assert!((p.seen.p99_ms - 10.0).abs() < 1e-9, "{}", p.seen.p99_ms);

        // reviews has three endpoints: nothing is explained.
        let r = fault(4000, "reviews-v2-proxy", Role::Sidecar, "reviews-v2", 5000);
        let a = analyse(&header(), &records, &[r], &endpoints, 8_000_000);
        assert_eq!(
            (a.faults[0].explained_failed, a.faults[0].explanation),
            (0, "")
        );
        // No restart seen: no recovery from it either.
        let mut lost = faults[1].clone();
        lost.restart_unix_ms = None;
        let a = analyse(&header(), &records, &[lost], &endpoints, 8_000_000);
        assert_eq!(a.faults[0].first_good_after_restart_ms, None);
        assert_eq!(a.faults[0].last_bad_after_restart_ms(), None);
    }
}
