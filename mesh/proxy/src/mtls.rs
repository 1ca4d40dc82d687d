//! This proxy's mesh identity: a key generated here (it never leaves the process), a
//! certificate for `spiffe://cluster.local/ns/<ns>/sa/<sa>` from the control plane's CA,
//! renewed at half life. The TLS configs read the current certificate from a rotating
//! store, so a renewal applies to new handshakes without touching open connections.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::ClientConfig;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::control::ControlClient;
use crate::tls::{
    CertStore, ClientAuth, ClientConfigs, Identity, SpiffeId, TlsError, client_config,
    server_config,
};

/// The mesh's trust domain (the `cluster.local` of `spiffe://cluster.local/ns/..`).
pub const TRUST_DOMAIN: &str = mesh_identity::DEFAULT_TRUST_DOMAIN;

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

/// The proxy's identity and the TLS configs built on it.
pub struct Mtls {
    store: Arc<CertStore>,
    /// Terminates mesh mTLS on the inbound listener (client certificates optional here;
    /// STRICT is enforced by the accept step).
    pub acceptor: TlsAcceptor,
    /// Originates mesh mTLS to sidecar endpoints (the server must chain to our root).
    pub client: Arc<ClientConfig>,
    /// The same, pinned to an expected server identity (one config per identity).
    pinned: ClientConfigs,
}

impl std::fmt::Debug for Mtls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mtls")
            .field("spiffe_id", &self.store.identity().spiffe_id().as_str())
            .finish_non_exhaustive()
    }
}

impl Mtls {
    /// TLS configs around `identity`.
    pub fn new(identity: Identity) -> Result<Self, TlsError> {
        let root = identity.root().clone();
        let store = CertStore::new(identity)?;
        let acceptor = TlsAcceptor::from(Arc::new(server_config(
            store.clone(),
            &root,
            ClientAuth::Optional,
        )?));
        let client = Arc::new(client_config(store.clone(), &root, None)?);
        let pinned = ClientConfigs::new(store.clone(), root);
        Ok(Self {
            store,
            acceptor,
            client,
            pinned,
        })
    }

    /// A client config that accepts only a server proving `expected` (falls back to any
    /// mesh identity if the config cannot be built).
    pub fn client_for(&self, expected: Option<&SpiffeId>) -> Arc<ClientConfig> {
        match expected {
            Some(id) => self
                .pinned
                .get(Some(id))
                .unwrap_or_else(|_| self.client.clone()),
            None => self.client.clone(),
        }
    }

    /// The current identity.
    pub fn identity(&self) -> Arc<Identity> {
        self.store.identity()
    }
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
            Ok(fresh) => match mtls.store.rotate(fresh) {
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
