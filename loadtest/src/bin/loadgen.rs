//! `loadgen`: HTTP load generator for the Bookinfo suite.
//!
//! Open model (constant or ramped global arrival rate) by default, closed model with
//! `--closed`; coordinated-omission corrected and raw latency; degraded pages (200 answers
//! with an error text) counted apart from failures; text, JSON and HTML reports, a
//! per-request log; an optional live steady-state endpoint.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bookinfo_loadtest::load::progress::Progress;
use bookinfo_loadtest::load::{
    Mix, Model, Recorder, RunConfig, Schedule, Stage, Target, html, outcomes, window,
};
use bytes::Bytes;
use clap::Parser;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use mesh_api::duration::parse_duration;

/// HTTP load generator: open model (arrival rate) by default, closed model with --closed.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, after_help = EXAMPLES)]
struct Cli {
    /// Target URL (http://host:port/path). With --bookinfo or --mix: the base URL.
    target: String,

    /// Open model: requests per second, for --duration (or the start rate of --stage ramps).
    #[arg(short = 'r', long)]
    rate: Option<f64>,

    /// Length of the run, e.g. 30s, 2m.
    #[arg(short = 'd', long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// Ramp stage DURATION:RATE (repeatable): linear ramp to RATE over DURATION.
    #[arg(long = "stage", value_name = "DURATION:RATE")]
    stages: Vec<Stage>,

    /// Connections (open model: the pool serving the schedule; closed model: concurrency).
    #[arg(short = 'c', long, default_value_t = 64)]
    connections: usize,

    /// Closed model: each connection sends back to back (needs -n or --duration).
    #[arg(long)]
    closed: bool,

    /// Number of requests (closed model; a cap in the open model).
    #[arg(short = 'n', long)]
    requests: Option<u64>,

    /// Speak h2c (HTTP/2 with prior knowledge) instead of HTTP/1.1.
    #[arg(long)]
    http2: bool,

    /// Per-request timeout (connect, and response until the whole body is read).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    timeout: Duration,

    /// Open model: drop (do not send) requests still queued this long after their intended time.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    max_lateness: Duration,

    /// Request mix YAML (weighted requests, optional `login: jason`).
    #[arg(long, conflicts_with = "bookinfo")]
    mix: Option<PathBuf>,

    /// Use the built-in Bookinfo mix against the base URL (product page, as jason, API).
    #[arg(long)]
    bookinfo: bool,

    /// Method for a single-URL target.
    #[arg(short = 'X', long, default_value = "GET")]
    method: String,

    /// Header for a single-URL target, "Name: value" (repeatable).
    #[arg(short = 'H', long = "header")]
    headers: Vec<String>,

    /// Request body for a single-URL target.
    #[arg(long)]
    body: Option<String>,

    /// A 200 answer whose body contains TEXT is degraded, counted apart from failures
    /// (repeatable; replaces --bookinfo's default, Bookinfo's own error texts).
    #[arg(long = "degraded-text", value_name = "TEXT")]
    degraded_texts: Vec<String>,

    /// No degraded-text check (not even --bookinfo's default); bodies are not kept.
    #[arg(long, conflicts_with = "degraded_texts")]
    no_degraded_check: bool,

    /// Write one line per request here (JSON Lines: times, entry, answer, degraded texts).
    #[arg(long, value_name = "FILE")]
    outcomes: Option<PathBuf>,

    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Write the self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,

    /// Serve GET /api/v1/window on this address while running (e.g. 127.0.0.1:9999).
    #[arg(long)]
    serve: Option<SocketAddr>,

    /// Rolling window for --serve.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    window: Duration,

    /// No live progress.
    #[arg(short = 'q', long)]
    quiet: bool,

    /// Runtime threads (default: the CPUs this process may use).
    #[arg(long)]
    threads: Option<usize>,
}

const EXAMPLES: &str = "Examples:
  loadgen --rate 200 --duration 30s http://127.0.0.1:9080/productpage
  loadgen --stage 10s:100 --stage 30s:1000 --bookinfo http://127.0.0.1:9080
  loadgen --closed -c 64 -n 100000 --http2 http://127.0.0.1:9080/health
  loadgen --rate 50 -d 5m --mix loadtest/mixes/bookinfo.yaml --serve 127.0.0.1:9999 \\
          --json out.json --html out.html http://127.0.0.1:9080
  loadgen --rate 100 -d 1m --bookinfo --outcomes requests.jsonl http://127.0.0.1:8080";

/// A usage problem: one line on stderr, exit code 64.
#[derive(Debug)]
struct Usage(String);

fn usage<T>(message: impl Into<String>) -> Result<T, Usage> {
    Err(Usage(message.into()))
}

fn model(cli: &Cli) -> Result<Model, Usage> {
    if cli.connections == 0 {
        return usage("invalid -c 0: need at least one connection");
    }
    if cli.requests == Some(0) {
        return usage("invalid -n 0: need at least one request");
    }
    if let Some(rate) = cli.rate
        && !(rate.is_finite() && rate > 0.0)
    {
        return usage(format!("invalid --rate {rate}: must be a number > 0"));
    }
    if cli.closed {
        if cli.rate.is_some() || !cli.stages.is_empty() {
            return usage("--closed runs as fast as -c connections allow; drop --rate/--stage");
        }
        if cli.requests.is_none() && cli.duration.is_none() {
            return usage("unbounded run refused: give -n COUNT or --duration with --closed");
        }
        return Ok(Model::Closed {
            requests: cli.requests,
            duration: cli.duration,
        });
    }
    let schedule = if cli.stages.is_empty() {
        let Some(rate) = cli.rate else {
            return usage(
                "the open model needs --rate N (or --stage DURATION:RATE); use --closed for as-fast-as-possible",
            );
        };
        let duration = match (cli.duration, cli.requests) {
            (Some(d), _) => d,
            (None, Some(n)) => Duration::from_secs_f64(n as f64 / rate),
            (None, None) => {
                return usage("unbounded run refused: give --duration (or -n COUNT)");
            }
        };
        if duration.is_zero() {
            return usage("invalid --duration: must be > 0");
        }
        Schedule::constant(rate, duration)
    } else {
        if cli.duration.is_some() {
            return usage("--duration conflicts with --stage: the stages define the length");
        }
        Schedule::ramped(cli.rate.unwrap_or(0.0), &cli.stages)
    };
    Ok(Model::Open {
        schedule: schedule.with_limit(cli.requests),
        max_lateness: cli.max_lateness,
    })
}

fn single_mix(cli: &Cli, target: &Target) -> Result<Mix, Usage> {
    let method = Method::from_bytes(cli.method.to_ascii_uppercase().as_bytes())
        .or_else(|_| usage(format!("invalid -X {:?}: not an HTTP method", cli.method)))?;
    let mut headers = HeaderMap::new();
    for h in &cli.headers {
        let bad = || format!("invalid -H {h:?}: expected \"Name: value\"");
        let (name, value) = h.split_once(':').ok_or_else(|| Usage(bad()))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes()).map_err(|_| Usage(bad()))?;
        let value = HeaderValue::from_str(value.trim()).map_err(|_| Usage(bad()))?;
        headers.append(name, value);
    }
    let body = cli.body.clone().map(Bytes::from).unwrap_or_default();
    Ok(Mix::single(method, &target.path_and_query, headers, body))
}

async fn main_async(cli: Cli) -> anyhow::Result<ExitCode> {
    let model = match model(&cli) {
        Ok(m) => m,
        Err(Usage(line)) => return Ok(exit_usage(&line)),
    };
    let target = match Target::resolve(&cli.target).await {
        Ok(t) => t,
        Err(e) => return Ok(exit_usage(&e.to_string())),
    };
    let single_only = !cli.headers.is_empty() || cli.body.is_some() || cli.method != "GET";
    if (cli.bookinfo || cli.mix.is_some()) && single_only {
        return Ok(exit_usage(
            "-X/-H/--body describe a single-URL target; put them in the --mix file instead",
        ));
    }
    let mix = if cli.bookinfo {
        Mix::bookinfo(&target)
    } else if let Some(path) = &cli.mix {
        match Mix::from_file(path, &target) {
            Ok(m) => m,
            Err(e) => return Ok(exit_usage(&e.to_string())),
        }
    } else {
        match single_mix(&cli, &target) {
            Ok(m) => m,
            Err(Usage(line)) => return Ok(exit_usage(&line)),
        }
    };
    let texts = if cli.no_degraded_check {
        Some(Vec::new())
    } else {
        (!cli.degraded_texts.is_empty()).then(|| cli.degraded_texts.clone())
    };
    let mix = match texts {
        Some(texts) => match mix.with_degraded_texts(&texts) {
            Ok(m) => m,
            Err(e) => return Ok(exit_usage(&e.to_string())),
        },
        None => mix,
    };
    let cfg = RunConfig {
        target,
        mix,
        model,
        connections: cli.connections,
        http2: cli.http2,
        timeout: cli.timeout,
    };
    let recorder = if cli.outcomes.is_some() {
        Recorder::new(cli.window).with_outcomes()
    } else {
        Recorder::new(cli.window)
    };
    let recorder = Arc::new(recorder);
    let (entries, degraded_texts) = (
        cfg.mix.entries().iter().map(|e| e.name.clone()).collect(),
        cfg.mix.degraded_texts(),
    );
    let server = match cli.serve {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on --serve {addr}"))?;
            let rate_cfg = cfg.clone();
            let rate: window::RateFn = Arc::new(move |t| rate_cfg.requested_rate(t));
            Some(tokio::spawn(window::serve(
                listener,
                Arc::clone(&recorder),
                rate,
            )))
        }
        None => None,
    };
    let progress = Progress::start(Arc::clone(&recorder), cfg.planned_duration(), cli.quiet);
    let result = bookinfo_loadtest::load::run(cfg, Arc::clone(&recorder)).await;
    progress.finish();
    if let Some(server) = server {
        server.abort();
    }
    let report = match result {
        Ok(r) => r,
        Err(e) => return Ok(exit_usage(&e.to_string())),
    };
    print!("{}", report.text());
    if let Some(path) = &cli.json {
        let text = report.to_json().context("cannot encode the JSON report")?;
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &cli.outcomes {
        let header = outcomes::LogHeader {
            start_unix_ms: report.start_unix_ms.unwrap_or(0),
            entries,
            degraded_texts,
        };
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        outcomes::write(
            &mut std::io::BufWriter::new(file),
            &header,
            &recorder.take_outcomes(),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &cli.html {
        std::fs::write(path, html::render(&report))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn exit_usage(line: &str) -> ExitCode {
    eprintln!("loadgen: {line}");
    ExitCode::from(64)
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            // clap's own message names the flag and the expected form; keep the exit code
            // for bad usage consistent with the rest of the suite.
            let _ = e.print();
            return Ok(ExitCode::from(64));
        }
        Err(e) => {
            let _ = e.print();
            return Ok(ExitCode::SUCCESS);
        }
    };
    let threads = cli
        .threads
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .unwrap_or(1)
        .max(1);
    // One thread (e.g. under `taskset -c 0`): the current-thread runtime avoids cross-thread
    // wake-ups entirely and is the fastest way to drive many connections from one core.
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .context("cannot start the async runtime")?;
    runtime.block_on(main_async(cli))
}
