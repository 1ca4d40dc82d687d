//! `meshctl kill <workload>`: a chaos action. SIGKILL (or `--signal TERM` for a graceful
//! stop) the workload's app (or sidecar) process found in the state file; the
//! supervisor of `meshctl up` restarts it.

use std::path::Path;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::CtlError;
use crate::cli::KillArgs;
use crate::state::{ProcessState, Role, State};

pub(super) fn run(args: &KillArgs, run_dir: &Path) -> Result<u8, CtlError> {
    let state = State::load(run_dir)?;
    if !alive(state.meshctl_pid) {
        return Err(CtlError::Failed(format!(
            "`meshctl up` (pid {}) is not running any more; {} is stale",
            state.meshctl_pid,
            State::path(run_dir).display()
        )));
    }
    let role = if args.sidecar {
        Role::Sidecar
    } else {
        Role::App
    };
    let target = find(&state, &args.workload, role)?;
    let pid = target.pid.ok_or_else(|| {
        CtlError::Failed(format!(
            "{} is not running right now (it is being restarted)",
            target.name
        ))
    })?;
    kill(Pid::from_raw(pid as i32), args.signal)
        .map_err(|e| CtlError::Failed(format!("cannot signal {} (pid {pid}): {e}", target.name)))?;
    if args.signal == Signal::SIGKILL {
        println!(
            "killed {} (pid {pid}); the supervisor of `meshctl up` restarts it after its backoff",
            target.name
        );
    } else {
        println!(
            "sent {} to {} (pid {pid}); the supervisor of `meshctl up` restarts it when it exits",
            args.signal.as_str(),
            target.name
        );
    }
    Ok(0)
}

/// The process of `workload` with `role`; a process name matches too (`mesh-control`,
/// `istio-ingressgateway`, `reviews-v2-proxy`).
fn find<'a>(state: &'a State, workload: &str, role: Role) -> Result<&'a ProcessState, CtlError> {
    let by_workload = state.processes.iter().find(|p| {
        p.workload.as_deref() == Some(workload)
            && (p.role == role || matches!(p.role, Role::Gateway | Role::Control))
    });
    by_workload
        .or_else(|| state.processes.iter().find(|p| p.name == workload))
        .ok_or_else(|| {
            let names: Vec<&str> = state
                .processes
                .iter()
                .filter_map(|p| match p.role {
                    Role::Sidecar => None,
                    _ => Some(p.workload.as_deref().unwrap_or(&p.name)),
                })
                .collect();
            CtlError::Failed(format!(
                "no workload {workload:?} in this `meshctl up`; running: {}",
                names.join(", ")
            ))
        })
}

fn alive(pid: u32) -> bool {
    kill(Pid::from_raw(pid as i32), None).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn p(name: &str, role: Role, workload: Option<&str>) -> ProcessState {
        ProcessState {
            name: name.into(),
            role,
            workload: workload.map(Into::into),
            pid: Some(1),
            ports: BTreeMap::new(),
            log: None,
        }
    }

    #[test]
    fn finds_app_sidecar_and_named_processes() {
        let s = State {
            meshctl_pid: 1,
            mesh: true,
            product_page_url: String::new(),
            control_url: None,
            dashboard_url: None,
            processes: vec![
                p("mesh-control", Role::Control, None),
                p("reviews-v2", Role::App, Some("reviews-v2")),
                p("reviews-v2-proxy", Role::Sidecar, Some("reviews-v2")),
                p(
                    "istio-ingressgateway",
                    Role::Gateway,
                    Some("istio-ingressgateway"),
                ),
            ],
        };
        assert_eq!(
            find(&s, "reviews-v2", Role::App).unwrap().name,
            "reviews-v2"
        );
        assert_eq!(
            find(&s, "reviews-v2", Role::Sidecar).unwrap().name,
            "reviews-v2-proxy"
        );
        assert_eq!(
            find(&s, "mesh-control", Role::App).unwrap().name,
            "mesh-control"
        );
        assert_eq!(
            find(&s, "istio-ingressgateway", Role::App).unwrap().name,
            "istio-ingressgateway"
        );
        let e = find(&s, "ratings-v1", Role::App).unwrap_err().to_string();
        assert!(
            e.contains("running: mesh-control, reviews-v2, istio-ingressgateway"),
            "{e}"
        );
    }
}
