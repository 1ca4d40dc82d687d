//! The command line: `meshctl up`, `apply`, `delete`, `get`, `describe`, `proxy-status`,
//! `fault`, `kill`, `explain`.

use std::path::PathBuf;
use std::time::Duration;

use crate::fault::FaultArgs;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// Run the Bookinfo mesh on this machine and drive its control plane.
#[derive(Debug, Parser)]
#[command(name = "meshctl", version, propagate_version = true)]
pub struct Cli {
    /// Control plane URL [default: from the running `meshctl up`, else http://127.0.0.1:15010].
    #[arg(long, global = true, env = "MESHCTL_CONTROL", value_name = "URL")]
    pub control: Option<String>,

    /// Admin token of the control plane's mutating API (apply, delete, fault), sent as
    /// `Authorization: Bearer`; needed when the control plane listens off loopback.
    #[arg(
        long,
        global = true,
        env = "MESH_CONTROL_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        conflicts_with = "token_file"
    )]
    pub token: Option<String>,

    /// A file holding the admin token (e.g. the control plane's --api-token-file).
    #[arg(
        long,
        global = true,
        env = "MESH_CONTROL_TOKEN_FILE",
        value_name = "FILE"
    )]
    pub token_file: Option<PathBuf>,

    /// Where `meshctl up` keeps its state file, logs and config directory.
    #[arg(
        long,
        global = true,
        env = "MESHCTL_RUN_DIR",
        default_value = ".run/meshctl",
        value_name = "DIR"
    )]
    pub run_dir: PathBuf,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the control plane, every Bookinfo workload with its sidecar and the ingress
    /// gateway on 127.0.0.1, and supervise them until Ctrl-C.
    Up(UpArgs),
    /// Apply Istio resources from a YAML file or every *.yaml of a directory.
    Apply(FileArgs),
    /// Delete the Istio resources named in a YAML file or directory.
    Delete(FileArgs),
    /// List resources: virtualservices (vs), destinationrules (dr), gateways (gw),
    /// serviceentries (se), peerauthentications (pa), authorizationpolicies (ap),
    /// envoyfilters (ef), httproutes, gateways.gateway.networking.k8s.io, faults, workloads.
    Get(GetArgs),
    /// Show the routes, subsets, policies, endpoints and faults in force for a service.
    Describe {
        /// Service name, e.g. reviews.
        service: String,
    },
    /// Find rules that are valid but do not do what they seem to: conflicting
    /// VirtualServices, missing subsets, gateways or hosts (like istioctl analyze). With -f,
    /// the configuration as it would be with those files applied; nothing is changed.
    Analyze(AnalyzeArgs),
    /// Show whether every proxy runs the latest configuration.
    ProxyStatus,
    /// Inject faults as leases that expire by themselves.
    Fault {
        /// What to do with faults.
        #[command(subcommand)]
        action: FaultCommand,
    },
    /// Chaos: kill a workload's process (SIGKILL); the supervisor of `meshctl up` restarts it.
    Kill(KillArgs),
    /// Explain an Envoy response flag seen in access logs or metrics (UF, UO, NR, ...).
    Explain {
        /// The flag, e.g. UF.
        flag: String,
    },
}

/// `meshctl up`.
#[derive(Debug, Clone, Args)]
pub struct UpArgs {
    /// Directory holding mesh-control, mesh-proxy and the Bookinfo binaries
    /// [default: the directory of meshctl itself].
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,

    /// First of the internal ports: workload i uses a block of 10 from base + 10*i.
    #[arg(long, default_value_t = 15100, value_name = "PORT")]
    pub base_port: u16,

    /// Control plane API and dashboard port.
    #[arg(long, default_value_t = 15010, value_name = "PORT")]
    pub control_port: u16,

    /// Port of the product page (the ingress gateway; productpage itself with --no-mesh).
    #[arg(long, default_value_t = 8080, value_name = "PORT")]
    pub gateway_port: u16,

    /// The control plane's config directory (watched; edits apply live)
    /// [default: <run-dir>/config, seeded from --mesh-config].
    #[arg(long, value_name = "DIR")]
    pub config_dir: Option<PathBuf>,

    /// Where the shipped routing files are (destination-rule-all.yaml,
    /// bookinfo-gateway.yaml) [default: mesh/config].
    #[arg(long, value_name = "DIR")]
    pub mesh_config: Option<PathBuf>,

    /// Workloads to run, comma-separated: a service runs all its versions
    /// (productpage,details,reviews-v1,reviews-v3,ratings) [default: all].
    #[arg(long, value_delimiter = ',', value_name = "LIST")]
    pub workloads: Vec<String>,

    /// Plain services wired directly to each other: no control plane, no sidecars.
    #[arg(long)]
    pub no_mesh: bool,

    /// The reviews version to run with --no-mesh.
    #[arg(long, default_value = "v2", value_name = "v1|v2|v3")]
    pub reviews: String,

    /// Interleave every process's output, prefixed with its name, instead of log files.
    #[arg(long, short)]
    pub verbose: bool,

    /// How long to wait for everything to be ready and the first product page.
    #[arg(long, default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub ready_timeout: Duration,
}

/// `meshctl analyze`.
#[derive(Debug, Clone, Args)]
pub struct AnalyzeArgs {
    /// YAML files or directories to consider applied on top of what is in force.
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR")]
    pub files: Vec<PathBuf>,
    /// The level from which findings make the exit status 79.
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = Threshold::Error)]
    pub failure_threshold: Threshold,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// A finding level, as `--failure-threshold` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Threshold {
    /// Every finding fails.
    Info,
    /// Warnings and errors fail.
    Warning,
    /// Only errors fail.
    Error,
}

/// `-f FILE|DIR`.
#[derive(Debug, Clone, Args)]
pub struct FileArgs {
    /// A YAML file, or a directory whose *.yaml files are used in name order.
    #[arg(
        short = 'f',
        long = "filename",
        value_name = "FILE|DIR",
        required = true
    )]
    pub files: Vec<PathBuf>,
}

/// Output format of `get`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// A table.
    Table,
    /// YAML documents.
    Yaml,
    /// JSON.
    Json,
}

/// `meshctl get`.
#[derive(Debug, Clone, Args)]
pub struct GetArgs {
    /// What to list.
    pub kind: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

/// `meshctl fault ...`.
#[derive(Debug, Clone, Subcommand)]
pub enum FaultCommand {
    /// Add a fault (delay, abort, bandwidth, reset, blackhole, slow close) on a service
    /// for a limited time.
    Add(Box<FaultArgs>),
    /// List the faults in force with their remaining time.
    List,
    /// Remove one fault by id, or every fault.
    Clear {
        /// Fault id (e.g. f-1); without it every fault is removed.
        id: Option<String>,
    },
}

/// `meshctl kill`.
#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Workload name, e.g. reviews-v2 (or istio-ingressgateway, mesh-control).
    pub workload: String,
    /// Kill the app process (the default).
    #[arg(long, conflicts_with = "sidecar")]
    pub app: bool,
    /// Kill the sidecar process instead of the app.
    #[arg(long)]
    pub sidecar: bool,
    /// The signal: KILL (a crash, the default), TERM (a graceful stop, as Kubernetes
    /// does on a rollout), INT or HUP.
    #[arg(long, default_value = "KILL", value_parser = parse_signal)]
    pub signal: nix::sys::signal::Signal,
}

/// A `--signal` that `meshctl kill` does not send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not one of KILL, TERM, INT, HUP")]
pub struct UnknownSignal(pub String);

fn parse_signal(s: &str) -> Result<nix::sys::signal::Signal, UnknownSignal> {
    use nix::sys::signal::Signal;
    match s.trim_start_matches("SIG").to_ascii_uppercase().as_str() {
        "KILL" | "9" => Ok(Signal::SIGKILL),
        "TERM" | "15" => Ok(Signal::SIGTERM),
        "INT" | "2" => Ok(Signal::SIGINT),
        "HUP" | "1" => Ok(Signal::SIGHUP),
        _ => Err(UnknownSignal(s.to_owned())),
    }
}

/// A duration flag (`--ttl`, `--delay`, `--ready-timeout`) that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a number with a unit, such as 7s, 500ms, 2m or 1h")]
pub struct InvalidDuration(pub String);

/// The units a duration flag may use. mesh-api's parser also takes `us`, `ns` and
/// compounds (`1m30s`); meshctl's flags keep to these four, as their help says.
const FLAG_UNITS: [&str; 4] = ["ms", "s", "m", "h"];

/// Longest duration a flag accepts: a year (each flag then checks its own range).
const LONGEST: Duration = Duration::from_secs(86_400 * 365);

/// Parses `7s`, `1.5s`, `500ms`, `2m`, `1h` with mesh-api's parser. A bare number is
/// refused: `7` could mean seconds or milliseconds, and guessing wrong makes a fault last
/// 1000 times too long.
pub fn parse_duration(text: &str) -> Result<Duration, InvalidDuration> {
    let invalid = || InvalidDuration(text.to_owned());
    let trimmed = text.trim();
    let unit = trimmed.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.');
    if !FLAG_UNITS.contains(&unit) {
        return Err(invalid());
    }
    mesh_api::parse_duration(trimmed)
        .ok()
        .filter(|d| *d <= LONGEST)
        .ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("meshctl").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn up_defaults() {
        let cli = parse(&["up"]).unwrap();
        let Command::Up(up) = cli.command else {
            panic!("not up")
        };
        assert_eq!(
            (up.base_port, up.control_port, up.gateway_port),
            (15100, 15010, 8080)
        );
        assert!(up.workloads.is_empty() && !up.no_mesh && !up.verbose);
        assert_eq!(up.reviews, "v2");
        assert_eq!(up.ready_timeout, Duration::from_secs(30));
        assert_eq!(cli.run_dir, PathBuf::from(".run/meshctl"));
    }

    #[test]
    fn up_options() {
        let cli = parse(&[
            "up",
            "--workloads",
            "productpage,reviews-v3",
            "--base-port",
            "20000",
            "--gateway-port",
            "9000",
            "--no-mesh",
            "--reviews",
            "v3",
            "--ready-timeout",
            "5s",
            "--run-dir",
            "/tmp/x",
        ])
        .unwrap();
        let Command::Up(up) = cli.command else {
            panic!("not up")
        };
        assert_eq!(up.workloads, ["productpage", "reviews-v3"]);
        assert_eq!((up.base_port, up.gateway_port), (20000, 9000));
        assert!(up.no_mesh);
        assert_eq!(up.ready_timeout, Duration::from_secs(5));
        assert_eq!(cli.run_dir, PathBuf::from("/tmp/x"));
        let e = parse(&["up", "--ready-timeout", "5"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid duration"), "{e}");
        assert!(parse(&["up", "--base-port", "70000"]).is_err());
    }

    #[test]
    fn durations_take_one_number_and_one_unit() {
        assert_eq!(parse_duration("7s"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration(" 1.5s "), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        for bad in [
            "7", "", "s", "7x", "-3s", "1.2.3s", "7 s", "1m30s", "10us", "5ns", "9000h",
        ] {
            let e = parse_duration(bad).unwrap_err();
            assert_eq!(
                e.to_string(),
                format!(
                    "invalid duration {bad:?}: expected a number with a unit, such as 7s, 500ms, 2m or 1h"
                )
            );
        }
    }

    #[test]
    fn fault_add_flags() {
        let cli = parse(&[
            "fault",
            "add",
            "ratings",
            "--delay",
            "7s",
            "--header",
            "end-user=jason",
            "--header",
            "x=y",
            "--ttl",
            "2m",
            "--control",
            "http://127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(cli.control.as_deref(), Some("http://127.0.0.1:1"));
        let Command::Fault {
            action: FaultCommand::Add(a),
        } = cli.command
        else {
            panic!("not fault add")
        };
        assert_eq!(a.service, "ratings");
        assert_eq!(a.delay.as_deref(), Some("7s"));
        assert_eq!(a.headers, ["end-user=jason", "x=y"]);
        assert!(
            parse(&["fault", "add", "ratings", "--delay", "7s"]).is_err(),
            "ttl is required"
        );
        let Command::Fault {
            action: FaultCommand::Add(a),
        } = parse(&[
            "fault",
            "add",
            "productpage",
            "--bandwidth",
            "2KB/s",
            "--reset-after",
            "100",
            "--blackhole",
            "--slow-close",
            "3s",
            "--direction",
            "response",
            "--ttl",
            "1m",
        ])
        .unwrap()
        .command
        else {
            panic!("not fault add")
        };
        assert_eq!(a.bandwidth.as_deref(), Some("2KB/s"));
        assert_eq!(a.reset_after.as_deref(), Some("100"));
        assert!(a.blackhole && !a.reset);
        assert_eq!(a.slow_close.as_deref(), Some("3s"));
        assert_eq!(a.direction.as_deref(), Some("response"));
        assert!(
            parse(&["fault", "add", "r", "--jitter", "1s", "--ttl", "1m"]).is_err(),
            "a jitter needs a delay"
        );
    }

    #[test]
    fn analyze_flags() {
        let Command::Analyze(a) = parse(&["analyze"]).unwrap().command else {
            panic!("not analyze")
        };
        assert!(a.files.is_empty());
        assert_eq!(a.failure_threshold, Threshold::Error);
        let Command::Analyze(a) =
            parse(&["analyze", "-f", "b.yaml", "--failure-threshold", "warning"])
                .unwrap()
                .command
        else {
            panic!("not analyze")
        };
        assert_eq!(a.files.len(), 1);
        assert_eq!(a.failure_threshold, Threshold::Warning);
        assert!(parse(&["analyze", "--failure-threshold", "fatal"]).is_err());
    }

    #[test]
    fn other_subcommands() {
        let cli = parse(&["apply", "-f", "a.yaml", "-f", "dir"]).unwrap();
        let Command::Apply(f) = cli.command else {
            panic!("not apply")
        };
        assert_eq!(f.files.len(), 2);
        assert!(parse(&["apply"]).is_err());
        let cli = parse(&["get", "vs", "-o", "yaml"]).unwrap();
        let Command::Get(g) = cli.command else {
            panic!("not get")
        };
        assert_eq!((g.kind.as_str(), g.output), ("vs", OutputFormat::Yaml));
        assert!(parse(&["get", "vs", "-o", "xml"]).is_err());
        assert!(parse(&["kill", "reviews-v2", "--app", "--sidecar"]).is_err());
        let cli = parse(&["kill", "reviews-v2", "--sidecar"]).unwrap();
        assert!(matches!(
            cli.command,
            Command::Kill(KillArgs { sidecar: true, .. })
        ));
        assert!(matches!(
            parse(&["fault", "clear"]).unwrap().command,
            Command::Fault {
                action: FaultCommand::Clear { id: None }
            }
        ));
        assert!(matches!(
            parse(&["proxy-status"]).unwrap().command,
            Command::ProxyStatus
        ));
    }
}
