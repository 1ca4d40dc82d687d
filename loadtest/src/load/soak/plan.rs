//! The fault schedule: every process of the mesh killed once per round, rounds one after
//! the other, one fault every 15 to 20 s after a fault-free lead-in.
//!
//! The order interleaves kinds (an app, a sidecar, the gateway or the control plane, an
//! app, ...), and signals alternate (TERM, KILL, ...; the next round swaps them), so even a
//! short run hits every kind of process with both signals, and a process is hit again only
//! a round later: with 14 processes at 20 s that is 280 s, well past the minute after which
//! the supervisor's restart backoff is back at 1 s.

use std::time::Duration;

use super::inputs::Process;
use super::{Role, Signal, SoakError};

/// Fault-free time at the start: the baseline (and a warm-up for the memory sample).
pub const LEAD_IN: Duration = Duration::from_secs(20);
/// Time after the last fault for its effect to show and pass.
pub const TAIL: Duration = Duration::from_secs(20);
/// Closest spacing of faults: an effect must have passed before the next fault.
pub const MIN_SPACING: Duration = Duration::from_secs(15);
/// Widest spacing.
pub const MAX_SPACING: Duration = Duration::from_secs(20);

/// One fault to inject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFault {
    /// Since the start of the load.
    pub at: Duration,
    /// Process name (`reviews-v2-proxy`).
    pub process: String,
    pub role: Role,
    /// What `meshctl kill` is given: the workload (or the process name for the control
    /// plane and the gateway).
    pub target: String,
    pub signal: Signal,
}

impl PlannedFault {
    /// The line `scripts/soak.sh` reads:
    /// `at_ms process role target --app|--sidecar signal`, tab-separated.
    pub fn line(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}",
            self.at.as_millis(),
            self.process,
            self.role.as_str(),
            self.target,
            if self.role == Role::Sidecar {
                "--sidecar"
            } else {
                "--app"
            },
            self.signal.as_str()
        )
    }
}

/// The order of one round: apps, sidecars and the singletons (gateway, control plane)
/// interleaved; sidecars start half way through the workloads so that an app and its own
/// sidecar are not hit back to back.
pub fn round(processes: &[Process]) -> Vec<&Process> {
    let of = |role| processes.iter().filter(move |p| p.role == role);
    let apps: Vec<&Process> = of(Role::App).collect();
    let mut sidecars: Vec<&Process> = of(Role::Sidecar).collect();
    let half = sidecars.len() / 2;
    sidecars.rotate_left(half);
    let singles: Vec<&Process> = of(Role::Gateway).chain(of(Role::Control)).collect();
    let mut lanes = [apps.into_iter(), sidecars.into_iter(), singles.into_iter()];
    let mut order = Vec::with_capacity(processes.len());
    loop {
        let before = order.len();
        for lane in &mut lanes {
            order.extend(lane.next());
        }
        if order.len() == before {
            return order;
        }
    }
}

/// The spacing for a run of `duration`: one round of `per_round` faults spread over the
/// time between the lead-in and the tail, clamped to 15..=20 s.
pub fn spacing(duration: Duration, per_round: usize) -> Duration {
    let usable = duration.saturating_sub(LEAD_IN + TAIL);
    let even = usable / u32::try_from(per_round.max(1)).unwrap_or(u32::MAX);
    even.clamp(MIN_SPACING, MAX_SPACING)
}

/// The whole schedule for a run of `duration`.
pub fn plan(processes: &[Process], duration: Duration) -> Result<Vec<PlannedFault>, SoakError> {
    let order = round(processes);
    if order.is_empty() {
        return Err(SoakError::Plan("no process to kill".into()));
    }
    let step = spacing(duration, order.len());
    let last = duration.saturating_sub(TAIL);
    if LEAD_IN > last {
        return Err(SoakError::Plan(format!(
            "a run of {} s leaves no room for a fault: it needs at least {} s",
            duration.as_secs(),
            (LEAD_IN + TAIL).as_secs()
        )));
    }
    let mut faults = Vec::new();
    let mut at = LEAD_IN;
    let mut i = 0usize;
    while at < last {
        let p = order[i % order.len()];
        let first_signal = if (i / order.len()).is_multiple_of(2) {
            Signal::Term
        } else {
            Signal::Kill
        };
        let signal = if i.is_multiple_of(2) {
            first_signal
        } else {
            first_signal.other()
        };
        let target = match p.role {
            Role::App | Role::Sidecar => p.workload.clone().unwrap_or_else(|| p.name.clone()),
            Role::Control | Role::Gateway | Role::Supervisor => p.name.clone(),
        };
        faults.push(PlannedFault {
            at,
            process: p.name.clone(),
            role: p.role,
            target,
            signal,
        });
        at += step;
        i += 1;
    }
    Ok(faults)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh() -> Vec<Process> {
        let mut v = vec![Process {
            name: "mesh-control".into(),
            role: Role::Control,
            workload: None,
            pid: Some(1),
        }];
        for w in [
            "productpage-v1",
            "details-v1",
            "reviews-v1",
            "reviews-v2",
            "reviews-v3",
            "ratings-v1",
        ] {
            for (name, role) in [
                (w.to_string(), Role::App),
                (format!("{w}-proxy"), Role::Sidecar),
            ] {
                v.push(Process {
                    name,
                    role,
                    workload: Some(w.into()),
                    pid: Some(2),
                });
            }
        }
        v.push(Process {
            name: "istio-ingressgateway".into(),
            role: Role::Gateway,
            workload: Some("istio-ingressgateway".into()),
            pid: Some(3),
        });
        v
    }

    #[test]
    fn ten_minutes_hit_every_process_with_both_signals() {
        let procs = mesh();
        let faults = plan(&procs, Duration::from_secs(600)).unwrap();
        assert_eq!(faults.len(), 28);
        assert_eq!(faults[1].at - faults[0].at, Duration::from_secs(20));
        assert_eq!(faults[0].at, LEAD_IN);
        for p in &procs {
            let signals: Vec<Signal> = faults
                .iter()
                .filter(|f| f.process == p.name)
                .map(|f| f.signal)
                .collect();
            assert_eq!(signals.len(), 2, "{}", p.name);
            assert_ne!(signals[0], signals[1], "{}: both signals", p.name);
        }
        let names: Vec<&str> = faults[..6].iter().map(|f| f.process.as_str()).collect();
        assert_eq!(
            names,
            [
                "productpage-v1",
                "reviews-v2-proxy",
                "istio-ingressgateway",
                "details-v1",
                "reviews-v3-proxy",
                "mesh-control"
            ]
        );
        assert_eq!(
            faults[1].line(),
            "40000\treviews-v2-proxy\tsidecar\treviews-v2\t--sidecar\tKILL"
        );
        assert_eq!(
            faults[5].line(),
            "120000\tmesh-control\tcontrol\tmesh-control\t--app\tKILL"
        );
    }

    #[test]
    fn two_minutes_cover_every_kind_and_both_signals() {
        let faults = plan(&mesh(), Duration::from_secs(120)).unwrap();
        assert_eq!(faults.len(), 6);
        assert_eq!(faults[1].at - faults[0].at, MIN_SPACING);
        for role in [Role::App, Role::Sidecar, Role::Gateway, Role::Control] {
            assert!(faults.iter().any(|f| f.role == role), "{role:?}");
        }
        assert!(faults.iter().any(|f| f.signal == Signal::Term));
        assert!(faults.iter().any(|f| f.signal == Signal::Kill));
        assert!(faults.last().unwrap().at <= Duration::from_secs(100));
        let e = plan(&mesh(), Duration::from_secs(30)).unwrap_err();
        assert!(e.to_string().contains("at least 40 s"), "{e}");
        assert!(plan(&[], Duration::from_secs(600)).is_err());
    }
}
