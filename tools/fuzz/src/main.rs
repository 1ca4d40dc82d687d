//! `fuzz`: runs the fuzz targets (see the library's docs).
//!
//! ```text
//! fuzz list
//! fuzz run [TARGET ...|all] [--count 100000] [--seed 1] [--hang-ms 1000]
//!          [--bin-dir DIR] [--repo DIR] [--out DIR]
//! fuzz replay TARGET FILE ...
//! ```
//! Exit code 1 when anything was found, 64 for bad usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use bookinfo_fuzz::harness::{self, Report, Settings};
use bookinfo_fuzz::targets::{self, Env, NAMES};
use clap::{Parser, Subcommand};

/// Mutation fuzzing of the suite's parsers and listeners.
#[derive(Debug, Parser)]
#[command(name = "fuzz", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Lists the targets.
    List,
    /// Runs targets (all when none is named).
    Run {
        /// Targets, or `all`.
        targets: Vec<String>,
        #[command(flatten)]
        common: Common,
        /// Inputs per target.
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        /// Seed of the input generator: the same seed replays the same inputs.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// An input taking longer than this (milliseconds) is a hang.
        #[arg(long, default_value_t = 1000)]
        hang_ms: u64,
    },
    /// Feeds saved inputs (findings) to a target again.
    Replay {
        /// The target the inputs were found with.
        target: String,
        /// Saved inputs (`.run/fuzz/<target>-<n>.bin`).
        files: Vec<PathBuf>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Debug, clap::Args)]
struct Common {
    /// Where `mesh-proxy` and `mesh-control` are (default: beside this program).
    #[arg(long)]
    bin_dir: Option<PathBuf>,
    /// The repository, for the seeds (`mesh/config`, `loadtest/experiments`).
    #[arg(long, default_value = ".")]
    repo: PathBuf,
    /// Findings and logs.
    #[arg(long, default_value = ".run/fuzz")]
    out: PathBuf,
}

impl Common {
    fn env(&self) -> Env {
        let bin_dir = self.bin_dir.clone().unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("."))
        });
        Env {
            repo: self.repo.clone(),
            bin_dir,
            work: self.out.join("work"),
        }
    }
}

fn print(report: &Report) {
    let rate = report.inputs as f64 / report.elapsed.as_secs_f64().max(1e-9);
    println!(
        "{:<18} {:>9} inputs  {:>3} findings  slowest {:>5} ms  memory {:>6} -> {:>6} KB  {:>4} guarded panics  {:>7.0} inputs/s",
        report.target,
        report.inputs,
        report.findings.len(),
        report.slowest.as_millis(),
        report.rss_start_kb,
        report.rss_end_kb,
        report.guarded_panics,
        rate
    );
    for f in &report.findings {
        let saved = f
            .saved
            .as_ref()
            .map(|p| format!(" (input saved: {})", p.display()))
            .unwrap_or_default();
        println!("    input {}: {}{saved}", f.index, f.problem);
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            let _ = e.print();
            return ExitCode::from(64);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    harness::quiet_panics();
    match cli.command {
        Command::List => {
            for name in NAMES {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
        Command::Run {
            targets: wanted,
            common,
            count,
            seed,
            hang_ms,
        } => {
            let names: Vec<String> = if wanted.is_empty() || wanted.iter().any(|t| t == "all") {
                NAMES.iter().map(|n| (*n).to_owned()).collect()
            } else {
                wanted
            };
            let settings = Settings {
                count,
                seed,
                hang: Duration::from_millis(hang_ms),
                out: common.out.clone(),
                progress: true,
            };
            let env = common.env();
            let mut found = false;
            for name in &names {
                let mut target = match targets::make(name, &env) {
                    Ok(t) => t,
                    Err(e) => {
                        eprintln!("fuzz: {name}: {e:#}");
                        return ExitCode::from(64);
                    }
                };
                let report = harness::run(target.as_mut(), &settings);
                print(&report);
                found |= !report.findings.is_empty();
            }
            if found {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Command::Replay {
            target,
            files,
            common,
        } => {
            let mut target = match targets::make(&target, &common.env()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("fuzz: {e:#}");
                    return ExitCode::from(64);
                }
            };
            let mut failed = false;
            for file in files {
                let input = match std::fs::read(&file) {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!("fuzz: {}: {e}", file.display());
                        return ExitCode::from(64);
                    }
                };
                let started = std::time::Instant::now();
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target.run(&input)));
                let took = started.elapsed().as_millis();
                match outcome {
                    Ok(Ok(())) => println!("{}: fine ({took} ms)", file.display()),
                    Ok(Err(problem)) => {
                        failed = true;
                        println!("{}: {problem}", file.display());
                    }
                    Err(_) => {
                        failed = true;
                        println!("{}: panicked", file.display());
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
    }
}
