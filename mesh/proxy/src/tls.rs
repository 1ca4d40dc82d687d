//! Workload identity and mutual TLS between sidecars.
//!
//! Every sidecar holds an [`Identity`]: an ECDSA P-256 key generated in the proxy, a
//! certificate whose URI SAN is the workload's SPIFFE ID
//! (`spiffe://cluster.local/ns/<ns>/sa/<sa>`), and the mesh's trust root. The pieces:
//!
//! The identity itself (SPIFFE IDs, key + CSR, the CA, chain verification) lives in the
//! `mesh-identity` crate, shared with the control plane; this module puts it on the wire.
//!
//! - [`store`]: [`CertStore`], the rotating certificate holder both TLS sides resolve from,
//!   so a renewed certificate serves new handshakes without touching live connections.
//! - [`config`]: rustls server/client configurations that verify the peer chains to the mesh
//!   root and (client side) that the server is the expected SPIFFE identity.
//! - [`accept`]: the inbound side: plaintext/TLS sniffing and STRICT / PERMISSIVE / DISABLE.
//!
//! Sidecar-to-sidecar mTLS is recognised by its ALPN `istio-http/1.1`, as in Istio.

pub mod accept;
pub mod config;
pub mod store;

pub use accept::{Accepted, MeshStream, MtlsMode, Sniffed, accept, connect, sniff};
pub use config::{
    ALPN_ISTIO_H2, ALPN_ISTIO_HTTP11, ClientAuth, ClientConfigs, client_config, server_config,
};
pub use mesh_identity::{
    Identity, IdentityError, LocalCa, SpiffeId, SpiffeServerVerifier, peer_spiffe_id,
    peer_spiffe_id_of, provider, spiffe_id_of_cert,
};
pub use store::CertStore;

/// Everything that can go wrong with mTLS connections and their configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// An identity problem: key, certificate, SPIFFE ID, or a peer that is not who it
    /// should be.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The destination host is not usable as a TLS server name (SNI).
    #[error("invalid TLS server name: {0}")]
    ServerName(String),
    /// The certificate does not belong to the key, or does not chain to the root, etc.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client-certificate verifier could not be built (e.g. empty root store).
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
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
            match other.0.downcast_ref::<IdentityError>() {
                Some(IdentityError::UnexpectedPeer { expected, actual }) => {
                    return IdentityError::UnexpectedPeer {
                        expected: expected.clone(),
                        actual: actual.clone(),
                    }
                    .into();
                }
                Some(IdentityError::NoSpiffeId) => return IdentityError::NoSpiffeId.into(),
                _ => {}
            }
        }
        Self::Rustls(tls.clone())
    }
}
