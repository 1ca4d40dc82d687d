//! Workload identity and mutual TLS between sidecars.
//!
//! Every sidecar holds an [`Identity`]: an ECDSA P-256 key generated in the proxy, a
//! certificate whose URI SAN is the workload's SPIFFE ID
//! (`spiffe://cluster.local/ns/<ns>/sa/<sa>`), and the mesh's trust root. The pieces:
//!
//! - [`identity`]: SPIFFE IDs, key + CSR generation, loading a signed chain, renewal time.
//! - [`ca`]: [`LocalCa`], a real certificate authority for tests and static-file setups.
//! - [`store`]: [`CertStore`], the rotating certificate holder both TLS sides resolve from,
//!   so a renewed certificate serves new handshakes without touching live connections.
//! - [`config`]: rustls server/client configurations that verify the peer chains to the mesh
//!   root and (client side) that the server is the expected SPIFFE identity.
//! - [`accept`]: the inbound side: plaintext/TLS sniffing and STRICT / PERMISSIVE / DISABLE.
//!
//! Sidecar-to-sidecar mTLS is recognised by its ALPN `istio-http/1.1`, as in Istio.

pub mod accept;
pub mod ca;
pub mod config;
pub mod identity;
pub mod store;

pub use accept::{Accepted, MeshStream, MtlsMode, Sniffed, accept, connect, sniff};
pub use ca::LocalCa;
pub use config::{
    ALPN_ISTIO_H2, ALPN_ISTIO_HTTP11, ClientAuth, ClientConfigs, SpiffeServerVerifier,
    client_config, server_config,
};
pub use identity::{Identity, SpiffeId, peer_spiffe_id, peer_spiffe_id_of, spiffe_id_of_cert};
pub use store::CertStore;

use std::sync::Arc;

/// The crypto provider every mesh TLS configuration uses (ring, chosen explicitly so no
/// process-wide default is needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Everything that can go wrong with identities and mTLS connections.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// rcgen could not build a key, CSR or certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A PEM or DER input could not be decoded.
    #[error("invalid {what}: {reason}")]
    Decode {
        /// Which input (e.g. "certificate chain PEM").
        what: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// A string is not a `spiffe://<trust-domain>/ns/<ns>/sa/<sa>` ID.
    #[error(
        "invalid SPIFFE ID {0:?}: expected spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>"
    )]
    InvalidSpiffeId(String),
    /// The leaf certificate carries no `spiffe://` URI SAN.
    #[error("certificate has no spiffe:// URI SAN")]
    NoSpiffeId,
    /// The certificate does not belong to the key, or does not chain to the root, etc.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. empty root store).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// The server presented a different identity than the one the client expected.
    #[error("peer identity {actual:?} is not the expected {expected}")]
    UnexpectedPeer {
        /// The SPIFFE ID the client asked for.
        expected: String,
        /// The SPIFFE ID the server's certificate carries (if any).
        actual: Option<String>,
    },
    /// STRICT mode got a plaintext connection; it has been closed.
    #[error("plaintext connection rejected: mTLS is STRICT")]
    PlaintextRejected,
    /// STRICT mode got a TLS connection without a client certificate.
    #[error("TLS connection without a client certificate rejected: mTLS is STRICT")]
    NoPeerCertificate,
    /// Socket error (including a peer that closed before sending anything).
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl TlsError {
    /// Unwraps the TLS error tokio-rustls reports as `io::Error`, so callers (and logs) see
    /// "peer identity ... is not the expected ..." rather than a nested debug dump.
    pub(crate) fn from_handshake(error: std::io::Error) -> Self {
        let Some(inner) = error.get_ref() else {
            return Self::Io(error);
        };
        let Some(tls) = inner.downcast_ref::<rustls::Error>() else {
            return Self::Io(error);
        };
        if let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = tls {
            match other.0.downcast_ref::<TlsError>() {
                Some(Self::UnexpectedPeer { expected, actual }) => {
                    return Self::UnexpectedPeer {
                        expected: expected.clone(),
                        actual: actual.clone(),
                    };
                }
                Some(Self::NoSpiffeId) => return Self::NoSpiffeId,
                _ => {}
            }
        }
        Self::Rustls(tls.clone())
    }
}
