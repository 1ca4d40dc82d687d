//! `mesh-proxy`: the sidecar and ingress gateway. Configured by environment variables
//! (`MESH_PROXY_*`, see `mesh_proxy::config::Env`) and a YAML file; exits 64 with one
//! line on bad configuration.

use std::process::ExitCode;

use mesh_proxy::config::Env;
use mesh_proxy::run::{StartError, start};

fn main() -> ExitCode {
    // One thread by default: a sidecar shares its machine with the app and a dozen other
    // processes in a laptop demo, and a single-threaded runtime spends nothing on
    // cross-thread wake-ups (Linkerd's proxy does the same for one core).
    let workers = match std::env::var("MESH_PROXY_WORKERS")
        .ok()
        .as_deref()
        .map(str::parse::<usize>)
    {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            eprintln!(
                "mesh-proxy: invalid MESH_PROXY_WORKERS: expected a number of threads, 1 or more"
            );
            return ExitCode::from(64);
        }
    };
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    match runtime {
        Ok(rt) => rt.block_on(run()),
        Err(e) => {
            eprintln!("mesh-proxy: cannot start the runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> ExitCode {
    let env = match Env::from_lookup(|k| std::env::var(k).ok()) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("mesh-proxy: {e}");
            return ExitCode::from(64);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .init();
    // Listen for signals before any port is bound, and keep the one listener: a SIGTERM
    // at any moment, even during startup, must stop the proxy cleanly.
    let mut stop = std::pin::pin!(bookinfo_common::shutdown::shutdown_signal());
    let started = tokio::select! {
        r = start(&env) => r,
        () = &mut stop => return ExitCode::SUCCESS,
    };
    let running = match started {
        Ok(r) => r,
        Err(e @ StartError::Config(_)) => {
            eprintln!("mesh-proxy: {}", e.to_string().replace('\n', "; "));
            return ExitCode::from(64);
        }
        Err(e) => {
            eprintln!("mesh-proxy: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        outbound = ?running.outbound,
        inbound = ?running.inbound,
        gateways = ?running.gateways,
        admin = %running.admin,
        "mesh-proxy started."
    );
    tokio::select! {
        () = &mut stop => running.shutdown(),
        () = running.stopped() => {}
    }
    tracing::info!("Draining.");
    running.join().await;
    ExitCode::SUCCESS
}
