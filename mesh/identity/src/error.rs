//! What can go wrong with identities: generating, decoding, naming and verifying them.

/// Everything that can go wrong with SPIFFE IDs, keys, certificates and their chains.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
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
    /// The server presented a different identity than the one the client expected.
    #[error("peer identity {actual:?} is not the expected {expected}")]
    UnexpectedPeer {
        /// The SPIFFE ID the client asked for.
        expected: String,
        /// The SPIFFE ID the server's certificate carries (if any).
        actual: Option<String>,
    },
}

impl IdentityError {
    /// A decoding failure of the input `what`.
    pub fn decode(what: &'static str, reason: impl std::fmt::Display) -> Self {
        Self::Decode {
            what,
            reason: reason.to_string(),
        }
    }
}
