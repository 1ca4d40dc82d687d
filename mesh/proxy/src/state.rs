//! State shared by the proxy's listeners: the current configuration, who we are, and
//! the telemetry sinks.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use prometheus_client::registry::Registry;

use crate::mtls::Mtls;
use crate::snapshot::Store;
use crate::telemetry::metrics::{IstioMetrics, Workload};
use crate::telemetry::peer::Exchange;
use crate::telemetry::trace::Tracing;
use crate::upstream::client::{UpstreamClient, client};

/// Everything a request handler needs.
#[derive(Debug)]
pub struct ProxyState {
    /// Current configuration.
    pub store: Store,
    /// This proxy's workload (the source of outbound calls, the destination of inbound ones).
    pub me: Workload,
    /// The peer metadata this proxy sends to mesh peers, encoded once.
    pub exchange: Option<Exchange>,
    /// Istio metrics.
    pub metrics: IstioMetrics,
    /// The Prometheus registry behind `/stats/prometheus`.
    pub registry: Registry,
    /// Print an Envoy-style access log line per request.
    pub access_log: bool,
    /// Client for hosts outside the registry (Istio's `ALLOW_ANY` passthrough).
    pub passthrough: UpstreamClient,
    /// Whether a configuration has arrived (readiness probes wait for it).
    ready: AtomicBool,
    /// Gateway mode: requests arriving downstream are subject to authorization.
    pub gateway: bool,
    /// The mesh identity, once issued (control-plane mode).
    mtls: OnceLock<Arc<Mtls>>,
    /// The inbound listener's local rate limits (their buckets outlive snapshots).
    pub rate_limits: crate::inbound::ratelimit::Limiters,
    /// The tracer, when an OTLP endpoint is configured (`None`: no span is made).
    pub tracing: Option<Tracing>,
}

impl ProxyState {
    /// State with fresh metrics.
    pub fn new(
        store: Store,
        me: Workload,
        exchange: Option<Exchange>,
        access_log: bool,
        gateway: bool,
    ) -> Self {
        let mut registry = Registry::default();
        let metrics = IstioMetrics::register(&mut registry);
        Self {
            store,
            me,
            exchange,
            metrics,
            registry,
            access_log,
            passthrough: client(
                mesh_api::defaults::DEFAULT_CONNECT_TIMEOUT,
                true,
                None,
                None,
            ),
            ready: AtomicBool::new(false),
            gateway,
            mtls: OnceLock::new(),
            rate_limits: Default::default(),
            tracing: None,
        }
    }

    /// The same state, tracing with `tracing`.
    pub fn with_tracing(mut self, tracing: Option<Tracing>) -> Self {
        self.tracing = tracing;
        self
    }

    /// Whether the proxy has its configuration and serves.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// The mesh identity, if the proxy has one.
    pub fn mtls(&self) -> Option<&Arc<Mtls>> {
        self.mtls.get()
    }

    /// Installs the mesh identity (once).
    pub fn set_mtls(&self, mtls: Arc<Mtls>) {
        let _ = self.mtls.set(mtls);
    }

    /// Marks the proxy ready.
    pub fn set_ready(&self) {
        self.ready.store(true, Ordering::Release);
    }
}
