//! `labs`: lists, checks and runs the scripted labs in `labs/`.
//!
//! ```text
//! labs list                 every lab, its title and number of steps
//! labs check                parse every README (no mesh, nothing run)
//! labs run 03-fault-injection [04 ...]   run labs (a number prefix is enough)
//! labs run all
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use bookinfo_labs::expect::duration;
use bookinfo_labs::runner::{self, Options};
use clap::{Parser, Subcommand};

/// Run the scripted labs: each README's command blocks, checked against its `expect` blocks.
#[derive(Debug, Parser)]
#[command(name = "labs", version)]
struct Cli {
    /// The labs folder (its parent is the repository root the commands run in).
    #[arg(long, global = true, default_value = "labs", value_name = "DIR")]
    labs: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List the labs with their titles and step counts.
    List,
    /// Parse every lab's README and report problems; runs nothing.
    Check,
    /// Run labs, each against its own fresh `meshctl up` on free ports.
    Run {
        /// Lab folder names or their number prefixes (03), or `all`.
        #[arg(required = true)]
        names: Vec<String>,
        /// Where meshctl, the services, loadgen and chaos are [default: next to labs].
        #[arg(long, value_name = "DIR")]
        bin_dir: Option<PathBuf>,
        /// Scratch folder for the labs' working folders.
        #[arg(long, value_name = "DIR")]
        work: Option<PathBuf>,
        /// Time limit of a step without its own `timeout`.
        #[arg(long, default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
        step_timeout: Duration,
    },
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    duration(s).ok_or_else(|| format!("invalid duration {s:?}: expected e.g. 60s, 500ms or 2m"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("labs: {message}");
            ExitCode::from(64)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let labs = lab_dirs(&cli.labs)?;
    match cli.command {
        Command::List => {
            for dir in &labs {
                let (name, what) = match runner::load(dir) {
                    Ok(lab) => (
                        dir_name(dir),
                        format!("{} ({} steps)", lab.title, lab.steps.len()),
                    ),
                    Err(e) => (dir_name(dir), format!("INVALID: {e}")),
                };
                println!("{name:<28} {what}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let mut bad = 0;
            for dir in &labs {
                if let Err(e) = runner::load(dir) {
                    eprintln!("{e}");
                    bad += 1;
                }
            }
            println!("{} labs, {bad} invalid", labs.len());
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Run {
            names,
            bin_dir,
            work,
            step_timeout,
        } => {
            let chosen = choose(&labs, &names)?;
            let bin_dir = match bin_dir {
                Some(d) => d,
                None => own_dir()?,
            };
            let repo = std::path::absolute(&cli.labs)
                .map_err(|e| format!("cannot resolve {}: {e}", cli.labs.display()))?
                .parent()
                .map(Path::to_path_buf)
                .ok_or("the labs folder has no parent")?;
            let opts = Options {
                repo,
                bin_dir: std::path::absolute(&bin_dir)
                    .map_err(|e| format!("cannot resolve {}: {e}", bin_dir.display()))?,
                work: work.unwrap_or_else(|| std::env::temp_dir().join("bookinfo-labs")),
                step_timeout,
                up_timeout: Duration::from_secs(60),
            };
            if !opts.bin_dir.join("meshctl").is_file() {
                return Err(format!(
                    "no meshctl in {}: build the workspace's binaries first (scripts/labs.sh does)",
                    opts.bin_dir.display()
                ));
            }
            let reports: Vec<runner::Report> =
                chosen.iter().map(|d| runner::run(d, &opts)).collect();
            let total: Duration = reports.iter().map(|r| r.took).sum();
            println!("{:<28} {:<8} {:>6} {:>8}", "LAB", "RESULT", "STEPS", "TIME");
            for r in &reports {
                let result = if r.failure.is_none() {
                    "passed"
                } else {
                    "FAILED"
                };
                let steps = format!("{}/{}", r.passed, r.steps);
                println!(
                    "{:<28} {result:<8} {steps:>6} {:>7.1}s",
                    r.name,
                    r.took.as_secs_f64()
                );
            }
            let failed = reports.iter().filter(|r| r.failure.is_some()).count();
            println!(
                "{} labs, {failed} failed, {:.1} s",
                reports.len(),
                total.as_secs_f64()
            );
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// Every `NN-name` folder with a README, in name order.
fn lab_dirs(labs: &Path) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(labs).map_err(|e| format!("cannot read {}: {e}", labs.display()))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("README.md").is_file())
        .filter(|p| {
            dir_name(p)
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_digit())
        })
        .collect();
    dirs.sort();
    Ok(dirs)
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `all`, full names, or number prefixes (`03` or `3`).
fn choose(labs: &[PathBuf], names: &[String]) -> Result<Vec<PathBuf>, String> {
    if names.iter().any(|n| n == "all") {
        return Ok(labs.to_vec());
    }
    names
        .iter()
        .map(|want| {
            let padded = format!("{want:0>2}-");
            labs.iter()
                .find(|d| {
                    let n = dir_name(d);
                    n == *want || n.starts_with(&padded)
                })
                .cloned()
                .ok_or_else(|| {
                    let known: Vec<String> = labs.iter().map(|d| dir_name(d)).collect();
                    format!(
                        "no lab {want:?}: expected all or one of {}",
                        known.join(", ")
                    )
                })
        })
        .collect()
}

/// The folder of this executable (the workspace's binaries are built next to it).
fn own_dir() -> Result<PathBuf, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find the labs executable: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "the labs executable has no folder".to_owned())
}
