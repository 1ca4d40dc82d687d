//! The long-poll loop: keeps the proxy's snapshot equal to the control plane's latest
//! configuration for this workload, registering again when the control plane forgot us.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{ControlClient, POLL_WAIT};
use crate::snapshot::Snapshot;
use crate::state::ProxyState;

/// Keeps the proxy's snapshot in sync with the control plane until `stop`.
pub async fn sync(
    control: Arc<ControlClient>,
    state: Arc<ProxyState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures = 0u32;
    loop {
        let version = state.store.load().version.clone();
        let polled = tokio::select! {
            r = control.poll(Some(&version), POLL_WAIT) => r,
            _ = stop.changed() => break,
        };
        match polled {
            Ok(config) => {
                if failures > 0 {
                    tracing::info!("Control plane reachable again; configuration resynced.");
                }
                failures = 0;
                if config.version != version {
                    let v = config.version.clone();
                    state.store.store(
                        Snapshot::new(config.version, config.table, config.registry)
                            .with_security(config.security),
                    );
                    tracing::info!(version = %v, "Configuration updated.");
                }
                continue;
            }
            // The control plane does not know this workload (it restarted): register again.
            Err(error) if error.is_not_found() => {
                tracing::info!(
                    "The control plane lost this workload (restarted?); registering again."
                );
                if let Err(error) = control.register().await {
                    tracing::warn!(%error, "Registration failed.");
                }
            }
            Err(error) => {
                if failures == 0 {
                    tracing::warn!(%error, "Control plane unreachable; serving with the last configuration.");
                }
                failures += 1;
            }
        }
        let pause = Duration::from_millis(200u64.saturating_mul(1 << failures.min(4)));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            _ = stop.changed() => break,
        }
    }
    control.deregister().await;
}
