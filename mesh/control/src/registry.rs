//! Registered workloads: who they are, where their traffic goes, when they were last seen.
//!
//! Proxies register when they start and then poll for configuration; every poll is a
//! heartbeat. A workload neither polling nor seen for [`WORKLOAD_TTL`] is dropped, so the
//! endpoints pushed to the other proxies follow workloads coming and going. Time is
//! tokio's clock, which tests can pause and advance.

use std::collections::BTreeMap;
use std::time::Duration;

use mesh_api::compile::now_ms;
use mesh_api::wire::{ProxyStatus, SyncStatus, TargetGroup, WorkloadSpec, WorkloadView};
use mesh_api::{EndpointRecord, Registry, ServiceRecord};
use tokio::time::Instant;

/// A workload not seen for this long is dropped from the registry.
pub const WORKLOAD_TTL: Duration = Duration::from_secs(15);

/// Port services listen on when a workload does not say (Bookinfo's 9080).
pub const DEFAULT_SERVICE_PORT: u16 = 9080;

/// A registered workload.
#[derive(Debug, Clone)]
struct Entry {
    spec: WorkloadSpec,
    last_seen: Instant,
    last_seen_ms: u64,
    registered_at_ms: u64,
    /// The configuration version the proxy said it holds on its last poll.
    acked: Option<String>,
    /// Long polls in flight: a proxy waiting on us is alive.
    polls: usize,
}

impl Entry {
    /// When the proxy was last in contact (ms since the Unix epoch) and how long ago that
    /// is (ms). A proxy holding a poll open is in contact now: without this, the
    /// dashboard and `proxy-status` would show a live proxy as seen seconds ago, for as
    /// long as its long poll lasts.
    fn seen(&self, now: Instant) -> (u64, u64) {
        if self.polls > 0 {
            (now_ms(), 0)
        } else {
            let age = u64::try_from(now.duration_since(self.last_seen).as_millis());
            (self.last_seen_ms, age.unwrap_or(u64::MAX))
        }
    }
}

/// All registered workloads.
#[derive(Debug, Default)]
pub struct Workloads {
    entries: BTreeMap<String, Entry>,
}

impl Workloads {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers or refreshes a workload; true when what others see changed.
    pub fn register(&mut self, spec: WorkloadSpec, now: Instant) -> bool {
        let now_wall = now_ms();
        match self.entries.get_mut(&spec.name) {
            Some(entry) => {
                entry.last_seen = now;
                entry.last_seen_ms = now_wall;
                if entry.spec == spec {
                    return false;
                }
                entry.spec = spec;
                true
            }
            None => {
                self.entries.insert(
                    spec.name.clone(),
                    Entry {
                        spec,
                        last_seen: now,
                        last_seen_ms: now_wall,
                        registered_at_ms: now_wall,
                        acked: None,
                        polls: 0,
                    },
                );
                true
            }
        }
    }

    /// Removes a workload; true when it existed.
    pub fn deregister(&mut self, name: &str) -> bool {
        self.entries.remove(name).is_some()
    }

    /// The registration of `name`.
    pub fn get(&self, name: &str) -> Option<&WorkloadSpec> {
        self.entries.get(name).map(|e| &e.spec)
    }

    /// A poll starts: heartbeat, record the version the proxy holds, count it in flight.
    /// False when the workload is unknown.
    pub fn poll_started(&mut self, name: &str, held: Option<&str>, now: Instant) -> bool {
        let Some(entry) = self.entries.get_mut(name) else {
            return false;
        };
        entry.last_seen = now;
        entry.last_seen_ms = now_ms();
        entry.acked = held.map(str::to_owned);
        entry.polls += 1;
        true
    }

    /// A poll ended (answered or abandoned): heartbeat.
    pub fn poll_ended(&mut self, name: &str, now: Instant) {
        if let Some(entry) = self.entries.get_mut(name) {
            entry.polls = entry.polls.saturating_sub(1);
            entry.last_seen = now;
            entry.last_seen_ms = now_ms();
        }
    }

    /// Drops workloads silent for [`WORKLOAD_TTL`]; returns their names.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        let expired: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| e.polls == 0 && now.duration_since(e.last_seen) >= WORKLOAD_TTL)
            .map(|(name, _)| name.clone())
            .collect();
        for name in &expired {
            self.entries.remove(name);
        }
        expired
    }

    /// Workloads seen within [`WORKLOAD_TTL`] (or polling now).
    pub fn connected(&self, now: Instant) -> usize {
        self.entries
            .values()
            .filter(|e| e.polls > 0 || now.duration_since(e.last_seen) < WORKLOAD_TTL)
            .count()
    }

    /// Number of registered workloads.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when none is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every workload, by name.
    pub fn list(&self, now: Instant) -> Vec<WorkloadView> {
        self.entries
            .values()
            .map(|e| {
                let (last_seen_ms, age_ms) = e.seen(now);
                WorkloadView {
                    spec: e.spec.clone(),
                    last_seen_ms,
                    age_ms,
                    registered_at_ms: e.registered_at_ms,
                }
            })
            .collect()
    }

    /// Sync state of every proxy against version `latest`.
    pub fn status(&self, latest: &str) -> Vec<ProxyStatus> {
        self.entries
            .values()
            .map(|e| {
                let version = e.acked.clone().unwrap_or_default();
                ProxyStatus {
                    workload: e.spec.name.clone(),
                    mode: e.spec.mode,
                    status: if version == latest {
                        SyncStatus::Synced
                    } else {
                        SyncStatus::Stale
                    },
                    version,
                    latest: latest.to_owned(),
                    last_seen_ms: e.seen(Instant::now()).0,
                }
            })
            .collect()
    }

    /// The service registry proxies route with: one record per service with the
    /// addresses and labels of its workloads, plus the per-version services
    /// (`reviews-v2`) that Gateway API routes send to.
    pub fn registry(&self) -> Registry {
        let mut services: BTreeMap<(String, String), ServiceRecord> = BTreeMap::new();
        for entry in self.entries.values() {
            let spec = &entry.spec;
            let Some(service) = &spec.service else {
                continue;
            };
            let record = services
                .entry((spec.namespace.clone(), service.clone()))
                .or_insert_with(|| ServiceRecord {
                    name: service.clone(),
                    namespace: spec.namespace.clone(),
                    ports: Vec::new(),
                    endpoints: Vec::new(),
                });
            let ports = if spec.ports.is_empty() {
                vec![DEFAULT_SERVICE_PORT]
            } else {
                spec.ports.clone()
            };
            for port in ports {
                if !record.ports.contains(&port) {
                    record.ports.push(port);
                }
            }
            if let Some(address) = spec.address {
                record.endpoints.push(EndpointRecord {
                    address,
                    labels: spec.labels.clone(),
                    workload: Some(spec.name.clone()),
                    sidecar: spec.sidecar,
                    service_account: Some(spec.service_account.clone()),
                });
            }
        }
        let mut registry = Registry {
            services: services.into_values().collect(),
        };
        registry.add_version_services();
        registry
    }

    /// Where Prometheus scrapes every registered proxy, in its HTTP service discovery
    /// format: one group per proxy that said where its admin listener is, labelled with
    /// the workload's namespace, name, `app` and `version` and the proxy's mode. Because
    /// the list follows the registry, a workload restarted on other ports, or a new one,
    /// is scraped at its new address on Prometheus's next refresh.
    pub fn prometheus_targets(&self) -> Vec<TargetGroup> {
        self.entries
            .values()
            .filter_map(|e| {
                let spec = &e.spec;
                let admin = spec.admin?;
                let mut labels = BTreeMap::from([
                    (
                        "__metrics_path__".to_owned(),
                        "/stats/prometheus".to_owned(),
                    ),
                    ("namespace".to_owned(), spec.namespace.clone()),
                    ("workload".to_owned(), spec.name.clone()),
                    ("mesh_mode".to_owned(), spec.mode.as_str().to_owned()),
                ]);
                for key in ["app", "version"] {
                    if let Some(v) = spec.labels.get(key) {
                        labels.insert(key.to_owned(), v.clone());
                    }
                }
                Some(TargetGroup {
                    targets: vec![admin.to_string()],
                    labels,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, version: &str, port: u16) -> WorkloadSpec {
        serde_json::from_value(serde_json::json!({
            "name": name, "service": "reviews", "serviceAccount": "bookinfo-reviews",
            "labels": {"app": "reviews", "version": version},
            "address": format!("127.0.0.1:{port}"),
        }))
        .unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn silent_workloads_expire_but_polling_ones_stay() {
        let mut w = Workloads::new();
        let t0 = Instant::now();
        assert!(w.register(spec("reviews-v1", "v1", 1), t0));
        assert!(!w.register(spec("reviews-v1", "v1", 1), t0));
        assert!(w.register(spec("reviews-v2", "v2", 2), t0));
        assert!(w.poll_started("reviews-v2", Some("3"), t0));
        let later = t0 + Duration::from_secs(16);
        assert_eq!(w.expire(t0 + Duration::from_secs(14)), Vec::<String>::new());
        assert_eq!(w.expire(later), ["reviews-v1"]);
        assert_eq!(w.connected(later), 1);
        w.poll_ended("reviews-v2", later);
        assert!(w.expire(later + Duration::from_secs(14)).is_empty());
        assert_eq!(w.expire(later + Duration::from_secs(15)), ["reviews-v2"]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_proxy_holding_a_poll_open_is_seen_now() {
        let mut w = Workloads::new();
        let t0 = Instant::now();
        w.register(spec("reviews-v1", "v1", 1), t0);
        w.register(spec("reviews-v2", "v2", 2), t0);
        w.poll_started("reviews-v2", Some("3"), t0);
        let later = t0 + Duration::from_secs(9);
        let ages: Vec<u64> = w.list(later).iter().map(|v| v.age_ms).collect();
        assert_eq!(ages, [9000, 0]);
        w.poll_ended("reviews-v2", later);
        let ages: Vec<u64> = w
            .list(later + Duration::from_secs(2))
            .iter()
            .map(|v| v.age_ms)
            .collect();
        assert_eq!(ages, [11000, 2000]);
    }

    #[test]
    fn registry_groups_endpoints_by_service() {
        let mut w = Workloads::new();
        let now = Instant::now();
        w.register(spec("reviews-v1", "v1", 1), now);
        w.register(spec("reviews-v2", "v2", 2), now);
        let r = w.registry();
        let names: Vec<&str> = r.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["reviews", "reviews-v1", "reviews-v2"]);
        let s = r.service("reviews.default.svc.cluster.local").unwrap();
        assert_eq!(s.ports, [9080]);
        assert_eq!(s.endpoints.len(), 2);
        assert_eq!(s.endpoints[1].labels["version"], "v2");
        assert_eq!(s.endpoints[1].workload.as_deref(), Some("reviews-v2"));
        // Per-version services, as bookinfo-versions.yaml declares them.
        let v2 = r.service("reviews-v2.default.svc.cluster.local").unwrap();
        assert_eq!(v2.ports, [9080]);
        assert_eq!(v2.endpoints, [s.endpoints[1].clone()]);
    }

    #[test]
    fn prometheus_targets_list_proxies_that_name_their_admin_listener() {
        let mut w = Workloads::new();
        let now = Instant::now();
        let mut v1 = spec("reviews-v1", "v1", 1);
        v1.admin = Some("127.0.0.1:15100".parse().unwrap());
        w.register(v1, now);
        w.register(spec("reviews-v2", "v2", 2), now);
        let groups = w.prometheus_targets();
        assert_eq!(groups.len(), 1, "reviews-v2 did not say where its admin is");
        assert_eq!(groups[0].targets, ["127.0.0.1:15100"]);
        let labels: Vec<(&str, &str)> = groups[0]
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            labels,
            [
                ("__metrics_path__", "/stats/prometheus"),
                ("app", "reviews"),
                ("mesh_mode", "sidecar"),
                ("namespace", "default"),
                ("version", "v1"),
                ("workload", "reviews-v1"),
            ]
        );
    }

    #[test]
    fn names_are_checked() {
        let mut bad = spec("Reviews V1", "v1", 1);
        assert!(bad.validate().unwrap_err().to_string().starts_with("name:"));
        bad.name = "ok".into();
        bad.service_account = String::new();
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .starts_with("serviceAccount:")
        );
    }
}
