//! A workload's key, certificate chain and trust root.
//!
//! The key never leaves the proxy: [`Identity::csr`] makes a key pair and a certificate
//! signing request, the CA (control plane or [`crate::LocalCa`]) answers with a chain
//! (`[leaf, root]`), and [`Identity::from_signed`] checks the chain belongs to the key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{CertificateParams, DistinguishedName, KeyPair, SanType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::spiffe::spiffe_id_of_x509;
use crate::{IdentityError, SpiffeId};

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
    pub fn csr(spiffe_id: &SpiffeId) -> Result<(KeyPair, String), IdentityError> {
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
    ) -> Result<Self, IdentityError> {
        let mut chain = Vec::new();
        for pem in chain_pem {
            chain.extend(certs_from_pem(pem.as_ref(), "certificate chain PEM")?);
        }
        let root = certs_from_pem(root_pem, "root certificate PEM")?
            .into_iter()
            .next()
            .ok_or_else(|| IdentityError::decode("root certificate PEM", "no certificate"))?;
        Self::from_parts(PrivatePkcs8KeyDer::from(key.serialize_der()), chain, root)
    }

    /// Like [`Identity::from_signed`] with DER inputs.
    pub fn from_parts(
        key: PrivatePkcs8KeyDer<'static>,
        chain: Vec<CertificateDer<'static>>,
        root: CertificateDer<'static>,
    ) -> Result<Self, IdentityError> {
        let leaf = chain
            .first()
            .ok_or_else(|| IdentityError::decode("certificate chain", "empty"))?;
        let (_, cert) = X509Certificate::from_der(leaf)
            .map_err(|e| IdentityError::decode("leaf certificate", e))?;
        let spiffe_id = spiffe_id_of_x509(&cert).ok_or(IdentityError::NoSpiffeId)??;
        let validity = cert.validity();
        let not_before = to_system_time(validity.not_before.timestamp());
        let not_after = to_system_time(validity.not_after.timestamp());
        let serial = cert.raw_serial().to_vec();
        // Catch a chain for another key, or one from another CA, now rather than at the
        // first handshake.
        CertifiedKey::from_der(
            chain.clone(),
            PrivateKeyDer::Pkcs8(key.clone_key()),
            &crate::provider(),
        )?;
        crate::verify_chain(&chain, &root, rustls::pki_types::UnixTime::now()).or_else(
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
    pub fn certified_key(&self) -> Result<CertifiedKey, IdentityError> {
        Ok(CertifiedKey::from_der(
            self.chain.clone(),
            self.key_der(),
            &crate::provider(),
        )?)
    }
}

fn to_system_time(unix_seconds: i64) -> SystemTime {
    match u64::try_from(unix_seconds) {
        Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs),
        Err(_) => UNIX_EPOCH,
    }
}

/// Every certificate in a PEM text (at least one).
pub fn certs_from_pem(
    pem: &str,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| IdentityError::decode(what, e))?;
    if certs.is_empty() {
        return Err(IdentityError::decode(what, "no CERTIFICATE block"));
    }
    Ok(certs)
}
