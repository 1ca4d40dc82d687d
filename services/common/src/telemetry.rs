//! Structured logs with `tracing`: `RUST_LOG` picks levels (default: info for our
//! crates), `LOG_FORMAT=json` switches to one JSON object per line for log shippers.

use tracing_subscriber::EnvFilter;

use crate::config::{ConfigError, Lookup};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Reads `LOG_FORMAT` (`plain`, the default, or `json`).
    pub fn from_env(env: &dyn Lookup) -> Result<Self, ConfigError> {
        match env.get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("") | Some("plain") | Some("text") => Ok(Self::Plain),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError::new(
                "LOG_FORMAT",
                other,
                "expected plain or json",
            )),
        }
    }
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset;
/// an unparsable `RUST_LOG` falls back to it with a warning rather than failing.
pub fn init(format: LogFormat, default_filter: &str) {
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => match EnvFilter::try_new(&s) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(default_filter),
                Some(format!("ignoring RUST_LOG={s:?}: {e}")),
            ),
        },
        _ => (EnvFilter::new(default_filter), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A subscriber may already be set (tests); keeping the first one is fine.
    drop(result);
    if let Some(msg) = bad {
        tracing::warn!("{msg}");
    }
}
