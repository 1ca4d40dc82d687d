//! This proxy's mesh identity and the TLS configurations built on it: a key generated
//! here (it never leaves the process) and a certificate for
//! `spiffe://cluster.local/ns/<ns>/sa/<sa>`. The TLS configs read the current certificate
//! from a rotating store, so a renewal (see `control::certificates`) applies to new
//! handshakes without touching open connections.

use std::sync::Arc;

use rustls::ClientConfig;
use tokio_rustls::TlsAcceptor;

use crate::tls::{
    CertStore, ClientAuth, ClientConfigs, Identity, SpiffeId, TlsError, client_config,
    server_config,
};

/// The mesh's trust domain (the `cluster.local` of `spiffe://cluster.local/ns/..`).
pub const TRUST_DOMAIN: &str = mesh_identity::DEFAULT_TRUST_DOMAIN;

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

    /// Puts a renewed identity in force for new handshakes (open connections keep the
    /// keys they negotiated).
    pub fn rotate(&self, fresh: Identity) -> Result<(), TlsError> {
        self.store.rotate(fresh)
    }
}
