//! The state file `meshctl up` writes (`.run/meshctl/state.json`): which processes run
//! with which pids and ports, and the URLs. The other subcommands read it to find the
//! control plane and to `kill` a workload.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::CtlError;

/// File name inside the run directory.
pub const FILE_NAME: &str = "state.json";

/// What a process is in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// `mesh-control`.
    Control,
    /// A Bookinfo service.
    App,
    /// A workload's sidecar.
    Sidecar,
    /// The ingress gateway.
    Gateway,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessState {
    /// Process name, also its log file name: `reviews-v2`, `reviews-v2-proxy`.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The workload it belongs to (`reviews-v2`; `istio-ingressgateway` for the gateway).
    pub workload: Option<String>,
    /// Current pid, absent while it is being restarted.
    pub pid: Option<u32>,
    /// Named ports: `app`, `outbound`, `inbound`, `admin`, `gateway`, `http`.
    pub ports: BTreeMap<String, u16>,
    /// Log file.
    pub log: Option<PathBuf>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The `meshctl up` process.
    pub meshctl_pid: u32,
    /// Whether the mesh runs (false for `--no-mesh`).
    pub mesh: bool,
    /// The product page.
    pub product_page_url: String,
    /// The control plane (absent without the mesh).
    pub control_url: Option<String>,
    /// The dashboard.
    pub dashboard_url: Option<String>,
    /// Every process.
    pub processes: Vec<ProcessState>,
}

impl State {
    /// The path of the state file in `run_dir`.
    pub fn path(run_dir: &Path) -> PathBuf {
        run_dir.join(FILE_NAME)
    }

    /// Writes the file atomically (a reader never sees half a file).
    pub fn save(&self, run_dir: &Path) -> Result<(), CtlError> {
        let path = Self::path(run_dir);
        let tmp = run_dir.join(format!(".{FILE_NAME}.tmp"));
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| CtlError::Failed(format!("cannot encode the state file: {e}")))?;
        std::fs::write(&tmp, text + "\n")
            .map_err(|e| CtlError::io(format!("cannot write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &path)
            .map_err(|e| CtlError::io(format!("cannot write {}", path.display()), e))
    }

    /// Reads the file; a missing file says that `meshctl up` is not running here.
    pub fn load(run_dir: &Path) -> Result<Self, CtlError> {
        let path = Self::path(run_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(CtlError::Failed(format!(
                    "no {} found: is `meshctl up` running from this directory? (or pass --run-dir)",
                    path.display()
                )));
            }
            Err(e) => return Err(CtlError::io(format!("cannot read {}", path.display()), e)),
        };
        serde_json::from_str(&text).map_err(|e| {
            CtlError::Failed(format!(
                "{} is not a meshctl state file: {e}",
                path.display()
            ))
        })
    }

    /// Reads the file if there is a readable one.
    pub fn load_optional(run_dir: &Path) -> Option<Self> {
        Self::load(run_dir).ok()
    }

    /// Removes the file (missing is fine).
    pub fn remove(run_dir: &Path) {
        let _ = std::fs::remove_file(Self::path(run_dir));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> State {
        State {
            meshctl_pid: 42,
            mesh: true,
            product_page_url: "http://127.0.0.1:8080/productpage".into(),
            control_url: Some("http://127.0.0.1:15010".into()),
            dashboard_url: Some("http://127.0.0.1:15010/".into()),
            processes: vec![ProcessState {
                name: "reviews-v2".into(),
                role: Role::App,
                workload: Some("reviews-v2".into()),
                pid: Some(1234),
                ports: BTreeMap::from([("app".to_owned(), 15130)]),
                log: Some(".run/meshctl/logs/reviews-v2.log".into()),
            }],
        }
    }

    #[test]
    fn round_trip() {
        let dir = std::env::temp_dir().join(format!("meshctl-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        sample().save(&dir).unwrap();
        let text = std::fs::read_to_string(State::path(&dir)).unwrap();
        assert!(text.contains("\"role\": \"app\""), "{text}");
        assert_eq!(State::load(&dir).unwrap(), sample());
        State::remove(&dir);
        let e = State::load(&dir).unwrap_err().to_string();
        assert!(e.contains("meshctl up"), "{e}");
        std::fs::write(State::path(&dir), "{garbage").unwrap();
        let e = State::load(&dir).unwrap_err().to_string();
        assert!(e.contains("not a meshctl state file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
