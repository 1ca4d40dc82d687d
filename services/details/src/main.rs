//! `details`: Bookinfo's details service. See the library docs for behaviour.

use std::process::ExitCode;
use std::sync::Arc;

use bookinfo_common::config::{SystemEnv, exit_usage};
use bookinfo_common::{client, telemetry};
use bookinfo_details::{Config, app, routes::AppState};

#[tokio::main]
async fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let config = Config::from_lookup(&SystemEnv, arg.as_deref())
        .unwrap_or_else(|e| exit_usage("details", &e));
    let format =
        telemetry::LogFormat::from_env(&SystemEnv).unwrap_or_else(|e| exit_usage("details", &e));
    let spans = telemetry::start("details", format, "info", &SystemEnv);
    let client = match client::build(client::ClientOptions::default()) {
        Ok(c) => c,
        Err(e) => exit_usage("details", &format!("cannot build the HTTP client: {e}")),
    };
    tracing::info!(external = config.external, books_api = %config.books_api, "Starting details.");
    let listen = config.listen;
    let code = bookinfo_common::serve::start(
        "details",
        listen,
        app(Arc::new(AppState { config, client })),
    )
    .await;
    telemetry::finish(spans).await;
    code
}
