//! Workload identity for the mesh: who a sidecar is, who vouches for it, and how a peer
//! checks it.
//!
//! Both halves of the mesh use this crate and neither depends on the other: the control
//! plane signs certificates with [`LocalCa`], the proxy holds an [`Identity`] and verifies
//! its peers with [`SpiffeServerVerifier`] or [`verify_chain`].
//!
//! - [`spiffe`]: [`SpiffeId`] (`spiffe://<trust-domain>/ns/<ns>/sa/<sa>`) and reading it
//!   from a certificate's URI SAN.
//! - [`workload`]: [`Identity`], a workload's key, certificate chain and trust root: key +
//!   CSR generation, loading a signed chain, renewal time.
//! - [`ca`]: [`LocalCa`], a real certificate authority with Istio's root and workload
//!   certificate profiles.
//! - [`verify`]: WebPKI chain verification to the mesh root, and the client-side verifier
//!   that pins the server's SPIFFE ID.
//! - [`IdentityError`]: everything that can go wrong above.

pub mod ca;
mod error;
pub mod spiffe;
pub mod verify;
pub mod workload;

pub use ca::LocalCa;
pub use error::IdentityError;
pub use spiffe::{SpiffeId, peer_spiffe_id, peer_spiffe_id_of, spiffe_id_of_cert};
pub use verify::{SpiffeServerVerifier, root_store, verify_chain};
pub use workload::{Identity, certs_from_pem};

use std::sync::Arc;

/// The trust domain of the mesh's SPIFFE IDs unless configured otherwise (Istio's default).
pub const DEFAULT_TRUST_DOMAIN: &str = "cluster.local";

/// The crypto provider every mesh TLS configuration uses (ring, chosen explicitly so no
/// process-wide default is needed).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}
