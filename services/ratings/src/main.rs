//! The `ratings` binary: parse the configuration, bind, serve until SIGTERM.
//!
//! Run with `ratings [port]`; see the library docs for the variables.

use anyhow::Context;
use bookinfo_common::config::{SystemEnv, exit_usage};
use bookinfo_common::serve;
use bookinfo_common::telemetry::{self, LogFormat};
use bookinfo_ratings::config::Config;
use bookinfo_ratings::{AppState, app};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    let port_arg = std::env::args().nth(1);
    // Configuration errors are the caller's to fix: one line and exit code 64.
    let log_format = LogFormat::from_env(&env).unwrap_or_else(|err| exit_usage("ratings", &err));
    let config = Config::from_env(&env, port_arg.as_deref())
        .unwrap_or_else(|err| exit_usage("ratings", &err));
    let spans = telemetry::start(
        "ratings",
        log_format,
        "ratings=info,bookinfo_ratings=info,bookinfo_common=info,warn",
        &env,
    );

    // Signals first: a SIGTERM right after the port is bound must drain, not kill.
    let shutdown = serve::shutdown_signal();
    let listener = serve::bind(config.listen).with_context(|| {
        format!(
            "cannot listen on port {} of {}",
            config.listen.port, config.listen.ip
        )
    })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    tracing::info!(%addr, version = config.version.name(), seed = ?config.seed, "Ratings listening.");
    let served = serve::run_until(
        listener,
        app(AppState::new(config.version, config.seed)),
        shutdown,
    )
    .await;
    telemetry::finish(spans).await;
    served.context("serving")?;
    tracing::info!("Ratings stopped.");
    Ok(())
}
