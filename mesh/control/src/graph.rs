//! The live service graph of the dashboard: the control plane reads every registered
//! proxy's Istio metrics from its admin listener once a second (only while someone looks
//! at the graph), keeps a few seconds of samples per proxy, and turns counter deltas into
//! per-edge request rates, error rates, p99 latencies from the histogram buckets, mTLS
//! and each version's share of a service's traffic.
//!
//! Edges come from the caller's proxy (`reporter="source"`), whose series name both
//! ends; whether an edge runs over mTLS comes from the callee's proxy
//! (`reporter="destination"`, `connection_security_policy`), matched by the caller's
//! SPIFFE principal.
//!
//! * [`exposition`]: the Prometheus text format, just enough of it.
//! * [`scrape`]: one bounded GET of a proxy's `/stats/prometheus`.

pub mod exposition;
pub mod scrape;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use mesh_api::wire::{Graph, GraphEdge, GraphNode, Health, Mode, ScrapeProblem, WorkloadView};
use tokio::time::Instant;

/// How often proxies are scraped while the graph is watched.
pub const SCRAPE_INTERVAL: Duration = Duration::from_secs(1);
/// How long one proxy may take to answer.
pub const SCRAPE_TIMEOUT: Duration = Duration::from_millis(800);
/// At most this many proxies are scraped (the first by name); a larger mesh shows the
/// edges of those.
pub const MAX_SCRAPED: usize = 64;
/// The rates cover about this much time: long enough to be steady, short enough that a
/// routing change shows within seconds.
pub const WINDOW: Duration = Duration::from_secs(5);
/// Scraping stops when nobody asked for the graph for this long.
pub const IDLE_AFTER: Duration = Duration::from_secs(30);

/// The counters of one series family of the caller's proxy, summed over response codes.
#[derive(Debug, Clone, Default, PartialEq)]
struct EdgeCounters {
    requests: f64,
    errors: f64,
    /// Cumulative duration histogram: (upper bound in ms, count), sorted by bound.
    buckets: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EdgeKey {
    source: String,
    service: String,
    destination: String,
    version: String,
}

/// What one scrape of one proxy says.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    at: Instant,
    edges: BTreeMap<EdgeKey, EdgeCounters>,
    /// Requests the proxy received over mTLS, by the caller's principal.
    mtls_from: BTreeMap<String, f64>,
    /// The principal this proxy calls with (from its own source-reported series).
    principal: Option<String>,
}

fn is_error(code: &str) -> bool {
    code.starts_with('5') || code == "0"
}

/// Reads the Istio series of one metrics page into a sample taken at `at`.
pub fn sample_of(text: &str, at: Instant) -> Sample {
    let mut sample = Sample {
        at,
        edges: BTreeMap::new(),
        mtls_from: BTreeMap::new(),
        principal: None,
    };
    for s in exposition::samples(text, "istio_request") {
        let total = s.name == "istio_requests_total";
        let bucket = s.name == "istio_request_duration_milliseconds_bucket";
        if !total && !bucket {
            continue;
        }
        match s.label("reporter") {
            Some("source") => {
                let key = EdgeKey {
                    source: s.label("source_workload").unwrap_or("unknown").to_owned(),
                    service: s
                        .label("destination_service_name")
                        .unwrap_or("unknown")
                        .to_owned(),
                    destination: s
                        .label("destination_workload")
                        .unwrap_or("unknown")
                        .to_owned(),
                    version: s
                        .label("destination_version")
                        .unwrap_or("unknown")
                        .to_owned(),
                };
                if sample.principal.is_none()
                    && let Some(p) = s.label("source_principal").filter(|p| *p != "unknown")
                {
                    sample.principal = Some(p.to_owned());
                }
                let counters = sample.edges.entry(key).or_default();
                if total {
                    counters.requests += s.value;
                    if is_error(s.label("response_code").unwrap_or("0")) {
                        counters.errors += s.value;
                    }
                } else if let Some(le) = s.label("le").and_then(bound) {
                    match counters.buckets.iter_mut().find(|(b, _)| *b == le) {
                        Some((_, count)) => *count += s.value,
                        None => counters.buckets.push((le, s.value)),
                    }
                }
            }
            Some("destination")
                if total && s.label("connection_security_policy") == Some("mutual_tls") =>
            {
                let from = s.label("source_principal").unwrap_or("unknown").to_owned();
                *sample.mtls_from.entry(from).or_default() += s.value;
            }
            _ => {}
        }
    }
    for counters in sample.edges.values_mut() {
        counters.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    sample
}

fn bound(le: &str) -> Option<f64> {
    match le {
        "+Inf" => Some(f64::INFINITY),
        v => v.parse().ok(),
    }
}

/// A counter's growth from `old` to `new`; a smaller new value means the proxy restarted
/// and counted from zero since.
fn growth(old: f64, new: f64) -> f64 {
    if new >= old { new - old } else { new }
}

/// The `q` quantile of a cumulative histogram's growth, interpolated inside the bucket
/// like Prometheus' `histogram_quantile`; the largest finite bound when it falls in `+Inf`.
fn quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut previous = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(previous.0);
            }
            let inside = count - previous.1;
            let fraction = if inside > 0.0 {
                (rank - previous.1) / inside
            } else {
                1.0
            };
            return Some(previous.0 + (le - previous.0) * fraction);
        }
        previous = (le, count);
    }
    Some(previous.0)
}

/// The growth of `new` over `old`, bucket by bucket (a bucket new since counts whole).
fn bucket_growth(old: Option<&EdgeCounters>, new: &EdgeCounters) -> Vec<(f64, f64)> {
    new.buckets
        .iter()
        .map(|&(le, count)| {
            let before = old
                .and_then(|o| o.buckets.iter().find(|(b, _)| *b == le))
                .map_or(0.0, |(_, c)| *c);
            (le, growth(before, count))
        })
        .collect()
}

/// The samples of every scraped proxy, and who asked for the graph last.
#[derive(Debug, Default)]
pub struct Scrapes {
    samples: HashMap<String, VecDeque<Sample>>,
    problems: BTreeMap<String, String>,
    wanted: Option<Instant>,
}

impl Scrapes {
    /// No samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Notes that someone looks at the graph (scraping runs for [`IDLE_AFTER`] more).
    pub fn want(&mut self, now: Instant) {
        self.wanted = Some(now);
    }

    /// Whether the graph was asked for recently.
    pub fn wanted(&self, now: Instant) -> bool {
        self.wanted
            .is_some_and(|at| now.saturating_duration_since(at) < IDLE_AFTER)
    }

    /// Forgets every sample (scraping paused: old samples would show old rates later).
    pub fn pause(&mut self) {
        self.samples.clear();
        self.problems.clear();
    }

    /// Records a scrape of `workload`: its page, or why there is none (its samples are
    /// dropped then, so its edges show no stale rates).
    pub fn record(&mut self, workload: &str, page: Result<Sample, String>) {
        match page {
            Ok(sample) => {
                self.problems.remove(workload);
                let list = self.samples.entry(workload.to_owned()).or_default();
                let latest = sample.at;
                list.push_back(sample);
                while list.len() > 2
                    && list
                        .get(1)
                        .is_some_and(|s| latest.saturating_duration_since(s.at) >= WINDOW)
                {
                    list.pop_front();
                }
            }
            Err(error) => {
                self.samples.remove(workload);
                self.problems.insert(workload.to_owned(), error);
            }
        }
    }

    /// Drops what is kept for workloads no longer registered.
    pub fn retain(&mut self, registered: &[String]) {
        self.samples.retain(|w, _| registered.contains(w));
        self.problems.retain(|w, _| registered.contains(w));
    }

    /// The graph over the registered `workloads`, at `at_ms` (Unix epoch).
    pub fn graph(&self, workloads: &[WorkloadView], at_ms: u64) -> Graph {
        let mut edges = Vec::new();
        let mut window = Duration::ZERO;
        for list in self.samples.values() {
            let (Some(old), Some(new)) = (list.front(), list.back()) else {
                continue;
            };
            let span = new.at.saturating_duration_since(old.at);
            if span.is_zero() {
                continue;
            }
            window = window.max(span);
            let seconds = span.as_secs_f64();
            for (key, counters) in &new.edges {
                let before = old.edges.get(key);
                let requests = growth(before.map_or(0.0, |b| b.requests), counters.requests);
                let errors = growth(before.map_or(0.0, |b| b.errors), counters.errors);
                let rps = requests / seconds;
                let error_rate = if requests > 0.0 {
                    (errors / requests).min(1.0)
                } else {
                    0.0
                };
                let p99_ms = quantile(0.99, &bucket_growth(before, counters));
                let mtls = self.mtls(new.principal.as_deref(), &key.destination, rps);
                edges.push(GraphEdge {
                    source: key.source.clone(),
                    service: key.service.clone(),
                    destination: key.destination.clone(),
                    version: key.version.clone(),
                    rps: round(rps, 2),
                    error_rate: round(error_rate, 4),
                    p99_ms: p99_ms.map(|p| round(p, 1)),
                    share: 0.0,
                    mtls,
                    health: Health::of(rps, error_rate),
                });
            }
        }
        // Shares: each destination's part of what its caller sent to the service.
        let mut per_service: BTreeMap<(String, String), f64> = BTreeMap::new();
        for e in &edges {
            *per_service
                .entry((e.source.clone(), e.service.clone()))
                .or_default() += e.rps;
        }
        for e in &mut edges {
            let total = per_service
                .get(&(e.source.clone(), e.service.clone()))
                .copied()
                .unwrap_or(0.0);
            e.share = if total > 0.0 {
                round(e.rps / total, 3)
            } else {
                0.0
            };
        }
        edges.sort_by(|a, b| {
            (&a.source, &a.service, &a.destination).cmp(&(&b.source, &b.service, &b.destination))
        });
        Graph {
            at_ms,
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            nodes: nodes(workloads, &edges),
            edges,
            unreachable: self
                .problems
                .iter()
                .map(|(workload, error)| ScrapeProblem {
                    workload: workload.clone(),
                    error: error.clone(),
                })
                .collect(),
        }
    }

    /// Whether `destination`'s proxy received `principal`'s calls over mTLS in its window;
    /// unknown when nothing flowed or the destination's proxy is not read.
    fn mtls(&self, principal: Option<&str>, destination: &str, rps: f64) -> Option<bool> {
        let list = self.samples.get(destination)?;
        let (old, new) = (list.front()?, list.back()?);
        if rps <= 0.0 || new.at == old.at {
            return None;
        }
        let principal = principal?;
        let count = |s: &Sample| s.mtls_from.get(principal).copied().unwrap_or(0.0);
        Some(growth(count(old), count(new)) > 0.0)
    }
}

fn round(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Every registered workload, and every destination reported but not registered.
fn nodes(workloads: &[WorkloadView], edges: &[GraphEdge]) -> Vec<GraphNode> {
    let mut nodes: BTreeMap<String, GraphNode> = workloads
        .iter()
        .map(|w| {
            let spec = &w.spec;
            let app = spec
                .labels
                .get("app")
                .or(spec.service.as_ref())
                .unwrap_or(&spec.name)
                .clone();
            let node = GraphNode {
                workload: spec.name.clone(),
                app,
                version: spec.labels.get("version").cloned(),
                mode: spec.mode,
                rps: 0.0,
                registered: true,
            };
            (spec.name.clone(), node)
        })
        .collect();
    for e in edges.iter().filter(|e| e.destination != "unknown") {
        nodes
            .entry(e.destination.clone())
            .or_insert_with(|| GraphNode {
                workload: e.destination.clone(),
                app: e.service.clone(),
                version: (e.version != "unknown").then(|| e.version.clone()),
                mode: Mode::Sidecar,
                rps: 0.0,
                registered: false,
            });
    }
    for node in nodes.values_mut() {
        let rps: f64 = edges
            .iter()
            .filter(|e| match node.mode {
                Mode::Gateway => e.source == node.workload,
                Mode::Sidecar => e.destination == node.workload,
            })
            .map(|e| e.rps)
            .sum();
        node.rps = round(rps, 2);
    }
    nodes.into_values().collect()
}

/// The proxies to scrape: registered workloads that announced an admin address, the
/// first [`MAX_SCRAPED`] by name.
pub fn targets(workloads: &[WorkloadView]) -> Vec<(String, SocketAddr)> {
    let mut targets: Vec<(String, SocketAddr)> = workloads
        .iter()
        .filter_map(|w| Some((w.spec.name.clone(), w.spec.admin?)))
        .collect();
    targets.sort();
    targets.truncate(MAX_SCRAPED);
    targets
}

#[cfg(test)]
mod tests;
