//! `mesh-proxy`: the sidecar and ingress gateway. Configured by environment variables
//! (`MESH_PROXY_*`, see `mesh_proxy::config::Env`) and a YAML file; exits 64 with one
//! line on bad configuration.

use std::process::ExitCode;

use mesh_proxy::config::Env;
use mesh_proxy::run::{StartError, start};

#[tokio::main]
async fn main() -> ExitCode {
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
    let started = tokio::select! {
        r = start(&env) => r,
        () = signal() => return ExitCode::SUCCESS,
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
        () = signal() => running.shutdown(),
        () = running.stopped() => {}
    }
    tracing::info!("Draining.");
    running.join().await;
    ExitCode::SUCCESS
}

async fn signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = term => {},
    }
}
