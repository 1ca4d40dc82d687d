//! Runs a lab's command blocks with `bash`, the way a student's terminal would: one
//! after another in the lab's folder, with the variables exported by earlier blocks, the
//! workspace's binaries first on `PATH`, and a time limit per block.
//!
//! Each block is its own `bash -c` (sourcing the exports saved by the block before, and
//! saving its own). A command that fails at the top of the block ends it and fails the
//! step, like `set -e`, but only there: inside a pipeline (`for ...; done | sort`) a
//! failing `grep -c` is what it is in a terminal, part of the output. Each block runs in
//! its own process group, which is ended with the block: its background jobs do not
//! outlive it.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::expect::Outcome;

/// Variables of the machine that must not reach the lab: an outside proxy would capture
/// loopback traffic, and meshctl's and chaos's own settings would point at another mesh.
pub const SCRUBBED: &[&str] = &[
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
    "MESHCTL_CONTROL",
    "MESHCTL_RUN_DIR",
    "MESH_CONTROL_URL",
    "BOOKINFO_URL",
    "BOOKINFO_MESH_CONFIG",
    "CHAOS_MESHCTL",
];

/// Sources the saved exports, runs the block, saves the exports again.
/// An ERR trap rather than `set -e`: it is not inherited by the subshells of pipelines.
const WRAPPER: &str = r#"source "$1" || exit 125
trap 'exit $?' ERR
source "$2"
trap - ERR
export -p > "$1"
"#;

/// A terminal for one lab.
#[derive(Debug)]
pub struct Shell {
    workdir: PathBuf,
    env_file: PathBuf,
    script_file: PathBuf,
    output_file: PathBuf,
}

impl Shell {
    /// A shell in `workdir` with `bin_dir` first on `PATH`; its files live in
    /// `workdir/.labs/`.
    pub fn new(workdir: &Path, bin_dir: &Path) -> std::io::Result<Self> {
        let state = workdir.join(".labs");
        std::fs::create_dir_all(&state)?;
        let env_file = state.join("exports.sh");
        let bin = bin_dir.display().to_string().replace('\'', r"'\''");
        std::fs::write(
            &env_file,
            format!(
                "export PATH='{bin}':\"$PATH\"\nunset {}\n",
                SCRUBBED.join(" ")
            ),
        )?;
        Ok(Self {
            workdir: workdir.to_path_buf(),
            env_file,
            script_file: state.join("step.sh"),
            output_file: state.join("output.txt"),
        })
    }

    /// Runs one block; its output is everything it printed (stdout and stderr, in order).
    pub fn run(&self, script: &str, limit: Duration) -> std::io::Result<Outcome> {
        std::fs::write(&self.script_file, script)?;
        let out = File::create(&self.output_file)?;
        let started = Instant::now();
        let mut command = Command::new("bash");
        command
            .args(["--noprofile", "--norc", "-c", WRAPPER, "labs"])
            .arg(&self.env_file)
            .arg(&self.script_file)
            .current_dir(&self.workdir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        for v in SCRUBBED {
            command.env_remove(v);
        }
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn()?;
        let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        let deadline = started + limit;
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break Some(s);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = started.elapsed();
        // The block is over: whatever it left running (a timed-out command, a background
        // job) goes with it. ESRCH (nothing left) is the usual answer.
        let _ = killpg(group, Signal::SIGKILL);
        if status.is_none() {
            let _ = child.wait();
        }
        let output = String::from_utf8_lossy(&std::fs::read(&self.output_file)?).into_owned();
        Ok(Outcome {
            output,
            exit: status.and_then(|s| s.code()),
            took,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(name: &str) -> (Shell, PathBuf) {
        let dir = std::env::temp_dir().join(format!("labs-shell-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        (Shell::new(&dir, Path::new("/opt/lab bin's")).unwrap(), dir)
    }

    #[test]
    fn exports_carry_over_and_output_interleaves() {
        let (sh, dir) = shell("exports");
        let first = sh
            .run(
                "export GATEWAY_URL=127.0.0.1:1\necho out; echo err >&2\n",
                Duration::from_secs(10),
            )
            .unwrap();
        assert_eq!((first.output.as_str(), first.exit), ("out\nerr\n", Some(0)));
        let second = sh
            .run(
                "echo \"$GATEWAY_URL\"; echo \"$PATH\" | cut -d: -f1; pwd",
                Duration::from_secs(10),
            )
            .unwrap();
        let lines: Vec<&str> = second.output.lines().collect();
        assert_eq!(lines[..2], ["127.0.0.1:1", "/opt/lab bin's"]);
        assert_eq!(
            Path::new(lines[2]).canonicalize().unwrap(),
            dir.canonicalize().unwrap()
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_failing_command_fails_the_block_and_a_slow_one_is_stopped() {
        let (sh, dir) = shell("fail");
        let failed = sh
            .run("false\necho never", Duration::from_secs(10))
            .unwrap();
        assert_eq!((failed.output.as_str(), failed.exit), ("", Some(1)));
        let piped = sh.run("false | true", Duration::from_secs(10)).unwrap();
        assert_eq!(
            piped.exit,
            Some(0),
            "a pipeline's status is its last command's"
        );
        let slow = sh
            .run("echo started; sleep 30", Duration::from_millis(300))
            .unwrap();
        assert_eq!((slow.output.as_str(), slow.exit), ("started\n", None));
        assert!(slow.took < Duration::from_secs(5));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
