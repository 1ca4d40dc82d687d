//! Versions and per-workload configuration.
//!
//! One global version counts every change proxies care about (configuration, registry
//! membership, faults). Long polls wait on a `watch` channel carrying it and, when it
//! moves, get the table compiled for their workload with the fault routes injected and
//! the registry built from the registered workloads.

use mesh_api::compile::now_ms;
use mesh_api::{MeshConfig, ProxyScope, RouteTable, compile};
use tokio::sync::watch;

use crate::faults::Faults;

/// The version counter and its subscribers.
#[derive(Debug)]
pub struct Hub {
    version: watch::Sender<u64>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// Starts counting at the start time in milliseconds since the Unix epoch, not at 1:
    /// after a restart of the control plane a proxy may still hold a version of the
    /// previous run, and a counter restarting at 1 would soon reach that same number with
    /// different content, leaving the proxy waiting on a configuration it does not have.
    /// Starting above anything the previous run can have reached rules that out.
    pub fn new() -> Self {
        Self {
            version: watch::Sender::new(now_ms().max(1)),
        }
    }

    /// The version in force.
    pub fn current(&self) -> u64 {
        *self.version.borrow()
    }

    /// Moves to the next version and wakes every waiting poll; returns the new version.
    pub fn bump(&self) -> u64 {
        let mut next = 0;
        self.version.send_modify(|v| {
            *v += 1;
            next = *v;
        });
        next
    }

    /// A receiver for long polls.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

/// Compiles the table of one proxy: routes for its scope plus the fault leases.
pub fn compile_for(config: &MeshConfig, faults: &Faults, scope: &ProxyScope) -> RouteTable {
    let mut table = compile(config, scope);
    faults.inject(&mut table, !scope.gateway);
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn bump_wakes_subscribers() {
        let hub = Hub::new();
        let mut rx = hub.subscribe();
        let first = hub.current();
        assert!(
            first > 1_700_000_000_000,
            "starts at the start time: {first}"
        );
        assert_eq!(hub.bump(), first + 1);
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), first + 1);
    }
}
