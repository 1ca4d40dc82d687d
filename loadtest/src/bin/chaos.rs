//! `chaos`: runs chaos experiments (Chaos Toolkit format plus native mesh and load
//! providers) against the Bookinfo suite, writes a journal and a report.
//!
//! Exit codes: 0 the hypothesis held, 1 deviated or failed, 64 usage error or invalid
//! experiment, 130 interrupted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use bookinfo_common::shutdown::shutdown_signal;
use bookinfo_loadtest::chaos::experiment::{self, HYPOTHESIS_STRATEGIES, ROLLBACK_STRATEGIES};
use bookinfo_loadtest::chaos::{Cancel, Experiment, Options, report, runner};
use clap::{Parser, Subcommand};
use mesh_api::duration::parse_duration;
use serde_json::Value;

/// Chaos experiments for the Bookinfo suite.
#[derive(Debug, Parser)]
#[command(name = "chaos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run an experiment: exit 0 only when the steady-state hypothesis held.
    Run(RunArgs),
    /// Check an experiment without running it.
    Validate {
        experiment: PathBuf,
        /// Override a configuration value: name=value, name:int=3, name:float=0.5.
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Render the report of an earlier run from its journal.
    Report {
        journal: PathBuf,
        /// Output file: .html (self-contained page) or .md (Markdown).
        #[arg(short = 'o', long, default_value = "report.html")]
        output: PathBuf,
    },
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    experiment: PathBuf,
    #[arg(long, default_value = "journal.json")]
    journal_path: PathBuf,
    /// Also write the HTML report here, and its Markdown twin next to it (.md).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Seed for every random choice; the journal records it, give it again to replay.
    #[arg(long)]
    seed: Option<u64>,
    /// Override a configuration value: name=value, name:int=3, name:float=0.5.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// Rehearse: validate and walk the plan without executing any activity.
    #[arg(long)]
    dry: bool,
    /// always (default here), default (Chaos Toolkit's: not after a failure or an
    /// interrupt), never, deviated.
    #[arg(long)]
    rollback_strategy: Option<String>,
    /// default (before and after), before-method-only, after-method-only,
    /// during-method-only, continuously (before, during and after).
    #[arg(long)]
    hypothesis_strategy: Option<String>,
    /// How often the hypothesis is checked during the method (e.g. 1s, 500ms).
    #[arg(long, value_parser = parse_duration)]
    hypothesis_frequency: Option<Duration>,
    /// The mesh control plane for fault leases and configuration.
    #[arg(
        long,
        env = "MESH_CONTROL_URL",
        default_value = "http://127.0.0.1:15010",
        value_parser = control_url
    )]
    control: String,
    /// The meshctl program for `kill` (default: next to chaos, then PATH).
    #[arg(long, env = "CHAOS_MESHCTL")]
    meshctl: Option<PathBuf>,
    /// How long to wait for the steady state to return after the rollbacks.
    #[arg(long, value_parser = parse_duration, default_value = "60s")]
    recovery_timeout: Duration,
}

const USAGE: u8 = 64;

fn usage(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("chaos: {message}");
    ExitCode::from(USAGE)
}

fn vars(list: &[String]) -> Result<BTreeMap<String, Value>, experiment::VarError> {
    list.iter().map(|v| experiment::parse_var(v)).collect()
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok()
}

fn load(path: &Path, list: &[String]) -> Result<Experiment, ExitCode> {
    let vars = vars(list).map_err(usage)?;
    experiment::load(path, &vars, &env).map_err(|e| match e {
        experiment::ExperimentError::Invalid(errors) => {
            eprintln!("chaos: {} is not a valid experiment:", path.display());
            for e in errors {
                eprintln!("  {e}");
            }
            ExitCode::from(USAGE)
        }
        other => usage(other),
    })
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

fn write_report(journal: &Value, html_path: &Path) -> anyhow::Result<()> {
    write(html_path, &report::html(journal))?;
    write(&html_path.with_extension("md"), &report::markdown(journal))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            let text = e.to_string();
            return usage(
                text.lines()
                    .next()
                    .unwrap_or("invalid arguments")
                    .trim_start_matches("error: "),
            );
        }
    };
    match cli.command {
        Command::Validate { experiment, vars } => match load(&experiment, &vars) {
            Ok(e) => {
                println!(
                    "{}: valid ({} method activities, {} rollbacks)",
                    experiment.display(),
                    e.method.len(),
                    e.rollbacks.len()
                );
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Report { journal, output } => match render(&journal, &output) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => usage(format!("{e:#}")),
        },
        Command::Run(args) => run(args),
    }
}

fn render(journal: &Path, output: &Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(journal)
        .with_context(|| format!("cannot read {}", journal.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a JSON journal", journal.display()))?;
    if output.extension().is_some_and(|e| e == "md") {
        write(output, &report::markdown(&value))
    } else {
        write(output, &report::html(&value))
    }
}

fn run(args: RunArgs) -> ExitCode {
    if let Some(s) = &args.rollback_strategy
        && !ROLLBACK_STRATEGIES.contains(&s.as_str())
    {
        return usage(format!(
            "--rollback-strategy {s:?}: expected one of {}",
            ROLLBACK_STRATEGIES.join(", ")
        ));
    }
    if let Some(s) = &args.hypothesis_strategy
        && !HYPOTHESIS_STRATEGIES.contains(&s.as_str())
    {
        return usage(format!(
            "--hypothesis-strategy {s:?}: expected one of {}",
            HYPOTHESIS_STRATEGIES.join(", ")
        ));
    }
    let experiment = match load(&args.experiment, &args.vars) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let seed = args.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
    });
    let opts = Options {
        rollback_strategy: args.rollback_strategy,
        hypothesis_strategy: args.hypothesis_strategy,
        frequency: args.hypothesis_frequency,
        dry: args.dry,
        seed,
        control: args.control,
        meshctl: args.meshctl,
        base_dir: args
            .experiment
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
        recovery_timeout: args.recovery_timeout,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chaos: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    bookinfo_common::client::install_crypto_provider();
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("chaos: cannot build the HTTP client: {e}");
            return ExitCode::from(1);
        }
    };
    eprintln!(
        "chaos: running {:?} (seed {seed}; replay with --seed {seed})",
        experiment.title
    );
    let journal = runtime.block_on(async {
        let cancel = Cancel::new();
        tokio::spawn(interrupts(cancel.clone()));
        runner::run(&experiment, &opts, cancel, client).await
    });
    let code = runner::exit_code(&journal);
    let written = serde_json::to_string_pretty(&journal)
        .context("cannot encode the journal")
        .and_then(|text| write(&args.journal_path, &text))
        .and_then(|()| {
            args.report
                .as_deref()
                .map_or(Ok(()), |p| write_report(&journal, p))
        });
    if let Err(e) = written {
        eprintln!("chaos: {e:#}");
        return ExitCode::from(1);
    }
    println!("{}", summary(&journal, &args.journal_path));
    ExitCode::from(code)
}

fn summary(journal: &Value, path: &Path) -> String {
    let mut lines = vec![format!(
        "{}: {} (status {}, deviated {}); journal {}",
        journal["experiment"]["title"]
            .as_str()
            .unwrap_or("experiment"),
        report::verdict(journal),
        journal["status"],
        journal["deviated"],
        path.display()
    )];
    lines.extend(
        report::findings(journal)
            .into_iter()
            .map(|f| format!("  - {f}")),
    );
    lines.join("\n")
}

/// First Ctrl-C or SIGTERM: stop the method and roll back. Second: leave at once (fault
/// leases still expire on their own). The suite's signal helper resolves once, so it is
/// called twice; the second listener is set up before the rollbacks start, so an
/// interrupt during them is seen.
async fn interrupts(cancel: Cancel) {
    shutdown_signal().await;
    let again = shutdown_signal();
    eprintln!("chaos: interrupted, rolling back (interrupt again to quit now)");
    cancel.cancel();
    again.await;
    std::process::exit(130);
}

/// `--control` must be a URL the control plane's client can use: said at once, not by
/// every fault activity of the run.
fn control_url(text: &str) -> Result<String, mesh_client::ClientError> {
    mesh_client::base_url(text).map(|_| text.to_owned())
}
