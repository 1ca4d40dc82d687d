//! The lab's own `meshctl up`: started in the lab's folder on the runner's free ports,
//! awaited until it prints that Bookinfo is ready, and stopped with the Ctrl-C a student
//! would type (then, if it does not stop in time, killed with everything it started).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::ports::Plan;
use crate::shell::SCRUBBED;

/// What `meshctl up` prints once every process is ready and the page answers.
const READY: &str = "Bookinfo is ready";
/// How long a Ctrl-C'd `meshctl up` gets to stop its children.
const STOP_GRACE: Duration = Duration::from_secs(15);

/// Why the mesh did not come up.
#[derive(Debug, thiserror::Error)]
pub enum MeshError {
    /// meshctl could not be started.
    #[error("cannot run {meshctl}: {source}")]
    Spawn {
        /// The binary.
        meshctl: String,
        /// Why.
        source: std::io::Error,
    },
    /// It exited, or was not ready in time.
    #[error("`meshctl up` {why}; its output:\n{output}")]
    NotReady {
        /// What happened.
        why: String,
        /// Its output.
        output: String,
    },
}

/// A running `meshctl up`; stopped on drop.
#[derive(Debug)]
pub struct Mesh {
    child: Option<Child>,
    out: PathBuf,
}

impl Mesh {
    /// Starts `meshctl up ARGS` with the plan's ports in `workdir` and waits for it.
    pub fn start(
        workdir: &Path,
        bin_dir: &Path,
        args: &[String],
        plan: &Plan,
        limit: Duration,
    ) -> Result<Self, MeshError> {
        let meshctl = bin_dir.join("meshctl");
        let out = workdir.join(".labs").join("meshctl-up.txt");
        let spawn_error = |source| MeshError::Spawn {
            meshctl: meshctl.display().to_string(),
            source,
        };
        let file = File::create(&out).map_err(spawn_error)?;
        let mut command = Command::new(&meshctl);
        command
            .arg("up")
            .args(args)
            .args(plan.flags())
            .current_dir(workdir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().map_err(spawn_error)?)
            .stderr(file);
        for v in SCRUBBED {
            command.env_remove(v);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let child = command.spawn().map_err(spawn_error)?;
        let mut mesh = Self {
            child: Some(child),
            out,
        };
        let deadline = Instant::now() + limit;
        loop {
            if mesh.output().contains(READY) {
                return Ok(mesh);
            }
            let exited = mesh
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(mesh.not_ready(format!("exited ({status})")));
            }
            if Instant::now() >= deadline {
                return Err(mesh.not_ready(format!("was not ready within {} s", limit.as_secs())));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn not_ready(mut self, why: String) -> MeshError {
        self.stop();
        MeshError::NotReady {
            why,
            output: self.output(),
        }
    }

    /// What it printed so far.
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Ctrl-C, then a kill of the whole group if it is still there after the grace.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + STOP_GRACE;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // Whatever is left of its process group (children it did not stop in time).
        let _ = killpg(pid, Signal::SIGKILL);
        let _ = child.wait();
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        self.stop();
    }
}
