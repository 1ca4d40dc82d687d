//! The control-plane client: how a proxy joins the mesh and keeps its configuration.
//!
//! At start the proxy registers its workload (name, service, labels, the address its
//! service traffic should come to), then long-polls `/api/v1/proxy-config` with the
//! version it holds; each answer is a new snapshot, swapped in atomically. When the
//! control plane is unreachable the proxy keeps serving with the last configuration and
//! retries with backoff; when it comes back (even restarted, with no memory of us) the
//! proxy registers again and resyncs. See `docs/control-plane-api.md`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use mesh_api::{Registry, RouteTable};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::http::body;
use crate::snapshot::Snapshot;
use crate::state::ProxyState;
use crate::upstream::client::{UpstreamClient, client};

/// How long one long poll may wait. Shorter than the control plane's 15 s liveness window,
/// so every poll doubles as a heartbeat.
pub const POLL_WAIT_SECS: u64 = 10;

/// Why talking to the control plane failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No connection or no answer.
    #[error("control plane at {url} unreachable: {reason}")]
    Unreachable {
        /// Base URL.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The control plane does not know this workload (it restarted): register again.
    #[error("the control plane does not know this workload")]
    NotRegistered,
    /// An answer we cannot use.
    #[error("control plane answered {status}: {body}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// Body (truncated).
        body: String,
    },
}

/// What the proxy tells the control plane about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    /// Workload name, e.g. `reviews-v2`.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// Service served (none for gateways).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// Service account.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_account: Option<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Where the service's traffic for this workload goes (the inbound listener).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<SocketAddr>,
    /// Whether a sidecar fronts the workload (always, for proxies registering themselves).
    pub sidecar: bool,
    /// `sidecar` or `gateway`.
    pub mode: &'static str,
}

/// One answer of the watch API.
#[derive(Debug, Clone, Deserialize)]
pub struct ProxyConfig {
    /// Configuration version.
    pub version: String,
    /// Compiled routing for this proxy.
    pub table: RouteTable,
    /// Services and endpoints.
    pub registry: Registry,
    /// Security resources that may apply to this workload (absent = none).
    #[serde(default)]
    pub security: mesh_api::security::WorkloadSecurity,
}

/// A client of one control plane.
#[derive(Debug, Clone)]
pub struct ControlClient {
    base: String,
    http: UpstreamClient,
    registration: Registration,
}

impl ControlClient {
    /// A client for the control plane at `base` (e.g. `http://127.0.0.1:15010`).
    pub fn new(base: &str, registration: Registration) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            http: client(
                Duration::from_secs(2),
                true,
                Some(Duration::from_secs(60)),
                None,
            ),
            registration,
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        json: Option<Vec<u8>>,
        timeout: Duration,
    ) -> Result<(StatusCode, Bytes), ControlError> {
        let unreachable = |reason: String| ControlError::Unreachable {
            url: self.base.clone(),
            reason,
        };
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if json.is_some() {
            req = req.header(header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(json.map_or_else(body::empty, body::full))
            .map_err(|e| unreachable(e.to_string()))?;
        let resp = tokio::time::timeout(timeout, self.http.request(req))
            .await
            .map_err(|_| unreachable("timed out".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let status = resp.status();
        let bytes = tokio::time::timeout(timeout, resp.into_body().collect())
            .await
            .map_err(|_| unreachable("timed out reading the answer".to_owned()))?
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        Ok((status, bytes))
    }

    /// POSTs `body` as JSON; the answer when the control plane accepts it.
    async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<(StatusCode, Bytes), ControlError> {
        let body = serde_json::to_vec(body).map_err(|e| ControlError::Rejected {
            status: 0,
            body: e.to_string(),
        })?;
        let (status, bytes) = self
            .call(Method::POST, path, Some(body), Duration::from_secs(5))
            .await?;
        if status.is_success() {
            Ok((status, bytes))
        } else {
            Err(rejected(status, &bytes))
        }
    }

    /// Registers the workload.
    pub async fn register(&self) -> Result<(), ControlError> {
        self.post_json("/api/v1/workloads", &self.registration)
            .await
            .map(|_| ())
    }

    /// Has the CA sign `csr_pem`; returns the chain (leaf first, root last) as PEM.
    pub async fn certificate(&self, csr_pem: &str) -> Result<Vec<String>, ControlError> {
        #[derive(Deserialize)]
        struct Issued {
            chain: Vec<String>,
        }
        let body = serde_json::json!({ "workload": self.registration.name, "csr": csr_pem });
        let (status, bytes) = self.post_json("/api/v1/certificates", &body).await?;
        let issued: Issued =
            serde_json::from_slice(&bytes).map_err(|e| ControlError::Rejected {
                status: status.as_u16(),
                body: format!("unusable certificate answer: {e}"),
            })?;
        if issued.chain.is_empty() {
            return Err(ControlError::Rejected {
                status: status.as_u16(),
                body: "empty certificate chain".to_owned(),
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
        let path = format!("/api/v1/workloads/{}", self.registration.name);
        let _ = self
            .call(Method::DELETE, &path, None, Duration::from_secs(2))
            .await;
    }

    /// Fetches the configuration, waiting up to `wait` for one newer than `version`.
    pub async fn poll(
        &self,
        version: Option<&str>,
        wait: u64,
    ) -> Result<ProxyConfig, ControlError> {
        let mut path = format!(
            "/api/v1/proxy-config?workload={}&wait={wait}",
            self.registration.name
        );
        if let Some(v) = version {
            path.push_str(&format!("&version={v}"));
        }
        let (status, bytes) = self
            .call(Method::GET, &path, None, Duration::from_secs(wait + 5))
            .await?;
        match status {
            StatusCode::OK => serde_json::from_slice(&bytes).map_err(|e| ControlError::Rejected {
                status: 200,
                body: format!("unusable configuration: {e}"),
            }),
            StatusCode::NOT_FOUND => Err(ControlError::NotRegistered),
            other => Err(rejected(other, &bytes)),
        }
    }

    /// Registers and fetches the first configuration, retrying until it succeeds or
    /// `stop` turns true.
    pub async fn first_config(&self, stop: &mut watch::Receiver<bool>) -> Option<ProxyConfig> {
        let mut backoff = Duration::from_millis(100);
        loop {
            let attempt = async {
                self.register().await?;
                self.poll(None, 0).await
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

fn rejected(status: StatusCode, bytes: &Bytes) -> ControlError {
    let text = String::from_utf8_lossy(bytes);
    ControlError::Rejected {
        status: status.as_u16(),
        body: text.chars().take(300).collect(),
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
            r = control.poll(Some(&version), POLL_WAIT_SECS) => r,
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
            Err(ControlError::NotRegistered) => {
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
