//! Circuit breaking from `DestinationRule.trafficPolicy.connectionPool`.
//!
//! With HTTP/1.1 every request in flight holds one upstream connection, so
//! `tcp.maxConnections` bounds the requests in flight to a cluster. A request over that
//! bound waits in a queue of at most `http.http1MaxPendingRequests`; when the queue is
//! full too, it fails at once with 503 and flag `UO`. This is the behaviour the Istio
//! circuit-breaking task shows with `maxConnections: 1` and `http1MaxPendingRequests: 1`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Istio's "unlimited": 2^32 - 1.
pub const UNLIMITED: u32 = u32::MAX;

/// Limits of one cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests in flight (one HTTP/1.1 connection each).
    pub max_connections: u32,
    /// Requests allowed to wait for a connection.
    pub max_pending: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: UNLIMITED,
            max_pending: UNLIMITED,
        }
    }
}

/// The pool was full and so was its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("upstream connection pool overflow")]
pub struct Overflow;

/// Admission control of one cluster.
#[derive(Debug)]
pub struct Breaker {
    limits: Limits,
    slots: Arc<Semaphore>,
    pending: AtomicU32,
}

/// Holds one in-flight slot; released on drop.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl Breaker {
    /// A breaker with `limits`.
    pub fn new(limits: Limits) -> Self {
        let permits = (limits.max_connections as usize).min(Semaphore::MAX_PERMITS);
        Self {
            limits,
            slots: Arc::new(Semaphore::new(permits)),
            pending: AtomicU32::new(0),
        }
    }

    /// The configured limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Requests waiting for a slot right now.
    pub fn pending(&self) -> u32 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Takes a slot, waiting in the pending queue if allowed, or fails with [`Overflow`].
    pub async fn admit(&self) -> Result<Slot, Overflow> {
        if self.limits.max_connections == UNLIMITED {
            return Ok(Slot(None));
        }
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return Ok(Slot(Some(p)));
        }
        // Reserve a place in the queue, or overflow.
        let reserved = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limits.max_pending).then_some(n + 1)
            });
        if reserved.is_err() {
            return Err(Overflow);
        }
        let permit = self.slots.clone().acquire_owned().await;
        self.pending.fetch_sub(1, Ordering::AcqRel);
        permit.map(|p| Slot(Some(p))).map_err(|_| Overflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_in_flight_one_pending_then_overflow() {
        let b = Arc::new(Breaker::new(Limits {
            max_connections: 1,
            max_pending: 1,
        }));
        let first = b.admit().await.unwrap();
        let b2 = b.clone();
        let waiting = tokio::spawn(async move { b2.admit().await.map(|_| ()) });
        while b.pending() == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(b.admit().await.unwrap_err(), Overflow, "queue full: 503 UO");
        drop(first);
        waiting.await.unwrap().unwrap();
        assert_eq!(b.pending(), 0);
    }

    #[tokio::test]
    async fn unlimited_by_default() {
        let b = Breaker::new(Limits::default());
        let slots: Vec<_> = (0..1000).map(|_| b.admit()).collect();
        for s in slots {
            s.await.unwrap();
        }
    }
}
