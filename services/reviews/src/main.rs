//! `reviews`: Bookinfo's reviews service (v1/v2/v3). See the library docs for behaviour.

use std::process::ExitCode;
use std::sync::Arc;

use bookinfo_common::config::{SystemEnv, exit_usage};
use bookinfo_common::{client, telemetry};
use bookinfo_reviews::{Config, app, routes::AppState};

#[tokio::main]
async fn main() -> ExitCode {
    let arg = std::env::args().nth(1);
    let config = Config::from_lookup(&SystemEnv, arg.as_deref())
        .unwrap_or_else(|e| exit_usage("reviews", &e));
    let format =
        telemetry::LogFormat::from_env(&SystemEnv).unwrap_or_else(|e| exit_usage("reviews", &e));
    let spans = telemetry::start("reviews", format, "info", &SystemEnv);
    let client = match client::build(client::ClientOptions::default()) {
        Ok(c) => c,
        Err(e) => exit_usage("reviews", &format!("cannot build the HTTP client: {e}")),
    };
    tracing::info!(
        version = %config.version,
        ratings = config.ratings_enabled,
        color = %config.star_color,
        ratings_url = %config.ratings.base_url,
        "Starting reviews."
    );
    let listen = config.listen;
    let code = bookinfo_common::serve::start(
        "reviews",
        listen,
        app(Arc::new(AppState { config, client })),
    )
    .await;
    telemetry::finish(spans).await;
    code
}
