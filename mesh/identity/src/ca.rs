//! A small, real certificate authority: a self-signed ECDSA root that signs workload
//! certificates carrying SPIFFE URI SANs.
//!
//! Tests use it to build identities without a control plane; a static-file setup can use
//! it to mint certificates once. The leaf profile matches what the mesh expects from any
//! CA: URI SAN = SPIFFE ID, key usages for ECDHE signatures, and both `serverAuth` and
//! `clientAuth` because every sidecar is client and server.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivatePkcs8KeyDer};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::time::ASN1Time;

use crate::{Identity, IdentityError, SpiffeId};

/// Root lifetime (Istio's self-signed root: 10 years).
const ROOT_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Tolerance for clocks of peers slightly behind ours.
const BACKDATE: Duration = Duration::from_secs(60);

/// A self-signed mesh root and its key.
pub struct LocalCa {
    issuer: Issuer<'static, KeyPair>,
    root_der: CertificateDer<'static>,
    root_pem: String,
    trust_domain: String,
}

impl std::fmt::Debug for LocalCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalCa")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl LocalCa {
    /// A new root for `trust_domain` (e.g. `cluster.local`), valid for 10 years.
    pub fn new(trust_domain: &str) -> Result<Self, IdentityError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, trust_domain);
        name.push(DnType::CommonName, "mesh root CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        set_validity(&mut params, now - BACKDATE, now + ROOT_TTL)?;
        params.serial_number = Some(random_serial());
        let root = params.self_signed(&key)?;
        Ok(Self {
            root_der: root.der().clone(),
            root_pem: root.pem(),
            issuer: Issuer::new(params, key),
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// A CA with an existing root: its certificate and private key, PEM (a root kept
    /// across restarts, or one an operator supplies).
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        trust_domain: &str,
    ) -> Result<Self, IdentityError> {
        let bad_cert = |e: &dyn std::fmt::Display| {
            IdentityError::decode(
                "root certificate",
                format!("not a usable CA certificate: {e}"),
            )
        };
        let key = KeyPair::from_pem(key_pem).map_err(|e| {
            IdentityError::decode("root key", format!("not a usable private key: {e}"))
        })?;
        let root_der =
            CertificateDer::from_pem_slice(cert_pem.as_bytes()).map_err(|e| bad_cert(&e))?;
        // A key of another certificate would sign leaves that fail to verify against this
        // root, on every handshake, far from the cause: refuse the pair here instead.
        let (_, cert) = X509Certificate::from_der(&root_der).map_err(|e| bad_cert(&e))?;
        if cert.public_key().raw != key.subject_public_key_info().as_slice() {
            return Err(IdentityError::decode(
                "root key",
                "it is not the private key of the root certificate",
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&root_der, key).map_err(|e| bad_cert(&e))?;
        Ok(Self {
            issuer,
            root_der,
            root_pem: cert_pem.to_owned(),
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// The root's private key (PEM), for keeping the root across restarts.
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// The trust domain this CA issues for.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The root certificate (DER).
    pub fn root(&self) -> &CertificateDer<'static> {
        &self.root_der
    }

    /// The root certificate (PEM).
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// Signs a CSR for `spiffe_id`, valid from now for `ttl`. The identity comes from the
    /// caller (who knows which workload asked), never from the CSR, so a proxy cannot ask
    /// for someone else's name. Returns the chain as PEM, leaf first: `[leaf, root]`.
    pub fn sign_csr(
        &self,
        csr_pem: &str,
        spiffe_id: &SpiffeId,
        ttl: Duration,
    ) -> Result<Vec<String>, IdentityError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| IdentityError::decode("CSR", e))?;
        let now = SystemTime::now();
        let params = leaf_params(spiffe_id, now - BACKDATE, now + ttl)?;
        let leaf = params.signed_by(&csr.public_key, &self.issuer)?;
        Ok(vec![leaf.pem(), self.root_pem.clone()])
    }

    /// Issues a complete identity (new key included), valid from now for `ttl`.
    pub fn issue(&self, spiffe_id: &SpiffeId, ttl: Duration) -> Result<Identity, IdentityError> {
        let now = SystemTime::now();
        self.issue_between(spiffe_id, now - BACKDATE, now + ttl)
    }

    /// Issues an identity with an explicit validity window (tests: expired or
    /// not-yet-valid certificates, half-life arithmetic).
    pub fn issue_between(
        &self,
        spiffe_id: &SpiffeId,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Identity, IdentityError> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let leaf = leaf_params(spiffe_id, not_before, not_after)?.signed_by(&key, &self.issuer)?;
        Identity::from_parts(
            PrivatePkcs8KeyDer::from(key.serialize_der()),
            vec![leaf.der().clone(), self.root_der.clone()],
            self.root_der.clone(),
        )
    }
}

fn leaf_params(
    spiffe_id: &SpiffeId,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<CertificateParams, IdentityError> {
    let mut params = CertificateParams::default();
    // Like Istio's workload certificates: empty subject, the identity lives in the SAN.
    params.distinguished_name = DistinguishedName::new();
    params.subject_alt_names = vec![SanType::URI(spiffe_id.as_str().try_into()?)];
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    params.serial_number = Some(random_serial());
    set_validity(&mut params, not_before, not_after)?;
    Ok(params)
}

fn set_validity(
    params: &mut CertificateParams,
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<(), IdentityError> {
    // rcgen wants `time::OffsetDateTime`; x509-parser's ASN1Time converts from seconds, which
    // spares a direct dependency on `time`.
    params.not_before = asn1_time(not_before)?.to_datetime();
    params.not_after = asn1_time(not_after)?.to_datetime();
    Ok(())
}

fn asn1_time(at: SystemTime) -> Result<ASN1Time, IdentityError> {
    let secs = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    };
    ASN1Time::from_timestamp(secs).map_err(|e| IdentityError::decode("certificate validity", e))
}

/// 16 random bytes, positive as a DER integer.
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    SerialNumber::from_slice(&bytes)
}
