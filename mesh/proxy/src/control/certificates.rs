//! The mesh certificate: a CSR made with a key that never leaves the proxy, signed by the
//! control plane's CA, renewed at half life while the current one keeps serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::ControlClient;
use crate::mtls::Mtls;
use crate::tls::{Identity, SpiffeId, TlsError};

/// Why no identity could be had.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Key, CSR or certificate trouble.
    #[error(transparent)]
    Identity(#[from] mesh_identity::IdentityError),
    /// The TLS configurations around the certificate could not be built.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The CA could not be reached or refused.
    #[error(transparent)]
    Control(#[from] mesh_client::ClientError),
}

/// Asks the control plane's CA for a certificate for `spiffe_id`.
pub async fn issue(control: &ControlClient, spiffe_id: &SpiffeId) -> Result<Identity, IssueError> {
    let (key, csr) = Identity::csr(spiffe_id)?;
    let chain = control.certificate(&csr).await?;
    let root = chain.last().cloned().unwrap_or_default();
    Ok(Identity::from_signed(key, &chain, &root)?)
}

/// Renews the certificate at half life until `stop`; a failed renewal is retried every
/// few seconds while the current certificate is still valid.
pub async fn rotate(
    control: Arc<ControlClient>,
    mtls: Arc<Mtls>,
    spiffe_id: SpiffeId,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let identity = mtls.identity();
        let wait = identity
            .renew_at()
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .max(Duration::from_millis(200));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
        match issue(&control, &spiffe_id).await {
            Ok(fresh) => match mtls.rotate(fresh) {
                Ok(()) => tracing::info!(spiffe_id = %spiffe_id.as_str(), "Certificate renewed."),
                Err(error) => {
                    tracing::warn!(%error, "Renewed certificate unusable; keeping the current one.")
                }
            },
            Err(error) => {
                tracing::warn!(%error, "Certificate renewal failed; retrying.");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }
}
