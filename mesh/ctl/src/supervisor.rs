//! Supervision like a pod's: every child process is restarted when it exits unexpectedly,
//! with exponential backoff, and stopped cleanly (SIGTERM, a grace period, then SIGKILL)
//! when meshctl stops.
//!
//! Each child runs in its own process group. A Ctrl-C in the terminal then reaches only
//! meshctl, which stops the children in order instead of them all dying at once and
//! racing the supervisor into restarting them; signals go to the whole group so nothing a
//! child started is left behind.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backoff::{Backoff, BackoffPolicy};

/// Where a child's stdout and stderr go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Appended to this file (created with its directory).
    File(PathBuf),
    /// Printed on meshctl's stdout, each line prefixed with the process name.
    Prefixed,
}

/// How to run one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessSpec {
    /// Name in events, logs and the state file.
    pub name: String,
    /// Executable.
    pub program: PathBuf,
    /// Arguments.
    pub args: Vec<String>,
    /// Variables set for it.
    pub env: Vec<(String, String)>,
    /// Variables removed from the inherited environment.
    pub env_remove: Vec<String>,
    /// Its output.
    pub output: Output,
}

/// Something that happened to a supervised process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// It (re)started.
    Started {
        /// Process name.
        name: String,
        /// Its pid.
        pid: u32,
    },
    /// It exited on its own; it restarts after `restart_in`.
    Exited {
        /// Process name.
        name: String,
        /// `signal 9`, `code 1`.
        status: String,
        /// The backoff delay.
        restart_in: Duration,
    },
    /// It could not be started; another try comes after `retry_in`.
    SpawnFailed {
        /// Process name.
        name: String,
        /// Why.
        error: String,
        /// The backoff delay.
        retry_in: Duration,
    },
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Started { name, pid } => write!(f, "{name} started (pid {pid})"),
            Self::Exited {
                name,
                status,
                restart_in,
            } => write!(
                f,
                "{name} exited ({status}); restarting in {}",
                short(*restart_in)
            ),
            Self::SpawnFailed {
                name,
                error,
                retry_in,
            } => write!(
                f,
                "{name} could not start ({error}); retrying in {}",
                short(*retry_in)
            ),
        }
    }
}

/// `1 s`, `250 ms`.
fn short(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// `signal 9` or `code 1`.
pub fn describe_status(status: ExitStatus) -> String {
    match (status.signal(), status.code()) {
        (Some(sig), _) => format!("signal {sig}"),
        (None, Some(code)) => format!("code {code}"),
        (None, None) => "unknown status".to_owned(),
    }
}

/// Runs and watches child processes.
#[derive(Debug)]
pub struct Supervisor {
    policy: BackoffPolicy,
    grace: Duration,
    shutdown: watch::Sender<bool>,
    events: mpsc::UnboundedSender<Event>,
    pids: Arc<Mutex<BTreeMap<String, u32>>>,
    tasks: JoinSet<()>,
}

impl Supervisor {
    /// A supervisor restarting with `policy` and giving children `grace` to stop; events
    /// arrive on the returned receiver.
    pub fn new(policy: BackoffPolicy, grace: Duration) -> (Self, mpsc::UnboundedReceiver<Event>) {
        let (events, rx) = mpsc::unbounded_channel();
        let (shutdown, _) = watch::channel(false);
        let s = Self {
            policy,
            grace,
            shutdown,
            events,
            pids: Arc::default(),
            tasks: JoinSet::new(),
        };
        (s, rx)
    }

    /// Starts supervising `spec`.
    pub fn spawn(&mut self, spec: ProcessSpec) {
        let watch = Watch {
            spec,
            policy: self.policy,
            grace: self.grace,
            shutdown: self.shutdown.subscribe(),
            events: self.events.clone(),
            pids: self.pids.clone(),
        };
        self.tasks.spawn(watch.run());
    }

    /// The current pid of every running child, by name.
    pub fn pids(&self) -> BTreeMap<String, u32> {
        self.pids.lock().map(|p| p.clone()).unwrap_or_default()
    }

    /// Stops every child (SIGTERM, then SIGKILL after the grace period) and waits for all.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}

/// One supervised process.
struct Watch {
    spec: ProcessSpec,
    policy: BackoffPolicy,
    grace: Duration,
    shutdown: watch::Receiver<bool>,
    events: mpsc::UnboundedSender<Event>,
    pids: Arc<Mutex<BTreeMap<String, u32>>>,
}

impl Watch {
    async fn run(mut self) {
        let mut backoff = Backoff::new(self.policy);
        let name = self.spec.name.clone();
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            let started = Instant::now();
            let delay = match start(&self.spec) {
                Ok((mut child, pid)) => {
                    self.set_pid(Some(pid));
                    let _ = self.events.send(Event::Started {
                        name: name.clone(),
                        pid,
                    });
                    let mut stop = self.shutdown.clone();
                    let exited = tokio::select! {
                        status = child.wait() => Some(status),
                        _ = stop.wait_for(|stop| *stop) => None,
                    };
                    let Some(status) = exited else {
                        terminate(&mut child, pid, self.grace).await;
                        self.set_pid(None);
                        return;
                    };
                    self.set_pid(None);
                    if *self.shutdown.borrow() {
                        return;
                    }
                    let restart_in = backoff.delay_after(started.elapsed());
                    let status = match status {
                        Ok(s) => describe_status(s),
                        Err(e) => e.to_string(),
                    };
                    let _ = self.events.send(Event::Exited {
                        name: name.clone(),
                        status,
                        restart_in,
                    });
                    restart_in
                }
                Err(e) => {
                    let retry_in = backoff.delay_after(Duration::ZERO);
                    let _ = self.events.send(Event::SpawnFailed {
                        name: name.clone(),
                        error: e.to_string(),
                        retry_in,
                    });
                    retry_in
                }
            };
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = self.shutdown.wait_for(|stop| *stop) => return,
            }
        }
    }

    fn set_pid(&self, pid: Option<u32>) {
        if let Ok(mut pids) = self.pids.lock() {
            match pid {
                Some(p) => pids.insert(self.spec.name.clone(), p),
                None => pids.remove(&self.spec.name),
            };
        }
    }
}

/// Spawns the process in its own process group, output wired as asked.
fn start(spec: &ProcessSpec) -> std::io::Result<(Child, u32)> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .stdin(Stdio::null())
        .process_group(0)
        // The last resort: if meshctl's runtime goes away without stopping us, the child
        // is killed rather than orphaned.
        .kill_on_drop(true);
    for var in &spec.env_remove {
        cmd.env_remove(var);
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
    match &spec.output {
        Output::File(path) => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            cmd.stdout(file.try_clone()?).stderr(file);
        }
        Output::Prefixed => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
    }
    let mut child = cmd.spawn()?;
    let pid = child
        .id()
        .ok_or_else(|| std::io::Error::other("the process exited at once"))?;
    if spec.output == Output::Prefixed {
        if let Some(out) = child.stdout.take() {
            tokio::spawn(prefix_lines(spec.name.clone(), out));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(prefix_lines(spec.name.clone(), err));
        }
    }
    Ok((child, pid))
}

async fn prefix_lines(name: String, stream: impl tokio::io::AsyncRead + Unpin) {
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        println!("{name:>22} | {line}");
    }
}

/// SIGTERM to the child's group, up to `grace` to exit, then SIGKILL.
async fn terminate(child: &mut Child, pid: u32, grace: Duration) {
    let group = Pid::from_raw(pid as i32);
    let _ = killpg(group, Signal::SIGTERM);
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait().await;
    } else {
        // The leader is gone; anything it left in its group goes too.
        let _ = killpg(group, Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_like_the_up_log() {
        let e = Event::Exited {
            name: "reviews-v2".into(),
            status: "signal 9".into(),
            restart_in: Duration::from_secs(1),
        };
        assert_eq!(
            e.to_string(),
            "reviews-v2 exited (signal 9); restarting in 1 s"
        );
        let e = Event::SpawnFailed {
            name: "x".into(),
            error: "No such file".into(),
            retry_in: Duration::from_millis(250),
        };
        assert_eq!(
            e.to_string(),
            "x could not start (No such file); retrying in 250 ms"
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(describe_status(ExitStatus::from_raw(9)), "signal 9");
        assert_eq!(describe_status(ExitStatus::from_raw(1 << 8)), "code 1");
    }
}
