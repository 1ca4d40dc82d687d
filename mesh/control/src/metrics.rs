//! The control plane's own Prometheus metrics.
//!
//! Counters move as things happen; gauges (connected proxies, version, faults) are set
//! from the live state right before each scrape, so they can never drift.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Content type of the exposition (OpenMetrics text, which Prometheus scrapes natively).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Compile times are sub-millisecond for Bookinfo; the top buckets catch pathological sets.
const PUSH_BUCKETS: [f64; 12] = [
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5,
];

/// Live values sampled at scrape time.
#[derive(Debug, Clone, Copy, Default)]
pub struct Gauges {
    /// Proxies registered and seen recently.
    pub connected_proxies: i64,
    /// Configuration version.
    pub config_version: i64,
    /// Active fault leases.
    pub active_faults: i64,
}

/// All metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pushes: Counter,
    push_duration: Histogram,
    config_errors: Counter,
    connected: Gauge,
    version: Gauge,
    faults: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers everything.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let pushes = Counter::default();
        let push_duration = Histogram::new(PUSH_BUCKETS);
        let config_errors = Counter::default();
        let connected = Gauge::default();
        let version = Gauge::default();
        let faults = Gauge::default();
        registry.register(
            "mesh_control_pushes",
            "Configurations sent to proxies",
            pushes.clone(),
        );
        registry.register(
            "mesh_control_push_duration_seconds",
            "Time to compile one proxy's configuration",
            push_duration.clone(),
        );
        registry.register(
            "mesh_control_config_errors",
            "Configuration changes rejected by validation",
            config_errors.clone(),
        );
        registry.register(
            "mesh_control_connected_proxies",
            "Proxies registered and seen within 15 s",
            connected.clone(),
        );
        registry.register(
            "mesh_control_config_version",
            "Version of the configuration in force",
            version.clone(),
        );
        registry.register(
            "mesh_control_active_faults",
            "Fault leases in force",
            faults.clone(),
        );
        Self {
            registry,
            pushes,
            push_duration,
            config_errors,
            connected,
            version,
            faults,
        }
    }

    /// One configuration sent, compiled in `seconds`.
    pub fn pushed(&self, seconds: f64) {
        self.pushes.inc();
        self.push_duration.observe(seconds);
    }

    /// One change rejected.
    pub fn config_error(&self) {
        self.config_errors.inc();
    }

    /// The exposition text with the gauges set to `gauges`.
    pub fn encode(&self, gauges: Gauges) -> Result<String, std::fmt::Error> {
        self.connected.set(gauges.connected_proxies);
        self.version.set(gauges.config_version);
        self.faults.set(gauges.active_faults);
        let mut out = String::with_capacity(2048);
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposes_the_documented_names() {
        let m = Metrics::new();
        m.pushed(0.001);
        m.config_error();
        let text = m
            .encode(Gauges {
                connected_proxies: 3,
                config_version: 7,
                active_faults: 1,
            })
            .unwrap();
        for line in [
            "mesh_control_pushes_total 1",
            "mesh_control_push_duration_seconds_count 1",
            "mesh_control_config_errors_total 1",
            "mesh_control_connected_proxies 3",
            "mesh_control_config_version 7",
            "mesh_control_active_faults 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
