//! `mesh-control`: the control plane binary.
//!
//! ```text
//! mesh-control [--listen 127.0.0.1:15010] [--config-dir DIR] [--ca-dir DIR]
//!              [--ca-cert FILE --ca-key FILE] [--cert-ttl 24h] [--trust-domain cluster.local]
//! ```
//! Every flag has an environment fallback (`MESH_CONTROL_LISTEN`, ...). Bad flags or an
//! invalid configuration directory at start: one line on stderr and exit code 64.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mesh_control::ca::RootSource;
use mesh_control::source::{ConfigSource, DirSource};
use mesh_control::{Control, Settings};

/// Exit code for bad usage or configuration (`EX_USAGE`).
const EXIT_USAGE: u8 = 64;

/// How often the configuration directory is checked for changes.
const DIR_POLL: Duration = Duration::from_millis(200);

/// The mesh control plane: config, registry, watch API, CA, fault leases, dashboard.
#[derive(Debug, Parser)]
#[command(name = "mesh-control", version)]
struct Cli {
    /// Address of the HTTP API and dashboard.
    #[arg(long, env = "MESH_CONTROL_LISTEN", default_value = "127.0.0.1:15010")]
    listen: SocketAddr,
    /// Directory of Istio YAML files, watched: edits apply live.
    #[arg(long, env = "MESH_CONTROL_CONFIG_DIR")]
    config_dir: Option<PathBuf>,
    /// Directory keeping the CA root (generated there on first start).
    #[arg(long, env = "MESH_CONTROL_CA_DIR", conflicts_with_all = ["ca_cert", "ca_key"])]
    ca_dir: Option<PathBuf>,
    /// Root certificate (PEM) to issue from; needs --ca-key.
    #[arg(long, env = "MESH_CONTROL_CA_CERT", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// Private key (PEM) of --ca-cert.
    #[arg(long, env = "MESH_CONTROL_CA_KEY", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Default lifetime of workload certificates (at least 1m; proxies renew at half life).
    #[arg(long, env = "MESH_CONTROL_CERT_TTL", default_value = "24h", value_parser = cert_ttl)]
    cert_ttl: Duration,
    /// SPIFFE trust domain of issued identities.
    #[arg(long, env = "MESH_CONTROL_TRUST_DOMAIN", default_value = "cluster.local", value_parser = trust_domain)]
    trust_domain: String,
}

fn cert_ttl(text: &str) -> Result<Duration, String> {
    let ttl = mesh_api::parse_duration(text).map_err(|e| e.to_string())?;
    // Seconds are allowed so a demo (or a test) can show several rotations in a minute.
    if ttl < Duration::from_secs(10) {
        return Err(format!("{text:?} is shorter than 10s"));
    }
    Ok(ttl)
}

fn trust_domain(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.');
    if ok {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{text:?} is not a trust domain such as cluster.local"
        ))
    }
}

/// clap's multi-line message as one line: the problem and its details, without the
/// usage and help hints.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| {
            !l.is_empty() && !l.starts_with("Usage:") && !l.starts_with("For more information")
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_owned()
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("mesh-control: {message}");
    ExitCode::from(EXIT_USAGE)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
            ) {
                let _ = err.print();
                return ExitCode::SUCCESS;
            }
            return usage_error(&one_line(&err.to_string()));
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_target(false)
        .try_init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mesh-control: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> ExitCode {
    let root = match (cli.ca_dir, cli.ca_cert, cli.ca_key) {
        (Some(dir), _, _) => RootSource::Dir(dir),
        (None, Some(cert), Some(key)) => RootSource::Files { cert, key },
        _ => RootSource::Generate,
    };
    let settings = Settings {
        trust_domain: cli.trust_domain,
        cert_ttl: cli.cert_ttl,
        root,
        ..Settings::default()
    };
    let control = match Control::new(settings) {
        Ok(c) => c,
        Err(e) => return usage_error(&format!("certificate authority: {e}")),
    };
    if let Some(dir) = cli.config_dir {
        let mut source = DirSource::new(&dir);
        match control.load_source(&mut source) {
            Ok(warnings) => {
                for warning in warnings {
                    tracing::warn!("{warning}");
                }
            }
            Err(error) => return usage_error(&format!("--config-dir {}: {error}", dir.display())),
        }
        tracing::info!(dir = %source.dir().display(), resources = control.resources(None).len(), "configuration loaded");
        let boxed: Box<dyn ConfigSource> = Box::new(source);
        control.watch_source(boxed, DIR_POLL);
    }
    control.start_background();
    match serve(cli.listen, control).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-control: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(listen: SocketAddr, control: std::sync::Arc<Control>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listen, "mesh-control listening (dashboard at http://{listen}/)");
    axum::serve(listener, mesh_control::api::router(control))
        .with_graceful_shutdown(bookinfo_common::shutdown::shutdown_signal())
        .await
        .context("server failed")
}
