//! Shared state of the handlers, built once from the [`Config`].

use std::sync::Arc;

use bookinfo_common::client::{self, ClientOptions};
use bookinfo_common::metrics::Metrics;
use prometheus_client::metrics::family::Family;

use crate::config::Config;
use crate::session::{SessionKey, SessionKeyError};
use crate::upstream::{Backends, ResultLabels};

pub use bookinfo_common::client::Proxy;

/// The state could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The session secret is unusable.
    #[error(transparent)]
    SessionKey(#[from] SessionKeyError),
}

/// Cheap to clone; everything lives behind one `Arc`.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    backends: Backends,
    sessions: SessionKey,
    flood_factor: u32,
    metrics: Arc<Metrics>,
}

impl AppState {
    /// Builds the client, the session key and the metrics registry.
    pub fn new(config: &Config, proxy: Proxy) -> Result<Self, StateError> {
        let client = client::build(ClientOptions {
            keep_alive: config.keep_alive,
            proxy,
        })?;
        let results = Family::<ResultLabels, _>::default();
        let mut metrics = Metrics::new();
        metrics.registry_mut().register(
            "request_result",
            "Calls to details, reviews and ratings by outcome (one per call, retries included)",
            results.clone(),
        );
        let backends = Backends::new(
            client,
            config.details.clone(),
            config.reviews.clone(),
            config.ratings.clone(),
            results,
        );
        Ok(Self(Arc::new(Inner {
            backends,
            sessions: SessionKey::new(&config.session_secret)?,
            flood_factor: config.flood_factor,
            metrics: Arc::new(metrics),
        })))
    }

    /// The upstreams.
    pub fn backends(&self) -> &Backends {
        &self.0.backends
    }

    /// The session cookie signer.
    pub fn sessions(&self) -> &SessionKey {
        &self.0.sessions
    }

    /// Extra reviews calls per page view.
    pub fn flood_factor(&self) -> u32 {
        self.0.flood_factor
    }

    /// The metrics registry.
    pub fn metrics(&self) -> Arc<Metrics> {
        Arc::clone(&self.0.metrics)
    }
}
