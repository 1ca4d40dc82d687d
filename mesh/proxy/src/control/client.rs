//! This workload's side of the control plane's API: who we are (the registration), the
//! credential that proves it (sent with every call), the typed client, and the calls a
//! proxy makes.

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use mesh_api::wire::{CertificateRequest, ProxyConfig, WorkloadSpec};
use mesh_client::{ClientError, Credential, Transport, TransportError};
use tokio::sync::watch;

use crate::http::body;
use crate::upstream::client::{UpstreamClient, client};

/// How long one long poll may wait. Shorter than the control plane's 15 s liveness window,
/// so every poll doubles as a heartbeat.
pub const POLL_WAIT: Duration = Duration::from_secs(10);

/// Limit of one call besides a long poll's wait: the control plane answers at once or is
/// treated as unreachable, and the proxy keeps serving with what it has.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// What the proxy tells the control plane about itself (the body of
/// `POST /api/v1/workloads`).
pub type Registration = WorkloadSpec;

/// The control plane's requests ride the proxy's own pooled client type, the one
/// passthrough traffic uses: a second hyper client type would add its whole HTTP/1 and
/// HTTP/2 machinery to the binary again, and code pages are most of a sidecar's memory.
#[derive(Debug, Clone)]
struct PooledTransport(UpstreamClient);

impl Transport for PooledTransport {
    async fn send(&self, request: Request<Bytes>) -> Result<(StatusCode, Bytes), TransportError> {
        let response = self.0.request(request.map(body::full)).await?;
        let status = response.status();
        let bytes = response.into_body().collect().await?.to_bytes();
        Ok((status, bytes))
    }
}

/// The control plane as one workload's proxy sees it: the typed client plus who we are.
#[derive(Debug, Clone)]
pub struct ControlClient {
    api: mesh_client::ControlClient<PooledTransport>,
    registration: Registration,
}

impl ControlClient {
    /// A client for the control plane at `base` (e.g. `http://127.0.0.1:15010`), proving
    /// the workload's identity with `token` (the control plane refuses registrations and
    /// certificates without it unless it runs open).
    pub fn new(
        base: &str,
        registration: Registration,
        token: Option<Credential>,
    ) -> Result<Self, ClientError> {
        let pooled = client(
            Duration::from_secs(2),
            true,
            Some(Duration::from_secs(60)),
            None,
        );
        let api = mesh_client::ControlClient::with_transport(base, PooledTransport(pooled))?;
        Ok(Self {
            api: api.with_timeout(CALL_TIMEOUT).with_credential(token),
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
                // A refused credential will not fix itself by waiting, but a rotated token
                // file or a restarted control plane may: keep trying, and say why.
                Err(error) if error.is_refused() => tracing::warn!(
                    %error,
                    "The control plane refused this workload's credential (MESH_PROXY_TOKEN / MESH_PROXY_TOKEN_FILE); retrying."
                ),
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
