//! The control-plane client: how a proxy joins the mesh and keeps its configuration.
//!
//! At start the proxy registers its workload (name, service, labels, the address its
//! service traffic should come to), then long-polls `/api/v1/proxy-config` with the
//! version it holds; each answer is a new snapshot, swapped in atomically. When the
//! control plane is unreachable the proxy keeps serving with the last configuration and
//! retries with backoff; when it comes back (even restarted, with no memory of us) the
//! proxy registers again and resyncs. See `docs/control-plane-api.md`.

use std::sync::Arc;
use std::time::Duration;

use mesh_api::wire::{CertificateRequest, ProxyConfig, WorkloadSpec};
use mesh_client::ClientError;
use tokio::sync::watch;

use crate::snapshot::Snapshot;
use crate::state::ProxyState;

/// How long one long poll may wait. Shorter than the control plane's 15 s liveness window,
/// so every poll doubles as a heartbeat.
pub const POLL_WAIT: Duration = Duration::from_secs(10);

/// Limit of one call besides a long poll's wait: the control plane answers at once or is
/// treated as unreachable, and the proxy keeps serving with what it has.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy tells the control plane about itself (the body of
/// `POST /api/v1/workloads`).
pub type Registration = WorkloadSpec;

/// The control plane as one workload's proxy sees it: the typed client plus who we are.
#[derive(Debug, Clone)]
pub struct ControlClient {
    api: mesh_client::ControlClient,
    registration: Registration,
}

impl ControlClient {
    /// A client for the control plane at `base` (e.g. `http://127.0.0.1:15010`).
    pub fn new(base: &str, registration: Registration) -> Result<Self, ClientError> {
        Ok(Self {
            api: mesh_client::ControlClient::new(base)?.with_timeout(CALL_TIMEOUT),
            registration,
        })
    }

    /// Registers the workload.
    pub async fn register(&self) -> Result<(), ClientError> {
        self.api.register(&self.registration).await.map(|_| ())
    }

    /// Has the CA sign `csr_pem`; returns the chain (leaf first, root last) as PEM.
    pub async fn certificate(&self, csr_pem: &str) -> Result<Vec<String>, ClientError> {
        let request = CertificateRequest {
            workload: self.registration.name.clone(),
            csr: csr_pem.to_owned(),
            ttl_seconds: None,
        };
        let issued = self.api.certificate(&request).await?;
        if issued.chain.is_empty() {
            return Err(ClientError::BadAnswer {
                url: self.api.url("api/v1/certificates", &[]),
                reason: "empty certificate chain".to_owned(),
            });
        }
        Ok(issued.chain)
    }

    /// The registration this client was made with.
    pub fn registration(&self) -> &Registration {
        &self.registration
    }

    /// Deregisters the workload (best effort, on shutdown).
    pub async fn deregister(&self) {
        let _ = self.api.deregister(&self.registration.name).await;
    }

    /// Fetches the configuration, waiting up to `wait` for one newer than `version`.
    pub async fn poll(
        &self,
        version: Option<&str>,
        wait: Duration,
    ) -> Result<ProxyConfig, ClientError> {
        self.api
            .proxy_config(&self.registration.name, version, wait)
            .await
    }

    /// Registers and fetches the first configuration, retrying until it succeeds or
    /// `stop` turns true.
    pub async fn first_config(&self, stop: &mut watch::Receiver<bool>) -> Option<ProxyConfig> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                self.register().await?;
                self.poll(None, Duration::ZERO).await
            };
            match attempt.await {
                Ok(config) => return Some(config),
                Err(error) => tracing::warn!(%error, "Waiting for the control plane."),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = stop.changed() => return None,
            }
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}

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
