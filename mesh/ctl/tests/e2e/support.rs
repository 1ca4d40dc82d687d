//! The harness of the end-to-end tests: a real `meshctl up` with the real binaries.
//!
//! The binaries must sit next to meshctl (`target/<profile>/`): run
//! `cargo build --workspace --bins` first. Each test uses its own ports and run directory
//! so they can run in parallel; the ports are below Linux's ephemeral range (32768+), so
//! outgoing connections of other programs cannot take them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mesh_ctl::state::State;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::time::{Instant, sleep};

pub(crate) const BINARIES: [&str; 6] = [
    "productpage",
    "details",
    "reviews",
    "ratings",
    "mesh-proxy",
    "mesh-control",
];

/// Where the workspace's binaries are: next to meshctl.
pub(crate) fn bin_dir() -> PathBuf {
    let meshctl = PathBuf::from(env!("CARGO_BIN_EXE_meshctl"));
    let dir = meshctl.parent().map(Path::to_path_buf).unwrap_or_default();
    let missing: Vec<&str> = BINARIES
        .iter()
        .copied()
        .filter(|b| !dir.join(b).is_file())
        .collect();
    assert!(
        missing.is_empty(),
        "missing {} in {}: run `cargo build --workspace --bins` first",
        missing.join(", "),
        dir.display()
    );
    dir
}

/// A running `meshctl up`; stopped (and checked) on drop if the test did not stop it.
pub(crate) struct Up {
    pub(crate) child: Option<Child>,
    pub(crate) run_dir: PathBuf,
    out: PathBuf,
    pub(crate) gateway: u16,
}

impl Up {
    pub(crate) fn start(test: &str, base: u16, control: u16, gateway: u16, extra: &[&str]) -> Self {
        Self::start_with_env(test, base, control, gateway, extra, &[])
    }

    /// [`Up::start`] with extra environment for meshctl and its children (e.g.
    /// `MESH_CONTROL_CERT_TTL`).
    pub(crate) fn start_with_env(
        test: &str,
        base: u16,
        control: u16,
        gateway: u16,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let bins = bin_dir();
        let run_dir =
            std::env::temp_dir().join(format!("meshctl-e2e-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&run_dir);
        std::fs::create_dir_all(&run_dir).unwrap();
        let out = run_dir.join("meshctl.out");
        let file = std::fs::File::create(&out).unwrap();
        let mesh_config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
        let child = Command::new(env!("CARGO_BIN_EXE_meshctl"))
            .arg("up")
            .args(["--bin-dir", bins.to_str().unwrap()])
            .args(["--run-dir", run_dir.to_str().unwrap()])
            .args(["--mesh-config", mesh_config.to_str().unwrap()])
            .args(["--base-port", &base.to_string()])
            .args(["--control-port", &control.to_string()])
            .args(["--gateway-port", &gateway.to_string()])
            .args(["--ready-timeout", "40s"])
            .args(extra)
            .env_remove("HTTP_PROXY")
            .env_remove("http_proxy")
            .env("RUST_LOG", "info")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self {
            child: Some(child),
            run_dir,
            out,
            gateway,
        }
    }

    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits for the banner; fails with meshctl's output if it gave up or exited.
    pub(crate) async fn ready(&mut self) -> Duration {
        let begun = Instant::now();
        let deadline = begun + Duration::from_secs(60);
        loop {
            let out = self.output();
            if out.contains("Bookinfo is ready") {
                return begun.elapsed();
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            assert!(exited.is_none(), "meshctl up exited ({exited:?}):\n{out}");
            assert!(
                Instant::now() < deadline,
                "meshctl up not ready within 60 s:\n{out}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) fn state(&self) -> State {
        State::load(&self.run_dir).unwrap()
    }

    /// The control plane's base URL.
    pub(crate) fn control_url(&self) -> String {
        self.state().control_url.unwrap()
    }

    /// A port of a process from the state file (`inbound`, `admin`, ...).
    pub(crate) fn port(&self, process: &str, which: &str) -> u16 {
        let state = self.state();
        let p = state
            .processes
            .iter()
            .find(|p| p.name == process)
            .unwrap_or_else(|| panic!("no process {process}"));
        p.ports[which]
    }

    /// The log of a process.
    pub(crate) fn log(&self, process: &str) -> String {
        let state = self.state();
        let p = state.processes.iter().find(|p| p.name == process).unwrap();
        p.log
            .as_ref()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .unwrap_or_default()
    }

    pub(crate) fn page_url(&self) -> String {
        format!("http://127.0.0.1:{}/productpage", self.gateway)
    }

    /// SIGTERM, then checks meshctl exited, every child is gone and the state file too.
    pub(crate) async fn stop(mut self) {
        let pids: Vec<u32> = self
            .state()
            .processes
            .iter()
            .filter_map(|p| p.pid)
            .collect();
        assert!(!pids.is_empty());
        let mut child = self.child.take().unwrap();
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        let status = loop {
            if let Some(s) = child.try_wait().unwrap() {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "meshctl did not stop within 15 s:\n{}",
                self.output()
            );
            sleep(Duration::from_millis(50)).await;
        };
        assert!(
            status.success(),
            "meshctl exited with {status}:\n{}",
            self.output()
        );
        assert!(
            self.output().trim_end().ends_with("stopped"),
            "{}",
            self.output()
        );
        for pid in pids {
            assert!(!alive(pid), "process {pid} survived meshctl");
        }
        assert!(
            !State::path(&self.run_dir).exists(),
            "state file left behind"
        );
        let _ = std::fs::remove_dir_all(&self.run_dir);
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        // A failed test must not leave a whole mesh running: stop meshctl like Ctrl-C.
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            for _ in 0..200 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(crate) fn alive(pid: u32) -> bool {
    // A zombie is not alive: only its exit status is left.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").map(|(_, rest)| rest.chars().next());
    kill(Pid::from_raw(pid as i32), None).is_ok() && state != Some(Some('Z'))
}

pub(crate) fn http() -> reqwest::Client {
    bookinfo_common::client::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// GETs `url` and decodes its JSON answer (any status: the caller checks the fields).
pub(crate) async fn get_json<T: serde::de::DeserializeOwned>(url: impl reqwest::IntoUrl) -> T {
    http().get(url).send().await.unwrap().json().await.unwrap()
}

/// POSTs `body` as JSON to `url` and decodes the JSON answer.
pub(crate) async fn post_json<T: serde::de::DeserializeOwned>(
    url: impl reqwest::IntoUrl,
    body: &serde_json::Value,
) -> T {
    http()
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// GETs `url` until it answers 200 with a body containing `want`, within `within`.
pub(crate) async fn page_with(url: &str, want: &str, within: Duration) -> String {
    let http = http();
    let deadline = Instant::now() + within;
    let mut last = String::new();
    while Instant::now() < deadline {
        match http.get(url).send().await {
            Ok(r) if r.status() == 200 => {
                let body = r.text().await.unwrap_or_default();
                if body.contains(want) {
                    return body;
                }
                last = format!("200 without {want:?}");
            }
            Ok(r) => last = format!("status {}", r.status()),
            Err(e) => last = e.to_string(),
        }
        sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never answered 200 with {want:?} within {within:?}; last: {last}");
}

/// Runs `meshctl kill` against the run directory.
pub(crate) fn meshctl_kill(up: &Up, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_meshctl"))
        .arg("kill")
        .args(args)
        .args(["--run-dir", up.run_dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until the state file shows `name` running with a pid other than `old`.
pub(crate) async fn restarted(up: &Up, name: &str, old: u32) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let pid = up
            .state()
            .processes
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.pid);
        if let Some(pid) = pid.filter(|p| *p != old) {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{name} not restarted:\n{}",
            up.output()
        );
        sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) fn pid_of(state: &State, name: &str) -> u32 {
    state
        .processes
        .iter()
        .find(|p| p.name == name)
        .and_then(|p| p.pid)
        .unwrap()
}
