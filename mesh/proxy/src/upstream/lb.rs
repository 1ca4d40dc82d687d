//! Endpoint selection: Istio's load-balancing algorithms over the endpoints of one
//! cluster (a service, or one subset of it), skipping endpoints that outlier detection
//! has ejected.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

use rand::Rng;
use tokio::time::Instant;

use crate::upstream::outlier::Health;

/// What metrics and mTLS need to know about an endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointMeta {
    /// Workload name (`reviews-v2`), or empty.
    pub workload: String,
    /// `app` label.
    pub app: String,
    /// `version` label.
    pub version: String,
    /// Istio's canonical service (`service.istio.io/canonical-name`, ..., `app`), or empty.
    pub canonical_service: String,
    /// Istio's canonical revision (`service.istio.io/canonical-revision`, ...,
    /// `version`), or empty.
    pub canonical_revision: String,
    /// Whether a sidecar of ours fronts the endpoint.
    pub sidecar: bool,
}

/// One upstream address and what we track about it.
#[derive(Debug)]
pub struct Endpoint {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Who is there.
    pub meta: EndpointMeta,
    /// Requests in flight to this endpoint (for LEAST_REQUEST).
    active: AtomicU32,
    /// Passive health (outlier detection) state.
    pub health: Health,
}

impl Endpoint {
    /// A fresh, healthy endpoint.
    pub fn new(addr: SocketAddr) -> Arc<Self> {
        Self::with_meta(addr, EndpointMeta::default())
    }

    /// A fresh, healthy endpoint with metadata.
    pub fn with_meta(addr: SocketAddr, meta: EndpointMeta) -> Arc<Self> {
        Arc::new(Self {
            addr,
            meta,
            active: AtomicU32::new(0),
            health: Health::default(),
        })
    }

    /// Requests in flight right now.
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Marks a request as started; the guard marks it finished when dropped.
    pub fn start_request(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveGuard(self.clone())
    }
}

/// Decrements an endpoint's in-flight count on drop.
#[derive(Debug)]
pub struct ActiveGuard(Arc<Endpoint>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The algorithm, from `DestinationRule.trafficPolicy.loadBalancer.simple`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// Each endpoint in turn.
    RoundRobin,
    /// Power of two choices on in-flight requests: Istio's default.
    LeastRequest,
    /// Uniformly at random.
    Random,
}

/// Picks endpoints for one cluster.
#[derive(Debug)]
pub struct Balancer {
    algorithm: Algorithm,
    next: AtomicUsize,
}

impl Balancer {
    /// A balancer using `algorithm`.
    pub fn new(algorithm: Algorithm) -> Self {
        Self {
            algorithm,
            next: AtomicUsize::new(0),
        }
    }

    /// Picks an available endpoint, avoiding those in `tried` when another is
    /// available (Istio's retry "previous hosts" predicate). `None` means no endpoint
    /// is available: the caller answers 503 with flag `UH`.
    pub fn pick(
        &self,
        endpoints: &[Arc<Endpoint>],
        tried: &[SocketAddr],
        now: Instant,
    ) -> Option<Arc<Endpoint>> {
        let available = |e: &Arc<Endpoint>| e.health.is_available(now);
        let fresh = |e: &Arc<Endpoint>| available(e) && !tried.contains(&e.addr);
        // The common case, every endpoint healthy and untried, chooses without a list.
        if endpoints.iter().all(fresh) {
            return self.choose(endpoints).cloned();
        }
        let mut pool: Vec<&Arc<Endpoint>> = endpoints.iter().filter(|e| fresh(e)).collect();
        if pool.is_empty() {
            pool = endpoints.iter().filter(|e| available(e)).collect();
        }
        self.choose(&pool).map(|e| (*e).clone())
    }

    /// One of `pool` by the algorithm; `None` if it is empty.
    fn choose<'a, E: AsRef<Endpoint>>(&self, pool: &'a [E]) -> Option<&'a E> {
        let n = pool.len();
        if n == 0 {
            return None;
        }
        let at = match self.algorithm {
            Algorithm::RoundRobin => self.next.fetch_add(1, Ordering::Relaxed) % n,
            Algorithm::Random => rand::rng().random_range(0..n),
            Algorithm::LeastRequest if n == 1 => 0,
            Algorithm::LeastRequest => {
                let mut rng = rand::rng();
                let (a, b) = (rng.random_range(0..n), rng.random_range(0..n));
                if pool[b].as_ref().active() < pool[a].as_ref().active() {
                    b
                } else {
                    a
                }
            }
        };
        pool.get(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eps(n: u16) -> Vec<Arc<Endpoint>> {
        (0..n)
            .map(|i| Endpoint::new(SocketAddr::from(([127, 0, 0, 1], 1000 + i))))
            .collect()
    }

    #[test]
    fn round_robin_cycles() {
        let e = eps(3);
        let b = Balancer::new(Algorithm::RoundRobin);
        let now = Instant::now();
        let picks: Vec<u16> = (0..6)
            .map(|_| b.pick(&e, &[], now).unwrap().addr.port())
            .collect();
        assert_eq!(picks, [1000, 1001, 1002, 1000, 1001, 1002]);
    }

    #[test]
    fn least_request_prefers_idle_endpoints() {
        let e = eps(2);
        let _busy: Vec<_> = (0..5).map(|_| e[0].start_request()).collect();
        let b = Balancer::new(Algorithm::LeastRequest);
        let now = Instant::now();
        let idle = (0..200)
            .filter(|_| b.pick(&e, &[], now).unwrap().addr.port() == 1001)
            .count();
        // P2C picks the busy one only when both draws land on it (1 in 4).
        assert!(idle > 120, "{idle}");
        drop(_busy);
        assert_eq!(e[0].active(), 0);
    }

    #[test]
    fn avoids_previous_hosts_when_possible() {
        let e = eps(2);
        let b = Balancer::new(Algorithm::Random);
        let now = Instant::now();
        for _ in 0..50 {
            assert_eq!(b.pick(&e, &[e[0].addr], now).unwrap().addr, e[1].addr);
        }
        // With every host tried, any host is better than none.
        assert!(b.pick(&e, &[e[0].addr, e[1].addr], now).is_some());
        assert!(b.pick(&[], &[], now).is_none());
    }
}
