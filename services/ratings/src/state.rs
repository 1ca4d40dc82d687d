//! What the handlers share: the variant's behaviour, the in-memory ratings and the metrics.

use std::sync::Arc;

use bookinfo_common::metrics::Metrics;

use crate::config::{MysqlConfig, Version};
use crate::faults::Faults;
use crate::store::RatingsStore;

/// Shared state of the ratings service, cheap to clone.
#[derive(Debug, Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    version: Version,
    faults: Faults,
    store: RatingsStore,
    metrics: Arc<Metrics>,
}

impl AppState {
    /// State for `version`; `seed` fixes the fault variants' random choices. The flapping
    /// variants' clocks start now.
    pub fn new(version: Version, seed: Option<u64>) -> Self {
        Self::with_store(version, seed, RatingsStore::default())
    }

    /// Like [`AppState::new`] with a given store (tests use a small one).
    pub fn with_store(version: Version, seed: Option<u64>, store: RatingsStore) -> Self {
        let faults = Faults::new(&version, seed);
        let inner = Inner {
            version,
            faults,
            store,
            metrics: Arc::new(Metrics::new()),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The variant being served.
    pub fn version(&self) -> &Version {
        &self.inner.version
    }

    /// The database of v2, if this is v2.
    pub(crate) fn mysql(&self) -> Option<&MysqlConfig> {
        match &self.inner.version {
            Version::V2(db) => Some(db),
            _ => None,
        }
    }

    pub(crate) fn faults(&self) -> &Faults {
        &self.inner.faults
    }

    pub(crate) fn store(&self) -> &RatingsStore {
        &self.inner.store
    }

    /// The metrics registry served on `/metrics`.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.inner.metrics.clone()
    }
}
