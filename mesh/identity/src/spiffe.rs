//! SPIFFE IDs: the names workloads carry in their certificates' URI SAN, and reading
//! them back from a peer's certificate.

use std::fmt;

use rustls::pki_types::CertificateDer;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::IdentityError;

const SCHEME: &str = "spiffe://";

/// A workload identity `spiffe://<trust-domain>/ns/<namespace>/sa/<service-account>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    uri: String,
    trust_domain_len: usize,
    namespace: (usize, usize),
    service_account: usize,
}

impl SpiffeId {
    /// Builds the ID of a service account in a namespace.
    pub fn new(
        trust_domain: &str,
        namespace: &str,
        service_account: &str,
    ) -> Result<Self, IdentityError> {
        Self::parse(&format!(
            "{SCHEME}{trust_domain}/ns/{namespace}/sa/{service_account}"
        ))
    }

    /// Parses `spiffe://td/ns/<ns>/sa/<sa>`; segments must be non-empty and free of `/`.
    pub fn parse(uri: &str) -> Result<Self, IdentityError> {
        let invalid = || IdentityError::InvalidSpiffeId(uri.to_owned());
        let rest = uri.strip_prefix(SCHEME).ok_or_else(invalid)?;
        let parts: Vec<&str> = rest.split('/').collect();
        let [td, "ns", ns, "sa", sa] = parts.as_slice() else {
            return Err(invalid());
        };
        let ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
        };
        if !(ok(td) && ok(ns) && ok(sa)) {
            return Err(invalid());
        }
        let ns_start = SCHEME.len() + td.len() + "/ns/".len();
        Ok(Self {
            uri: uri.to_owned(),
            trust_domain_len: td.len(),
            namespace: (ns_start, ns_start + ns.len()),
            service_account: ns_start + ns.len() + "/sa/".len(),
        })
    }

    /// The full URI, with `spiffe://`.
    pub fn as_str(&self) -> &str {
        &self.uri
    }

    /// The trust domain, e.g. `cluster.local`.
    pub fn trust_domain(&self) -> &str {
        &self.uri[SCHEME.len()..SCHEME.len() + self.trust_domain_len]
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.uri[self.namespace.0..self.namespace.1]
    }

    /// The service account.
    pub fn service_account(&self) -> &str {
        &self.uri[self.service_account..]
    }

    /// The form AuthorizationPolicy `principals` use: without `spiffe://`.
    pub fn principal(&self) -> &str {
        &self.uri[SCHEME.len()..]
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.uri)
    }
}

impl std::str::FromStr for SpiffeId {
    type Err = IdentityError;
    fn from_str(s: &str) -> Result<Self, IdentityError> {
        Self::parse(s)
    }
}

/// The `spiffe://` URI SAN of a parsed certificate: `None` without one, `Some(Err)` when it
/// is malformed.
pub(crate) fn spiffe_id_of_x509(
    cert: &X509Certificate<'_>,
) -> Option<Result<SpiffeId, IdentityError>> {
    let san = cert.subject_alternative_name().ok().flatten()?;
    san.value.general_names.iter().find_map(|name| match name {
        GeneralName::URI(uri) if uri.starts_with(SCHEME) => Some(SpiffeId::parse(uri)),
        _ => None,
    })
}

/// The SPIFFE ID of a DER certificate, if it carries a well-formed one.
pub fn spiffe_id_of_cert(cert: &CertificateDer<'_>) -> Option<SpiffeId> {
    let (_, parsed) = X509Certificate::from_der(cert).ok()?;
    spiffe_id_of_x509(&parsed)?.ok()
}

/// The SPIFFE ID (with `spiffe://`) of the peer's leaf certificate.
pub fn peer_spiffe_id(peer_certificates: &[CertificateDer<'_>]) -> Option<String> {
    spiffe_id_of_cert(peer_certificates.first()?).map(|id| id.as_str().to_owned())
}

/// The SPIFFE ID of the peer of an established rustls connection (client or server side).
pub fn peer_spiffe_id_of(state: &rustls::CommonState) -> Option<String> {
    peer_spiffe_id(state.peer_certificates()?)
}
