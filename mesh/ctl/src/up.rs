//! `meshctl up`: the whole Bookinfo mesh on 127.0.0.1, supervised like pods.
//!
//! Order: the control plane first (proxies register with it), then every app, sidecar
//! and the gateway at once; readiness is awaited for all of them together, then the
//! first 200 of the product page through the gateway. Ctrl-C (or SIGTERM, SIGHUP) stops
//! every child and removes the state file.

mod plan;
mod progress;
mod ready;
mod tokens;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::plan::{Component, Plan, PlanInput};
use self::progress::Progress;
use crate::CtlError;
use crate::backoff::BackoffPolicy;
use crate::cli::UpArgs;
use crate::ports::PortPlan;
use crate::state::State;
use crate::supervisor::{Event, Supervisor};
use crate::workloads::{self, Workload};

/// How long children get to stop after SIGTERM.
const GRACE: Duration = Duration::from_secs(5);
/// Shipped routing files the default config directory starts with.
const SEED_FILES: [&str; 2] = ["destination-rule-all.yaml", "bookinfo-gateway.yaml"];

/// Runs `meshctl up` until a signal; the value is the exit code.
pub async fn run(args: UpArgs, run_dir: &Path) -> Result<u8, CtlError> {
    let started = Instant::now();
    let ports = PortPlan::new(args.base_port, args.control_port, args.gateway_port)?;
    let workloads = choose_workloads(&args)?;
    let bin_dir = bin_dir(args.bin_dir.as_deref())?;
    refuse_second_up(run_dir)?;
    std::fs::create_dir_all(run_dir)
        .map_err(|e| CtlError::io(format!("cannot create {}", run_dir.display()), e))?;
    let log_dir = run_dir.join("logs");
    let tokens_dir = absolute(&run_dir.join("tokens"))?;
    let config_dir = if args.no_mesh {
        run_dir.join("config")
    } else {
        config_dir(&args, run_dir)?
    };
    let input = PlanInput {
        bin_dir: bin_dir.clone(),
        log_dir: log_dir.clone(),
        config_dir,
        tokens_dir: tokens_dir.clone(),
        ca_dir: absolute(&run_dir.join("ca"))?,
        ports,
        workloads,
        mesh: !args.no_mesh,
        verbose: args.verbose,
        pod_suffix: format!("{:x}", std::process::id()),
        otlp_elsewhere: [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        ]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| !x.is_empty())),
        batch_delay_set: std::env::var_os("OTEL_BSP_SCHEDULE_DELAY").is_some(),
    };
    let plan = plan::build(&input);
    check_binaries(&plan, &bin_dir)?;
    crate::ports::check(&plan.claims())?;
    if !args.verbose {
        fresh_logs(&plan, &log_dir)?;
    }
    if input.mesh {
        tokens::write(&tokens_dir, &plan.grants)?;
    }

    let mut signals = Signals::new()?;
    let (mut supervisor, events) = Supervisor::new(BackoffPolicy::default(), GRACE);
    let progress = Progress::new(args.verbose);
    let state = StateWriter::new(run_dir, &plan);
    let printer = tokio::spawn(print_events(events, progress.clone(), state.clone()));
    println!(
        "Starting Bookinfo{} on 127.0.0.1 ({} processes, logs in {})",
        if input.mesh {
            " with the mesh"
        } else {
            " without the mesh"
        },
        plan.control.iter().count() + plan.components.len(),
        if args.verbose {
            "this terminal".to_owned()
        } else {
            log_dir.display().to_string()
        },
    );

    let outcome = tokio::select! {
        r = start_all(&mut supervisor, &plan, &progress, started, args.ready_timeout) => Some(r),
        () = signals.recv() => None,
    };
    let code = match outcome {
        Some(Ok(())) => {
            state.save();
            banner(&plan, started.elapsed(), &log_dir, args.verbose, run_dir);
            signals.recv().await;
            println!("\nStopping...");
            0
        }
        Some(Err(message)) => {
            eprintln!("\nmeshctl up failed: {message}");
            1
        }
        None => {
            println!("\nInterrupted; stopping...");
            130
        }
    };
    // A second Ctrl-C does not wait for the grace period: dropping the supervisor kills
    // every child at once.
    tokio::select! {
        () = supervisor.stop() => {}
        () = signals.recv() => println!("Killing what is left..."),
    }
    // No more events can come; make sure the printer is not writing the state file
    // while it is removed.
    printer.abort();
    let _ = printer.await;
    State::remove(run_dir);
    println!("stopped");
    Ok(code)
}

fn choose_workloads(args: &UpArgs) -> Result<Vec<Workload>, CtlError> {
    let mut chosen = if args.workloads.is_empty() {
        workloads::ALL.to_vec()
    } else {
        workloads::select(&args.workloads)?
    };
    if args.no_mesh {
        // Without routing only one reviews version can be wired in: the chosen one (or,
        // if --workloads names other versions only, the first of those).
        let wanted = workloads::reviews_version(&args.reviews)?;
        let keep = if chosen.contains(&wanted) || args.workloads.is_empty() {
            Some(wanted)
        } else {
            chosen.iter().copied().find(|w| w.service == "reviews")
        };
        chosen.retain(|w| w.service != "reviews");
        if let Some(r) = keep {
            chosen.push(r);
            chosen.sort_by_key(|w| w.slot);
        }
    }
    Ok(chosen)
}

/// `--bin-dir`, else the directory of meshctl itself.
fn bin_dir(flag: Option<&Path>) -> Result<PathBuf, CtlError> {
    if let Some(dir) = flag {
        return Ok(dir.to_path_buf());
    }
    let exe = std::env::current_exe()
        .map_err(|e| CtlError::io("cannot find meshctl's own executable", e))?;
    Ok(exe
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf))
}

fn check_binaries(plan: &Plan, bin_dir: &Path) -> Result<(), CtlError> {
    let missing: Vec<String> = plan
        .binaries()
        .into_iter()
        .filter(|b| !b.is_file())
        .filter_map(|b| b.file_name().map(|n| n.to_string_lossy().into_owned()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(CtlError::Failed(format!(
        "missing {} in {}: run scripts/up.sh, or `cargo build --release --bins` first (or pass --bin-dir)",
        missing.join(", "),
        bin_dir.display()
    )))
}

/// Refuses to start when the state file names a live `meshctl up`.
fn refuse_second_up(run_dir: &Path) -> Result<(), CtlError> {
    if let Some(s) = State::load_optional(run_dir) {
        let pid = nix::unistd::Pid::from_raw(s.meshctl_pid as i32);
        if s.meshctl_pid != std::process::id() && nix::sys::signal::kill(pid, None).is_ok() {
            return Err(CtlError::Failed(format!(
                "`meshctl up` is already running (pid {}) with {}; stop it with Ctrl-C first",
                s.meshctl_pid,
                run_dir.display()
            )));
        }
    }
    Ok(())
}

/// The control plane's config directory: `--config-dir` as given, or a fresh
/// `<run-dir>/config` seeded with the shipped DestinationRules and gateway.
fn config_dir(args: &UpArgs, run_dir: &Path) -> Result<PathBuf, CtlError> {
    if let Some(dir) = &args.config_dir {
        if !dir.is_dir() {
            return Err(CtlError::Usage(format!(
                "--config-dir {}: no such directory",
                dir.display()
            )));
        }
        return absolute(dir);
    }
    let source = args
        .mesh_config
        .clone()
        .unwrap_or_else(|| PathBuf::from("mesh/config"));
    if !source.is_dir() {
        return Err(CtlError::Usage(format!(
            "cannot find the routing files in {}: run meshctl from the repository root, or pass --mesh-config DIR or --config-dir DIR",
            source.display()
        )));
    }
    let dir = run_dir.join("config");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| CtlError::io(format!("cannot create {}", dir.display()), e))?;
    for f in SEED_FILES {
        std::fs::copy(source.join(f), dir.join(f)).map_err(|e| {
            CtlError::io(
                format!(
                    "cannot copy {} to {}",
                    source.join(f).display(),
                    dir.display()
                ),
                e,
            )
        })?;
    }
    absolute(&dir)
}

fn absolute(p: &Path) -> Result<PathBuf, CtlError> {
    std::path::absolute(p).map_err(|e| CtlError::io(format!("cannot resolve {}", p.display()), e))
}

/// Empties the log files of this run (a restart within the run appends).
fn fresh_logs(plan: &Plan, log_dir: &Path) -> Result<(), CtlError> {
    std::fs::create_dir_all(log_dir)
        .map_err(|e| CtlError::io(format!("cannot create {}", log_dir.display()), e))?;
    for c in plan.control.iter().chain(&plan.components) {
        if let Some(log) = &c.log {
            std::fs::write(log, "")
                .map_err(|e| CtlError::io(format!("cannot write {}", log.display()), e))?;
        }
    }
    Ok(())
}

/// Why `meshctl up` could not bring everything up; each names what to look at.
#[derive(Debug, thiserror::Error)]
enum StartFailed {
    /// No HTTP client for the readiness probes.
    #[error("cannot build an HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// Some processes did not pass their probe by the deadline.
    #[error("not ready in time: {reasons}{logs}")]
    NotReady {
        /// `name: why` of each, `; `-separated.
        reasons: String,
        /// The last lines of their logs.
        logs: String,
    },
    /// Everything is up, but the product page never answered 200.
    #[error("{url} did not answer 200 within {secs:.0} s: {last}{logs}")]
    NoPage {
        /// The product page URL.
        url: String,
        /// The readiness timeout, in seconds.
        secs: f64,
        /// The last probe failure.
        last: ready::ProbeFailed,
        /// The last lines of the logs on the page's path.
        logs: String,
    },
}

/// Starts everything and waits for readiness and the first product page.
async fn start_all(
    supervisor: &mut Supervisor,
    plan: &Plan,
    progress: &Progress,
    started: Instant,
    timeout: Duration,
) -> Result<(), StartFailed> {
    let deadline = started + timeout;
    let http = ready::client()?;
    if let Some(control) = &plan.control {
        supervisor.spawn(control.spec.clone());
        wait_ready(std::slice::from_ref(control), progress, deadline, &http).await?;
    }
    for c in &plan.components {
        supervisor.spawn(c.spec.clone());
    }
    wait_ready(&plan.components, progress, deadline, &http).await?;
    if !plan.has_page {
        return Ok(());
    }
    let line = progress.line("product page", "waiting for the first 200");
    let page_started = Instant::now();
    let probe = plan::Probe::Http(plan.product_page_url.clone());
    match ready::wait(&http, &probe, deadline).await {
        Ok(()) => {
            line.ready(page_started.elapsed());
            Ok(())
        }
        Err(last) => {
            line.failed("no 200");
            let logs = [
                "istio-ingressgateway",
                "productpage-v1-proxy",
                "productpage-v1",
                "mesh-control",
            ];
            Err(StartFailed::NoPage {
                url: plan.product_page_url.clone(),
                secs: (deadline - started).as_secs_f64(),
                last,
                logs: tails(plan.control.iter().chain(&plan.components), &logs),
            })
        }
    }
}

/// Waits for every component's probe together.
async fn wait_ready(
    components: &[Component],
    progress: &Progress,
    deadline: Instant,
    http: &reqwest::Client,
) -> Result<(), StartFailed> {
    let mut set = JoinSet::new();
    for c in components {
        let line = progress.line(&c.spec.name, "starting");
        let (http, probe, name) = (http.clone(), c.probe.clone(), c.spec.name.clone());
        let begun = Instant::now();
        set.spawn(async move {
            let r = ready::wait(&http, &probe, deadline).await;
            match &r {
                Ok(()) => line.ready(begun.elapsed()),
                Err(_) => line.failed("not ready"),
            }
            (name, r)
        });
    }
    let mut failed = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((name, Err(why))) = joined {
            failed.push((name, why));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    failed.sort_by(|a, b| a.0.cmp(&b.0));
    let names: Vec<&str> = failed.iter().map(|(n, _)| n.as_str()).collect();
    let reasons: Vec<String> = failed.iter().map(|(n, w)| format!("{n}: {w}")).collect();
    Err(StartFailed::NotReady {
        reasons: reasons.join("; "),
        logs: tails(components, &names),
    })
}

/// The last lines of the named processes' logs, for failure messages.
fn tails<'a>(components: impl IntoIterator<Item = &'a Component>, names: &[&str]) -> String {
    let mut out = String::new();
    for c in components {
        if !names.contains(&c.spec.name.as_str()) {
            continue;
        }
        let Some(log) = &c.log else { continue };
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        out.push_str(&format!("\n\n--- last lines of {} ---\n", log.display()));
        if tail.is_empty() {
            out.push_str("(empty)");
        } else {
            out.push_str(&tail.join("\n"));
        }
    }
    out
}

fn banner(plan: &Plan, took: Duration, log_dir: &Path, verbose: bool, run_dir: &Path) {
    let mut b = format!("\n  Bookinfo is ready in {:.1} s\n\n", took.as_secs_f64());
    if plan.has_page {
        b.push_str(&format!("  Product page:  {}\n", plan.product_page_url));
    }
    if let Some(c) = &plan.control_url {
        b.push_str(&format!("  Dashboard:     {c}/\n"));
    }
    if !verbose {
        b.push_str(&format!("  Logs:          {}/\n", log_dir.display()));
    }
    if plan.control_url.is_some() {
        let env = if run_dir == Path::new(".run/meshctl") {
            String::new()
        } else {
            format!("MESHCTL_RUN_DIR={} ", run_dir.display())
        };
        b.push_str("\n  Change routing live, inject faults, check the proxies:\n");
        b.push_str(&format!(
            "    {env}meshctl apply -f mesh/config/virtual-service-reviews-test-v2.yaml\n"
        ));
        b.push_str(&format!(
            "    {env}meshctl fault add ratings --delay 7s --header end-user=jason --ttl 2m\n"
        ));
        b.push_str(&format!("    {env}meshctl proxy-status\n"));
    }
    b.push_str("\n  Ctrl-C stops everything.\n");
    println!("{b}");
}

/// Keeps the state file in step with the supervisor's pids.
#[derive(Debug, Clone)]
struct StateWriter {
    run_dir: PathBuf,
    state: std::sync::Arc<std::sync::Mutex<State>>,
}

impl StateWriter {
    fn new(run_dir: &Path, plan: &Plan) -> Self {
        let state = State {
            meshctl_pid: std::process::id(),
            mesh: plan.control.is_some(),
            product_page_url: plan.product_page_url.clone(),
            control_url: plan.control_url.clone(),
            dashboard_url: plan.control_url.as_ref().map(|c| format!("{c}/")),
            processes: plan
                .control
                .iter()
                .chain(&plan.components)
                .map(|c| c.state(None))
                .collect(),
        };
        Self {
            run_dir: run_dir.to_path_buf(),
            state: std::sync::Arc::new(std::sync::Mutex::new(state)),
        }
    }

    fn set_pid(&self, name: &str, pid: Option<u32>) {
        if let Ok(mut s) = self.state.lock()
            && let Some(p) = s.processes.iter_mut().find(|p| p.name == name)
        {
            p.pid = pid;
        }
    }

    fn save(&self) {
        let snapshot = self.state.lock().map(|s| s.clone());
        if let Ok(s) = snapshot
            && let Err(e) = s.save(&self.run_dir)
        {
            eprintln!("meshctl: {e}");
        }
    }
}

/// Prints restarts and crashes, and records pids in the state file.
async fn print_events(
    mut events: mpsc::UnboundedReceiver<Event>,
    progress: Progress,
    state: StateWriter,
) {
    let mut seen = BTreeMap::new();
    while let Some(event) = events.recv().await {
        match &event {
            Event::Started { name, pid } => {
                state.set_pid(name, Some(*pid));
                if seen.insert(name.clone(), *pid).is_some() {
                    progress.println(&format!("{} {name} restarted (pid {pid})", clock()));
                }
            }
            Event::Exited { name, .. } | Event::SpawnFailed { name, .. } => {
                state.set_pid(name, None);
                progress.println(&format!("{} {event}", clock()));
            }
        }
        state.save();
    }
}

/// `HH:MM:SS` in UTC, for event lines.
fn clock() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "{:02}:{:02}:{:02}",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

/// SIGINT, SIGTERM and SIGHUP: any of them stops `up`.
///
/// Not `bookinfo_common::shutdown::shutdown_signal()`: that resolves once, on SIGINT or
/// SIGTERM, for a service that drains. `up` also stops on SIGHUP (its terminal closed),
/// receives again (a second Ctrl-C kills what is left without waiting for the grace
/// period), and refuses to start when the handlers cannot be installed rather than
/// running unstoppable.
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, CtlError> {
        let make =
            |kind| signal(kind).map_err(|e| CtlError::io("cannot install signal handlers", e));
        Ok(Self {
            int: make(SignalKind::interrupt())?,
            term: make(SignalKind::terminate())?,
            hup: make(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn up_args(extra: &[&str]) -> UpArgs {
        let cli = crate::cli::Cli::try_parse_from(["meshctl", "up"].iter().chain(extra)).unwrap();
        match cli.command {
            crate::cli::Command::Up(a) => a,
            _ => unreachable!(),
        }
    }

    fn names(ws: &[Workload]) -> Vec<&'static str> {
        ws.iter().map(|w| w.name).collect()
    }

    #[test]
    fn no_mesh_keeps_one_reviews_version() {
        let all = choose_workloads(&up_args(&[])).unwrap();
        assert_eq!(all.len(), 6);
        let plain = choose_workloads(&up_args(&["--no-mesh", "--reviews", "v3"])).unwrap();
        assert_eq!(
            names(&plain),
            ["productpage-v1", "details-v1", "reviews-v3", "ratings-v1"]
        );
        let picked = choose_workloads(&up_args(&[
            "--no-mesh",
            "--workloads",
            "productpage,reviews-v1",
        ]))
        .unwrap();
        assert_eq!(names(&picked), ["productpage-v1", "reviews-v1"]);
        assert!(choose_workloads(&up_args(&["--no-mesh", "--reviews", "v7"])).is_err());
    }

    #[test]
    fn the_default_config_dir_is_seeded_fresh() {
        let tmp = std::env::temp_dir().join(format!("meshctl-seed-{}", std::process::id()));
        let source = tmp.join("shipped");
        std::fs::create_dir_all(&source).unwrap();
        for f in SEED_FILES {
            std::fs::write(source.join(f), format!("# {f}\n")).unwrap();
        }
        let run = tmp.join("run");
        std::fs::create_dir_all(run.join("config")).unwrap();
        std::fs::write(run.join("config/stale.yaml"), "old").unwrap();
        let args = up_args(&["--mesh-config", source.to_str().unwrap()]);
        let dir = config_dir(&args, &run).unwrap();
        assert!(dir.is_absolute());
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(
            files,
            ["bookinfo-gateway.yaml", "destination-rule-all.yaml"]
        );

        let args = up_args(&["--mesh-config", tmp.join("nope").to_str().unwrap()]);
        let e = config_dir(&args, &run).unwrap_err();
        assert_eq!(e.exit_code(), 64);
        assert!(e.to_string().contains("--mesh-config"), "{e}");
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
