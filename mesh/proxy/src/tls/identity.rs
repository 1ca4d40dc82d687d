//! SPIFFE IDs and a workload's key + certificate chain.
//!
//! The key never leaves the proxy: [`Identity::csr`] makes a key pair and a certificate
//! signing request, the CA (control plane or [`super::LocalCa`]) answers with a chain
//! (`[leaf, root]`), and [`Identity::from_signed`] checks the chain belongs to the key.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::TlsError;

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
    ) -> Result<Self, TlsError> {
        Self::parse(&format!(
            "{SCHEME}{trust_domain}/ns/{namespace}/sa/{service_account}"
        ))
    }

    /// Parses `spiffe://td/ns/<ns>/sa/<sa>`; segments must be non-empty and free of `/`.
    pub fn parse(uri: &str) -> Result<Self, TlsError> {
        let invalid = || TlsError::InvalidSpiffeId(uri.to_owned());
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
    type Err = TlsError;
    fn from_str(s: &str) -> Result<Self, TlsError> {
        Self::parse(s)
    }
}

/// A workload's key, certificate chain (leaf first) and trust root.
#[derive(Debug)]
pub struct Identity {
    spiffe_id: SpiffeId,
    key: PrivatePkcs8KeyDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    root: CertificateDer<'static>,
    not_before: SystemTime,
    not_after: SystemTime,
    serial: Vec<u8>,
}

impl Identity {
    /// Generates an ECDSA P-256 key and a PEM CSR naming `spiffe_id` as URI SAN.
    /// Keep the key; send the CSR to the CA; then call [`Identity::from_signed`].
    pub fn csr(spiffe_id: &SpiffeId) -> Result<(KeyPair, String), TlsError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.subject_alt_names = vec![SanType::URI(spiffe_id.as_str().try_into()?)];
        let csr = params.serialize_request(&key)?.pem()?;
        Ok((key, csr))
    }

    /// Assembles an identity from the key and the CA's answer. `chain_pem` is leaf first
    /// (each entry may hold one or more PEM certificates); `root_pem` is the trust root.
    /// Fails when the chain is empty, the leaf does not match the key, the leaf has no
    /// SPIFFE ID, or the leaf does not chain to the root.
    pub fn from_signed(
        key: KeyPair,
        chain_pem: &[impl AsRef<str>],
        root_pem: &str,
    ) -> Result<Self, TlsError> {
        let mut chain = Vec::new();
        for pem in chain_pem {
            chain.extend(certs_from_pem(pem.as_ref(), "certificate chain PEM")?);
        }
        let root = certs_from_pem(root_pem, "root certificate PEM")?
            .into_iter()
            .next()
            .ok_or_else(|| decode_error("root certificate PEM", "no certificate"))?;
        Self::from_parts(PrivatePkcs8KeyDer::from(key.serialize_der()), chain, root)
    }

    /// Like [`Identity::from_signed`] with DER inputs.
    pub fn from_parts(
        key: PrivatePkcs8KeyDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        root: CertificateDer<'static>,
    ) -> Result<Self, TlsError> {
        let leaf = chain
            .first()
            .ok_or_else(|| decode_error("certificate chain", "empty"))?;
        let (_, cert) = X509Certificate::from_der(leaf)
            .map_err(|e| decode_error("leaf certificate", &e.to_string()))?;
        let spiffe_id = spiffe_id_of_x509(&cert).ok_or(TlsError::NoSpiffeId)??;
        let validity = cert.validity();
        let not_before = to_system_time(validity.not_before.timestamp());
        let not_after = to_system_time(validity.not_after.timestamp());
        let serial = cert.raw_serial().to_vec();
        // Catch a chain for another key, or one from another CA, now rather than at the
        // first handshake.
        CertifiedKey::from_der(
            chain.clone(),
            PrivateKeyDer::Pkcs8(key.clone_key()),
            &super::provider(),
        )?;
        super::config::verify_chain(&chain, &root, rustls::pki_types::UnixTime::now()).or_else(
            |e| match e {
                // An expired (or not yet valid) certificate is still a well-formed identity:
                // the store refuses nothing, renewal logic replaces it.
                rustls::Error::InvalidCertificate(
                    rustls::CertificateError::Expired
                    | rustls::CertificateError::ExpiredContext { .. }
                    | rustls::CertificateError::NotValidYet
                    | rustls::CertificateError::NotValidYetContext { .. },
                ) => Ok(()),
                other => Err(other),
            },
        )?;
        Ok(Self {
            spiffe_id,
            key,
            chain,
            root,
            not_before,
            not_after,
            serial,
        })
    }

    /// The workload's SPIFFE ID (from the leaf's URI SAN).
    pub fn spiffe_id(&self) -> &SpiffeId {
        &self.spiffe_id
    }

    /// Certificate chain, leaf first.
    pub fn chain(&self) -> &[CertificateDer<'static>] {
        &self.chain
    }

    /// The mesh trust root.
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root
    }

    /// The private key (PKCS#8 DER).
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }

    /// The leaf's serial number (DER integer bytes).
    pub fn serial(&self) -> &[u8] {
        &self.serial
    }

    /// Start of the leaf's validity.
    pub fn not_before(&self) -> SystemTime {
        self.not_before
    }

    /// End of the leaf's validity.
    pub fn expires_at(&self) -> SystemTime {
        self.not_after
    }

    /// When to renew: half-way through the validity, like Istio's default grace ratio 0.5.
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or(Duration::ZERO);
        self.not_before + lifetime / 2
    }

    /// True from half life on (and for an expired certificate).
    pub fn needs_renewal(&self, now: SystemTime) -> bool {
        now >= self.renew_at()
    }

    /// True when `now` is past the leaf's end of validity.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now > self.not_after
    }

    /// The rustls form of key + chain, for resolvers.
    pub fn certified_key(&self) -> Result<CertifiedKey, TlsError> {
        Ok(CertifiedKey::from_der(
            self.chain.clone(),
            self.key_der(),
            &super::provider(),
        )?)
    }
}

fn to_system_time(unix_seconds: i64) -> SystemTime {
    match u64::try_from(unix_seconds) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    }
}

pub(crate) fn decode_error(what: &'static str, reason: &str) -> TlsError {
    TlsError::Decode {
        what,
        reason: reason.to_owned(),
    }
}

/// Every certificate in a PEM text (at least one).
pub(crate) fn certs_from_pem(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| decode_error(what, &e.to_string()))?;
    if certs.is_empty() {
        return Err(decode_error(what, "no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The `spiffe://` URI SAN of a parsed certificate: `None` without one, `Some(Err)` when it
/// is malformed.
fn spiffe_id_of_x509(cert: &X509Certificate<'_>) -> Option<Result<SpiffeId, TlsError>> {
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
