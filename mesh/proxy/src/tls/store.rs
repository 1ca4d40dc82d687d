//! The rotating certificate holder.
//!
//! rustls asks a resolver for the certificate at every handshake, so swapping the
//! [`CertifiedKey`] behind a lock makes the next handshake use the renewed certificate,
//! while established connections keep the session keys they negotiated: rotation under
//! load fails no request and restarts no listener.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::SystemTime;

use rustls::client::ResolvesClientCert;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{SignatureScheme, pki_types::CertificateDer};

use super::{Identity, TlsError};

#[derive(Debug)]
struct Current {
    identity: Arc<Identity>,
    certified: Arc<CertifiedKey>,
}

/// The workload's current certificate, shared by the inbound and outbound TLS configs.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Current>,
}

impl CertStore {
    /// A store serving `identity`.
    pub fn new(identity: Identity) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self {
            current: RwLock::new(Self::load(identity)?),
        }))
    }

    fn load(identity: Identity) -> Result<Current, TlsError> {
        let certified = Arc::new(identity.certified_key()?);
        Ok(Current {
            identity: Arc::new(identity),
            certified,
        })
    }

    /// Replaces the certificate for all later handshakes. The trust root is not part of
    /// the store (it lives in the configs' verifiers), so the new chain must come from the
    /// same root; a root change needs new configs.
    pub fn rotate(&self, identity: Identity) -> Result<(), TlsError> {
        let next = Self::load(identity)?;
        // A poisoned lock only means a panic elsewhere while holding it; the data (two
        // Arcs swapped atomically) is never half-written, so keep using it.
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next;
        Ok(())
    }

    /// The identity handshakes currently present.
    pub fn identity(&self) -> Arc<Identity> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .identity
            .clone()
    }

    /// The rustls key + chain handshakes currently present.
    pub fn certified_key(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .certified
            .clone()
    }

    /// True once the current certificate is at half life (time to ask for a new one).
    pub fn needs_renewal(&self, now: SystemTime) -> bool {
        self.identity().needs_renewal(now)
    }

    /// The current leaf certificate.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        self.certified_key().cert.first().cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }
}

impl ResolvesClientCert for CertStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.certified_key())
    }

    fn has_certs(&self) -> bool {
        true
    }
}
