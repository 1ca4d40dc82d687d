//! rustls configurations for sidecar-to-sidecar mTLS.
//!
//! - Server side: the client must present a certificate chaining to the mesh root
//!   (rustls' WebPKI client verifier), or may present none with [`ClientAuth::Optional`].
//! - Client side: mesh-identity's [`SpiffeServerVerifier`] checks the chain to the mesh
//!   root and that the server is the expected SPIFFE identity (the destination's service
//!   account).
//!
//! Both sides take their own certificate from a [`CertStore`], so rotation needs no new
//! configuration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use mesh_identity::{SpiffeId, SpiffeServerVerifier, provider, root_store};
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

use super::{CertStore, TlsError};

/// ALPN of HTTP/1.1 carried over sidecar mTLS (what Istio's client sidecars offer).
pub const ALPN_ISTIO_HTTP11: &[u8] = b"istio-http/1.1";
/// ALPN of HTTP/2 carried over sidecar mTLS.
pub const ALPN_ISTIO_H2: &[u8] = b"istio-h2";

/// Whether the server demands a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// No certificate, no handshake (mTLS).
    Required,
    /// A certificate is verified if sent; TLS without one is accepted (peer ID `None`).
    Optional,
}

/// Inbound configuration: our certificate from `store`, client certificates verified
/// against `root`. Offers the Istio ALPNs (and plain `h2`/`http/1.1` for TLS clients that
/// are not sidecars, e.g. a gateway's clients).
pub fn server_config(
    store: Arc<CertStore>,
    root: &CertificateDer<'static>,
    auth: ClientAuth,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder = WebPkiClientVerifier::builder_with_provider(root_store(root)?, provider.clone());
    let verifier = match auth {
        ClientAuth::Required => builder.build()?,
        ClientAuth::Optional => builder.allow_unauthenticated().build()?,
    };
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    config.alpn_protocols = vec![
        ALPN_ISTIO_HTTP11.to_vec(),
        ALPN_ISTIO_H2.to_vec(),
        b"h2".to_vec(),
        b"http/1.1".to_vec(),
    ];
    Ok(config)
}

/// Outbound configuration: presents our certificate from `store`, accepts only servers
/// chaining to `root` and, when `expected` is set, carrying exactly that SPIFFE ID.
/// Offers ALPN `istio-http/1.1`.
///
/// The expected identity is per destination; build one config per destination service
/// account (they are cheap, and caching them keeps TLS session resumption working).
pub fn client_config(
    store: Arc<CertStore>,
    root: &CertificateDer<'static>,
    expected: Option<SpiffeId>,
) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let verifier = SpiffeServerVerifier::new(root, expected)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous() // a custom verifier: SPIFFE URI SANs instead of DNS names
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_cert_resolver(store);
    config.alpn_protocols = vec![ALPN_ISTIO_HTTP11.to_vec()];
    Ok(config)
}

/// Outbound client configurations, one per expected server identity, built on first use.
/// Reusing the same config for a destination keeps TLS session resumption working, and a
/// resumed session was verified against the same expected identity.
#[derive(Debug)]
pub struct ClientConfigs {
    store: Arc<CertStore>,
    root: CertificateDer<'static>,
    configs: Mutex<HashMap<Option<SpiffeId>, Arc<ClientConfig>>>,
}

impl ClientConfigs {
    /// Configs presenting the certificate of `store` and trusting `root`.
    pub fn new(store: Arc<CertStore>, root: CertificateDer<'static>) -> Self {
        Self {
            store,
            root,
            configs: Mutex::new(HashMap::new()),
        }
    }

    /// The config for servers that must be `expected` (any mesh identity when `None`).
    pub fn get(&self, expected: Option<&SpiffeId>) -> Result<Arc<ClientConfig>, TlsError> {
        let mut configs = self.configs.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = configs.get(&expected.cloned()) {
            return Ok(config.clone());
        }
        let config = Arc::new(client_config(
            self.store.clone(),
            &self.root,
            expected.cloned(),
        )?);
        configs.insert(expected.cloned(), config.clone());
        Ok(config)
    }
}
