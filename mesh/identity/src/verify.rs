//! Chain verification against the mesh root, the way both TLS sides of a sidecar check a
//! peer.
//!
//! rustls' WebPKI server verifier only matches DNS/IP names, but mesh certificates name a
//! SPIFFE URI. [`SpiffeServerVerifier`] checks the chain to the mesh root with the same
//! WebPKI path building, then compares the leaf's URI SAN with the expected identity (the
//! destination's service account).

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::verify_server_cert_signed_by_trust_anchor;
use rustls::crypto::{WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, OtherError, RootCertStore, SignatureScheme};

use crate::{IdentityError, SpiffeId, provider, spiffe_id_of_cert};

/// A root store holding only the mesh root.
pub fn root_store(root: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, IdentityError> {
    let mut roots = RootCertStore::empty();
    roots.add(root.clone())?;
    Ok(Arc::new(roots))
}

/// Checks that `chain` (leaf first; extra certificates act as intermediates) leads to
/// `root` and is valid at `now` for TLS server use.
pub fn verify_chain(
    chain: &[CertificateDer<'static>],
    root: &CertificateDer<'static>,
    now: UnixTime,
) -> Result<(), rustls::Error> {
    let Some((leaf, intermediates)) = chain.split_first() else {
        return Err(rustls::Error::NoCertificatesPresented);
    };
    let roots = root_store(root).map_err(|e| rustls::Error::General(e.to_string()))?;
    let parsed = ParsedCertificate::try_from(leaf)?;
    verify_server_cert_signed_by_trust_anchor(
        &parsed,
        &roots,
        intermediates,
        now,
        provider().signature_verification_algorithms.all,
    )
}

/// Server certificate verifier for mesh mTLS: WebPKI chain to the mesh root, then the
/// leaf's SPIFFE URI SAN against the expected identity. The TLS server name is ignored:
/// sidecars connect to pod IPs, the identity is what matters.
#[derive(Debug)]
pub struct SpiffeServerVerifier {
    roots: Arc<RootCertStore>,
    expected: Option<SpiffeId>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl SpiffeServerVerifier {
    /// A verifier trusting `root` and, when set, only the `expected` identity.
    pub fn new(
        root: &CertificateDer<'static>,
        expected: Option<SpiffeId>,
    ) -> Result<Self, IdentityError> {
        Ok(Self {
            roots: root_store(root)?,
            expected,
            algorithms: provider().signature_verification_algorithms,
        })
    }
}

impl ServerCertVerifier for SpiffeServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        let actual = spiffe_id_of_cert(end_entity);
        match (&self.expected, actual) {
            (Some(expected), actual) if actual.as_ref() != Some(expected) => {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(IdentityError::UnexpectedPeer {
                        expected: expected.to_string(),
                        actual: actual.map(|id| id.to_string()),
                    })),
                )))
            }
            (None, None) => Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                OtherError(Arc::new(IdentityError::NoSpiffeId)),
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
