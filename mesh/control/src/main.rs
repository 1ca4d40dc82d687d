//! `mesh-control`: the control plane binary.
//!
//! ```text
//! mesh-control [--listen 127.0.0.1:15010] [--config-dir DIR] [--kubernetes] [--ca-dir DIR | --ca-secret NAME]
//!              [--ca-cert FILE --ca-key FILE] [--cert-ttl 24h] [--trust-domain cluster.local]
//!              [--workload-tokens FILE] [--token-review [--token-audience mesh-control]]
//!              [--api-token-file FILE] [--registration-grace 5s]
//! ```
//! Every flag has an environment fallback (`MESH_CONTROL_LISTEN`, `MESH_CONTROL_KUBERNETES=true`,
//! ...). Bad flags, an invalid configuration directory at start, or `--kubernetes` without
//! a cluster to find: one line on stderr and exit code 64.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use mesh_control::auth::{AdminToken, Auth, TokenReviewer, TokensFile};
use mesh_control::ca::RootSource;
use mesh_control::kube::{KubeSource, Retry};
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
    /// Also watch the Istio resources of the Kubernetes cluster (in-cluster service
    /// account, else the kubeconfig): `kubectl apply` of a VirtualService applies live.
    #[arg(long, env = "MESH_CONTROL_KUBERNETES", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    kubernetes: bool,
    /// Directory keeping the CA root (generated there on first start).
    #[arg(long, env = "MESH_CONTROL_CA_DIR", conflicts_with_all = ["ca_cert", "ca_key"])]
    ca_dir: Option<PathBuf>,
    /// Kubernetes Secret keeping the CA root, `[NAMESPACE/]NAME` (default namespace: the
    /// pod's): read at start, created with a new root when missing, like istiod's
    /// `istio-ca-secret`. Needs get and create on secrets there.
    #[arg(long, env = "MESH_CONTROL_CA_SECRET", value_name = "[NAMESPACE/]NAME", conflicts_with_all = ["ca_dir", "ca_cert", "ca_key"])]
    ca_secret: Option<String>,
    /// Root certificate (PEM) to issue from; needs --ca-key.
    #[arg(long, env = "MESH_CONTROL_CA_CERT", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// Private key (PEM) of --ca-cert.
    #[arg(long, env = "MESH_CONTROL_CA_KEY", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// Default lifetime of workload certificates (at least 1m; proxies renew at half life).
    #[arg(long, env = "MESH_CONTROL_CERT_TTL", default_value = "24h", value_parser = cert_ttl)]
    cert_ttl: Duration,
    /// After a restart, how long proxies configured by the previous run keep their last
    /// configuration while workloads register again (0s: no grace).
    #[arg(long, env = "MESH_CONTROL_REGISTRATION_GRACE", default_value = "5s", value_parser = registration_grace)]
    registration_grace: Duration,
    /// Megabytes of spans the embedded trace store keeps, oldest trace out first (1-1024).
    #[arg(long, env = "MESH_CONTROL_TRACE_STORE_MB", default_value_t = mesh_control::traces::DEFAULT_BUDGET_MB, value_parser = clap::value_parser!(u16).range(1..=1024))]
    trace_store_mb: u16,
    /// SPIFFE trust domain of issued identities.
    #[arg(long, env = "MESH_CONTROL_TRUST_DOMAIN", default_value = "cluster.local", value_parser = trust_domain)]
    trust_domain: String,
    /// Workload credentials: a YAML list of {token, namespace, serviceAccount, workload}.
    #[arg(long, env = "MESH_CONTROL_WORKLOAD_TOKENS", value_name = "FILE")]
    workload_tokens: Option<PathBuf>,
    /// Workload credentials: pods' projected service-account tokens, checked with the
    /// Kubernetes TokenReview API (in-cluster config, or the kubeconfig).
    #[arg(long, env = "MESH_CONTROL_TOKEN_REVIEW")]
    token_review: bool,
    /// The audience projected tokens must be issued for.
    #[arg(
        long,
        env = "MESH_CONTROL_TOKEN_AUDIENCE",
        default_value = "mesh-control"
    )]
    token_audience: String,
    /// Admin token of the mutating API (apply, delete, faults, workload changes); generated
    /// there (mode 0600) when the file does not exist. Required off loopback.
    #[arg(long, env = "MESH_CONTROL_API_TOKEN_FILE", value_name = "FILE")]
    api_token_file: Option<PathBuf>,
}

fn cert_ttl(text: &str) -> Result<Duration, String> {
    let ttl = mesh_api::parse_duration(text).map_err(|e| e.to_string())?;
    // Seconds are allowed so a demo (or a test) can show several rotations in a minute.
    if ttl < Duration::from_secs(10) {
        return Err(format!("{text:?} is shorter than 10s"));
    }
    Ok(ttl)
}

fn registration_grace(text: &str) -> Result<Duration, String> {
    let grace = mesh_api::parse_duration(text).map_err(|e| e.to_string())?;
    // Longer than a proxy's long poll (10 s) would only delay its heartbeat answer.
    if grace > Duration::from_secs(60) {
        return Err(format!("{text:?} is longer than 60s"));
    }
    Ok(grace)
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

mod healthcheck;

fn main() -> ExitCode {
    // Not a flag of the server: the container's HEALTHCHECK, before any parsing.
    if std::env::args().nth(1).as_deref() == Some("healthcheck") {
        return healthcheck::run();
    }
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

/// The CA root kept in the Secret `[namespace/]name` of the cluster.
async fn root_from_secret(secret: &str, trust_domain: &str) -> Result<RootSource, String> {
    let client = mesh_control::kube::connect()
        .await
        .map_err(|e| format!("--ca-secret {secret}: {e}"))?;
    let (namespace, name) = match secret.split_once('/') {
        Some((namespace, name)) => (namespace.to_owned(), name.to_owned()),
        None => (client.default_namespace().to_owned(), secret.to_owned()),
    };
    if namespace.is_empty() || name.is_empty() || name.contains('/') {
        return Err(format!(
            "--ca-secret {secret:?}: expected NAME or NAMESPACE/NAME"
        ));
    }
    mesh_control::kube::ca_secret::root_source(&client, &namespace, &name, trust_domain)
        .await
        .map_err(|e| format!("--ca-secret: {e}"))
}

async fn run(cli: Cli) -> ExitCode {
    let root = match (cli.ca_dir, cli.ca_cert, cli.ca_key, &cli.ca_secret) {
        (Some(dir), _, _, _) => RootSource::Dir(dir),
        (None, Some(cert), Some(key), _) => RootSource::Files { cert, key },
        (_, _, _, Some(secret)) => match root_from_secret(secret, &cli.trust_domain).await {
            Ok(root) => root,
            Err(message) => return usage_error(&message),
        },
        _ => RootSource::Generate,
    };
    let settings = Settings {
        trust_domain: cli.trust_domain,
        cert_ttl: cli.cert_ttl,
        registration_grace: cli.registration_grace,
        trace_store_bytes: usize::from(cli.trace_store_mb) * 1024 * 1024,
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
    let auth = match auth(
        &cli.workload_tokens,
        cli.token_review,
        &cli.token_audience,
        &cli.api_token_file,
    )
    .await
    {
        Ok(auth) => auth,
        Err(message) => return usage_error(&message),
    };
    if let Err(e) = auth.check_listen(cli.listen) {
        return usage_error(&e.to_string());
    }
    if auth.is_open() {
        tracing::warn!(
            "workload identities are not checked: any local process can register as any workload and get its certificate (pass --workload-tokens or --token-review)"
        );
    }
    if cli.kubernetes {
        match mesh_control::kube::connect().await {
            Ok(client) => {
                tracing::info!("watching the Istio resources of the Kubernetes cluster");
                let source = KubeSource::start(&client, Retry::default());
                control.follow_source(source);
            }
            Err(error) => return usage_error(&format!("--kubernetes: {error}")),
        }
    }
    control.start_background();
    match serve(cli.listen, control, std::sync::Arc::new(auth)).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-control: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The credential sources of the command line.
async fn auth(
    tokens: &Option<PathBuf>,
    token_review: bool,
    audience: &str,
    api_token: &Option<PathBuf>,
) -> Result<Auth, String> {
    let mut auth = Auth::open();
    if let Some(path) = tokens {
        let tokens = TokensFile::load(path).map_err(|e| format!("--workload-tokens {e}"))?;
        tracing::info!(file = %path.display(), tokens = tokens.len(), "workload tokens loaded");
        auth = auth.with_tokens_file(tokens);
    }
    if token_review {
        // The API server speaks TLS (rustls, through kube): one crypto provider for the
        // process, the suite's.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = kube::Config::infer()
            .await
            .map_err(|e| format!("--token-review: no Kubernetes configuration: {e}"))?;
        let client = kube::Client::try_from(config)
            .map_err(|e| format!("--token-review: Kubernetes client: {e}"))?;
        tracing::info!(%audience, "workload tokens checked with the Kubernetes TokenReview API");
        auth = auth.with_token_review(TokenReviewer::new(client, audience));
    }
    if let Some(path) = api_token {
        let (admin, generated) =
            AdminToken::load_or_generate(path).map_err(|e| format!("--api-token-file {e}"))?;
        if generated {
            tracing::info!(file = %path.display(), "admin token generated (send it as Authorization: Bearer)");
        }
        auth = auth.with_admin(admin);
    }
    Ok(auth)
}

async fn serve(
    listen: SocketAddr,
    control: std::sync::Arc<Control>,
    auth: std::sync::Arc<Auth>,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!(address = %listen, "mesh-control listening (dashboard at http://{listen}/)");
    axum::serve(listener, mesh_control::api::secured(control, auth))
        .with_graceful_shutdown(bookinfo_common::shutdown::shutdown_signal())
        .await
        .context("server failed")
}
