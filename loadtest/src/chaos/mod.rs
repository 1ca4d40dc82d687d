//! The chaos-experiment runner behind the `chaos` binary.
//!
//! Experiments use the Chaos Toolkit shape (title, steady-state hypothesis, method,
//! rollbacks) with `http` and `process` providers plus native ones for this suite: fault
//! leases through the mesh control plane, workload kills, mesh configuration, and load from
//! the load generator ([`crate::load`]) with its steady-state window as typed tolerances. A run writes a
//! Chaos Toolkit style `journal.json` and a self-contained HTML/Markdown report; while it
//! runs, its progress shows on the control plane's dashboard ([`progress`]).

pub mod control;
pub mod experiment;
pub mod jsonpath;
pub mod progress;
pub mod providers;
pub mod report;
pub mod runner;
pub mod time;
pub mod tolerance;

use std::sync::Arc;

use tokio::sync::watch;

pub use experiment::{Experiment, ExperimentError};
pub use runner::{Options, run};

/// A cancellation flag shared by the runner and whoever can interrupt it (Ctrl-C, tests).
#[derive(Clone, Debug)]
pub struct Cancel {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Cancel {
    fn default() -> Self {
        Self::new()
    }
}

impl Cancel {
    pub fn new() -> Self {
        Cancel {
            tx: Arc::new(watch::channel(false).0),
        }
    }

    /// Asks the run to stop; rollbacks still follow per the rollback strategy.
    pub fn cancel(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_cancelled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once `cancel` has been called.
    pub async fn cancelled(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail early.
        let _ = rx.wait_for(|c| *c).await;
    }
}
