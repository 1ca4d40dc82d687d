//! `productpage`: serves the Bookinfo product page on `[::]:9080`.
//!
//! Configuration comes from the environment (see [`bookinfo_productpage::Config`]);
//! a bad value prints one line and exits with code 64 before anything is bound.

use anyhow::Context;
use bookinfo_common::config::{SystemEnv, exit_usage};
use bookinfo_common::serve;
use bookinfo_common::telemetry::{self, LogFormat};
use bookinfo_productpage::{AppState, Config, Proxy, app};

const PROGRAM: &str = "productpage";

/// Our crates at info, everything else at warn.
const DEFAULT_LOG_FILTER: &str =
    "warn,productpage=info,bookinfo_productpage=info,bookinfo_common=info";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let env = SystemEnv;
    let arg = std::env::args().nth(1);
    let format = LogFormat::from_env(&env).unwrap_or_else(|e| exit_usage(PROGRAM, &e));
    let config =
        Config::from_lookup(&env, arg.as_deref()).unwrap_or_else(|e| exit_usage(PROGRAM, &e));
    let spans = telemetry::start(PROGRAM, format, DEFAULT_LOG_FILTER, &env);

    let state =
        AppState::new(&config, Proxy::FromEnvironment).context("cannot start productpage")?;
    // Signals first: a SIGTERM right after the port is bound must drain, not kill.
    let shutdown = serve::shutdown_signal();
    let listener = serve::bind(config.listen).with_context(|| {
        format!(
            "cannot listen on port {} of {}",
            config.listen.port, config.listen.ip
        )
    })?;
    tracing::info!(
        address = %listener.local_addr()?,
        details = %config.details,
        reviews = %config.reviews,
        ratings = %config.ratings,
        flood_factor = config.flood_factor,
        keep_alive = config.keep_alive,
        "Product page listening."
    );
    let served = serve::run_until(listener, app(state), shutdown).await;
    telemetry::finish(spans).await;
    served.context("server failed")
}
