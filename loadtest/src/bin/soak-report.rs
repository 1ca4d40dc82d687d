//! `soak-report`: the Rust half of `scripts/soak.sh`, the soak with faults.
//!
//! `plan` prints the fault schedule for the processes of a `meshctl up` state file;
//! `report` lines the per-request log of `loadgen --outcomes` up with the faults the
//! script injected, prints per fault what its window saw and how fast pages came back,
//! the memory of every process, and the targets, met or not. Exit code 0 when every
//! target checked is met, 1 when one is not, 64 on bad input.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bookinfo_loadtest::load::outcomes;
use bookinfo_loadtest::load::soak::{analysis, inputs, plan, verdict};
use clap::{Parser, Subcommand};
use mesh_api::duration::parse_duration;

/// The soak with faults: the schedule, and the report.
#[derive(Debug, Parser)]
#[command(name = "soak-report", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the fault schedule: `at_ms process role target --app|--sidecar signal` lines.
    Plan {
        /// The state file of the running `meshctl up`.
        #[arg(long)]
        state: PathBuf,
        /// Length of the load, e.g. 10m.
        #[arg(long, value_parser = parse_duration)]
        duration: Duration,
    },
    /// Analyse a finished soak and check its targets.
    Report {
        /// The state file of the `meshctl up` (copied at the start of the soak).
        #[arg(long)]
        state: PathBuf,
        /// `loadgen --outcomes` of the soak's load.
        #[arg(long)]
        outcomes: PathBuf,
        /// `loadgen --json` of the soak's load (its rate and length).
        #[arg(long)]
        load: PathBuf,
        /// The fault log the script wrote.
        #[arg(long)]
        faults: PathBuf,
        /// The memory log the script wrote.
        #[arg(long)]
        memory: Option<PathBuf>,
        /// `loadgen --json` of the closed-model calibration.
        #[arg(long)]
        calibration: Option<PathBuf>,
        /// The workload certificates' lifetime, for the report's head.
        #[arg(long)]
        cert_ttl: Option<String>,
    },
}

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// A number field of a loadgen JSON report.
fn json_number(path: &Path, field: &str) -> anyhow::Result<f64> {
    let value: serde_json::Value = serde_json::from_str(&read(path)?)
        .with_context(|| format!("{} is not JSON", path.display()))?;
    value
        .get(field)
        .and_then(serde_json::Value::as_f64)
        .with_context(|| format!("{} has no number {field:?}", path.display()))
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plan { state, duration } => {
            let processes = inputs::parse_state(&read(&state)?)?;
            for fault in plan::plan(&processes, duration)? {
                println!("{}", fault.line());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Report {
            state,
            outcomes: log,
            load,
            faults,
            memory,
            calibration,
            cert_ttl,
        } => {
            let processes = inputs::parse_state(&read(&state)?)?;
            let endpoints = inputs::endpoints(&processes);
            let (header, records) = outcomes::read(&read(&log)?)
                .with_context(|| format!("cannot use {}", log.display()))?;
            let faults = inputs::parse_faults(&read(&faults)?)?;
            let duration_s = json_number(&load, "duration_s")?;
            let run = verdict::RunInfo {
                calibrated_rps: calibration
                    .as_deref()
                    .map(|c| json_number(c, "achieved_rps"))
                    .transpose()?,
                rate_rps: Some(json_number(&load, "requested_rps")?),
                duration_s,
                cert_ttl,
            };
            let memory = match &memory {
                Some(m) => verdict::memory(&inputs::parse_memory(&read(m)?)?),
                None => Vec::new(),
            };
            let end_us = (duration_s * 1e6) as u64;
            let analysis = analysis::analyse(&header, &records, &faults, &endpoints, end_us);
            let targets = verdict::targets(&analysis, &endpoints, &memory);
            print!("{}", verdict::render(&run, &analysis, &memory, &targets));
            let missed = targets.iter().any(|t| t.status == verdict::Status::NotMet);
            Ok(if missed {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("soak-report: {e:#}");
            ExitCode::from(64)
        }
    }
}
