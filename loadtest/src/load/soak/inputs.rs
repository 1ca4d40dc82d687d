//! What the soak reads besides the request log: meshctl's state file (which processes
//! run), and the two tab-separated logs `scripts/soak.sh` writes while it runs.
//!
//! Fault log, one line per fault (`-` for a value that is not known):
//! `kill_unix_ms process role workload signal old_pid new_pid restart_unix_ms`, where
//! `restart_unix_ms` is the start time of the process the supervisor started in its place.
//!
//! Memory log, one line per process and phase:
//! `phase process role pid rss_kb started_unix_ms sampled_unix_ms` (`phase` is `start` or
//! `end`).

use std::collections::BTreeMap;

use serde::Deserialize;

use super::{Role, Signal, SoakError, service_of};

/// One process of the mesh, as meshctl's state file lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Process {
    pub name: String,
    pub role: Role,
    pub workload: Option<String>,
    pub pid: Option<u32>,
}

impl Process {
    /// The service it serves (apps and sidecars), e.g. `reviews`.
    pub fn service(&self) -> Option<&str> {
        service(self.role, self.workload.as_deref())
    }
}

/// The service of an app or sidecar of `workload`; none for the other roles.
fn service(role: Role, workload: Option<&str>) -> Option<&str> {
    match role {
        Role::App | Role::Sidecar => workload.map(service_of),
        Role::Control | Role::Gateway | Role::Supervisor => None,
    }
}

#[derive(Deserialize)]
struct StateFile {
    processes: Vec<Process>,
}

/// The processes of a meshctl state file.
pub fn parse_state(text: &str) -> Result<Vec<Process>, SoakError> {
    let state: StateFile =
        serde_json::from_str(text).map_err(|e| SoakError::State(e.to_string()))?;
    if state.processes.is_empty() {
        return Err(SoakError::State("no processes listed".into()));
    }
    Ok(state.processes)
}

/// How many app workloads serve each service: `reviews` has 3 under `meshctl up`.
pub fn endpoints(processes: &[Process]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for p in processes.iter().filter(|p| p.role == Role::App) {
        if let Some(s) = p.service() {
            *counts.entry(s.to_string()).or_default() += 1;
        }
    }
    counts
}

/// One fault as it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRecord {
    pub kill_unix_ms: u64,
    pub process: String,
    pub role: Role,
    pub workload: Option<String>,
    pub signal: Signal,
    pub old_pid: Option<u32>,
    pub new_pid: Option<u32>,
    /// When the supervisor's replacement process started; `None` if it was not seen.
    pub restart_unix_ms: Option<u64>,
}

impl FaultRecord {
    /// The service it hit (apps and sidecars).
    pub fn service(&self) -> Option<&str> {
        service(self.role, self.workload.as_deref())
    }

    /// `TERM reviews-v2-proxy (sidecar)`.
    pub fn label(&self) -> String {
        format!(
            "{} {} ({})",
            self.signal.as_str(),
            self.process,
            self.role.as_str()
        )
    }
}

fn fields(line: &str, n: usize) -> Result<Vec<&str>, String> {
    let f: Vec<&str> = line.split('\t').map(str::trim).collect();
    if f.len() != n {
        return Err(format!(
            "expected {n} tab-separated fields, found {}",
            f.len()
        ));
    }
    Ok(f)
}

fn optional<T: std::str::FromStr>(text: &str, what: &str) -> Result<Option<T>, String> {
    if text == "-" || text.is_empty() {
        return Ok(None);
    }
    text.parse()
        .map(Some)
        .map_err(|_| format!("{what} {text:?} is not a number"))
}

fn required<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, String> {
    optional(text, what)?.ok_or_else(|| format!("{what} is missing"))
}

fn role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("role {text:?} is not control, app, sidecar or gateway"))
}

/// Parses the fault log (lines starting with `#` are comments).
pub fn parse_faults(text: &str) -> Result<Vec<FaultRecord>, SoakError> {
    let mut faults = Vec::new();
    for (i, line) in numbered(text) {
        let parse = || -> Result<FaultRecord, String> {
            let f = fields(line, 8)?;
            Ok(FaultRecord {
                kill_unix_ms: required(f[0], "kill_unix_ms")?,
                process: f[1].to_string(),
                role: role(f[2])?,
                workload: (f[3] != "-").then(|| f[3].to_string()),
                signal: Signal::parse(f[4])
                    .ok_or_else(|| format!("signal {:?} is not TERM or KILL", f[4]))?,
                old_pid: optional(f[5], "old_pid")?,
                new_pid: optional(f[6], "new_pid")?,
                restart_unix_ms: optional(f[7], "restart_unix_ms")?,
            })
        };
        faults.push(parse().map_err(|reason| SoakError::Fault { line: i, reason })?);
    }
    if faults
        .windows(2)
        .any(|w| w[1].kill_unix_ms < w[0].kill_unix_ms)
    {
        return Err(SoakError::Fault {
            line: 0,
            reason: "faults are not in time order".into(),
        });
    }
    Ok(faults)
}

/// Non-empty, non-comment lines with their 1-based numbers.
fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
}

/// One memory sample of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySample {
    pub process: String,
    pub role: Role,
    pub pid: u32,
    pub rss_kb: u64,
    pub started_unix_ms: Option<u64>,
    pub sampled_unix_ms: u64,
}

/// The memory log, as (start, end) samples by process name, in the order of the start
/// samples (a process without both samples is left out).
pub fn parse_memory(text: &str) -> Result<Vec<(MemorySample, MemorySample)>, SoakError> {
    let mut start: Vec<MemorySample> = Vec::new();
    let mut end: BTreeMap<String, MemorySample> = BTreeMap::new();
    for (i, line) in numbered(text) {
        let parse = || -> Result<(String, MemorySample), String> {
            let f = fields(line, 7)?;
            Ok((
                f[0].to_string(),
                MemorySample {
                    process: f[1].to_string(),
                    role: role(f[2])?,
                    pid: required(f[3], "pid")?,
                    rss_kb: required(f[4], "rss_kb")?,
                    started_unix_ms: optional(f[5], "started_unix_ms")?,
                    sampled_unix_ms: required(f[6], "sampled_unix_ms")?,
                },
            ))
        };
        let (phase, sample) = parse().map_err(|reason| SoakError::Memory { line: i, reason })?;
        match phase.as_str() {
            "start" => start.push(sample),
            "end" => {
                end.insert(sample.process.clone(), sample);
            }
            other => {
                return Err(SoakError::Memory {
                    line: i,
                    reason: format!("phase {other:?} is not start or end"),
                });
            }
        }
    }
    Ok(start
        .into_iter()
        .filter_map(|s| end.remove(&s.process).map(|e| (s, e)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_faults_and_memory_parse() {
        let state = r#"{"meshctl_pid": 1, "processes": [
            {"name": "mesh-control", "role": "control", "workload": null, "pid": 10},
            {"name": "reviews-v1", "role": "app", "workload": "reviews-v1", "pid": 11},
            {"name": "reviews-v2", "role": "app", "workload": "reviews-v2", "pid": 12},
            {"name": "reviews-v2-proxy", "role": "sidecar", "workload": "reviews-v2", "pid": null},
            {"name": "details-v1", "role": "app", "workload": "details-v1", "pid": 13}]}"#;
        let procs = parse_state(state).unwrap();
        assert_eq!(procs[3].service(), Some("reviews"));
        assert_eq!(procs[0].service(), None);
        let e = endpoints(&procs);
        assert_eq!((e["reviews"], e["details"]), (2, 1));
        assert!(
            parse_state("{}")
                .unwrap_err()
                .to_string()
                .contains("processes")
        );

        let faults = "# comment\n1000\treviews-v2-proxy\tsidecar\treviews-v2\tKILL\t12\t14\t2010\n\
                      3000\tmesh-control\tcontrol\t-\tTERM\t10\t-\t-\n";
        let f = parse_faults(faults).unwrap();
        assert_eq!(f[0].service(), Some("reviews"));
        assert_eq!(f[0].label(), "KILL reviews-v2-proxy (sidecar)");
        assert_eq!((f[1].new_pid, f[1].restart_unix_ms), (None, None));
        let e = parse_faults("1\tx\tpod\t-\tKILL\t1\t2\t3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 1: role \"pod\""), "{e}");
        let e = parse_faults("1\tx\tapp\t-\tSTOP\t1\t2\t3")
            .unwrap_err()
            .to_string();
        assert!(e.contains("signal \"STOP\""), "{e}");
        let e = parse_faults("\n1\tx\tapp").unwrap_err().to_string();
        assert!(e.contains("line 2: expected 8"), "{e}");
        let e = parse_faults("5\tx\tapp\t-\tKILL\t-\t-\t-\n4\tx\tapp\t-\tKILL\t-\t-\t-")
            .unwrap_err()
            .to_string();
        assert!(e.contains("time order"), "{e}");

        let memory = "start\tdetails-v1\tapp\t13\t5000\t100\t200\n\
                      start\tgone\tapp\t15\t5000\t100\t200\n\
                      end\tdetails-v1\tapp\t16\t5600\t900\t1000\n";
        let m = parse_memory(memory).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].0.rss_kb, m[0].1.rss_kb, m[0].1.pid), (5000, 5600, 16));
        let e = parse_memory("middle\tx\tapp\t1\t2\t3\t4")
            .unwrap_err()
            .to_string();
        assert!(e.contains("phase \"middle\""), "{e}");
        let e = parse_memory("start\tx\tapp\tone\t2\t3\t4")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pid \"one\" is not a number"), "{e}");
    }
}
