//! The mesh certificate authority.
//!
//! A root is generated at start (or loaded from PEM files, or persisted in a directory so
//! restarts keep trust). Workloads send a CSR made with a key that never leaves the proxy;
//! the identity in the issued certificate comes from the workload's registration
//! (namespace and service account), never from the CSR: whatever names the CSR asks for
//! are replaced by the SPIFFE URI `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.

use std::path::Path;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

/// File names of a persisted root in `--ca-dir`.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
/// See [`ROOT_CERT_FILE`].
pub const ROOT_KEY_FILE: &str = "root-key.pem";

/// How long a generated root is valid.
const ROOT_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// Issued certificates start this much in the past, for clocks slightly behind ours.
const BACKDATE: Duration = Duration::from_secs(60);

/// Why the CA could not start or sign.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// Reading or writing root files.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A root file that is not a usable certificate or key.
    #[error("{path}: {message}")]
    BadRoot {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The CSR could not be read or its signature is wrong.
    #[error("invalid CSR: {0}")]
    BadCsr(String),
    /// Certificate generation failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
}

/// Where the root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// A fresh root for this process only.
    Generate,
    /// Load from `dir` when present, else generate and save there.
    Dir(std::path::PathBuf),
    /// Load these PEM files.
    Files {
        /// Root certificate.
        cert: std::path::PathBuf,
        /// Its private key.
        key: std::path::PathBuf,
    },
}

/// An issued certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// Leaf then root, PEM.
    pub chain: Vec<String>,
    /// The identity in the leaf.
    pub spiffe_id: String,
    /// End of validity, ms since the Unix epoch.
    pub expires_at_ms: u64,
}

/// The certificate authority.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    root_pem: String,
    trust_domain: String,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<String, CaError> {
    std::fs::read_to_string(path).map_err(|source| CaError::Io {
        path: path.display().to_string(),
        source,
    })
}

fn write(path: &Path, text: &str) -> Result<(), CaError> {
    std::fs::write(path, text).map_err(|source| CaError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl Ca {
    /// Starts the CA for `trust_domain` with a root from `source`.
    pub fn start(source: &RootSource, trust_domain: &str) -> Result<Self, CaError> {
        match source {
            RootSource::Generate => Self::generate(trust_domain),
            RootSource::Files { cert, key } => Self::load(cert, key, trust_domain),
            RootSource::Dir(dir) => {
                let cert = dir.join(ROOT_CERT_FILE);
                let key = dir.join(ROOT_KEY_FILE);
                if cert.exists() && key.exists() {
                    return Self::load(&cert, &key, trust_domain);
                }
                std::fs::create_dir_all(dir).map_err(|source| CaError::Io {
                    path: dir.display().to_string(),
                    source,
                })?;
                let ca = Self::generate(trust_domain)?;
                write(&key, &ca.issuer.key().serialize_pem())?;
                restrict_permissions(&key)?;
                write(&cert, &ca.root_pem)?;
                Ok(ca)
            }
        }
    }

    /// A fresh self-signed root.
    pub fn generate(trust_domain: &str) -> Result<Self, CaError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, trust_domain);
        name.push(DnType::CommonName, "Bookinfo-RS mesh root CA");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + ROOT_VALIDITY;
        params.serial_number = Some(random_serial());
        let cert = params.self_signed(&key)?;
        Ok(Self {
            root_pem: cert.pem(),
            issuer: Issuer::new(params, key),
            trust_domain: trust_domain.to_owned(),
        })
    }

    fn load(cert: &Path, key: &Path, trust_domain: &str) -> Result<Self, CaError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let bad = |path: &Path, message: String| CaError::BadRoot {
            path: path.display().to_string(),
            message,
        };
        let key_pair = KeyPair::from_pem(&key_pem)
            .map_err(|e| bad(key, format!("not a usable private key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key_pair)
            .map_err(|e| bad(cert, format!("not a usable CA certificate: {e}")))?;
        Ok(Self {
            issuer,
            root_pem: cert_pem,
            trust_domain: trust_domain.to_owned(),
        })
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> &str {
        &self.root_pem
    }

    /// The trust domain (`cluster.local`).
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The SPIFFE ID of a service account.
    pub fn spiffe_id(&self, namespace: &str, service_account: &str) -> String {
        format!(
            "spiffe://{}/ns/{namespace}/sa/{service_account}",
            self.trust_domain
        )
    }

    /// Signs a CSR for the identity `namespace`/`service_account`, valid for `ttl`.
    pub fn sign(
        &self,
        csr_pem: &str,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| CaError::BadCsr(e.to_string()))?;
        let spiffe_id = self.spiffe_id(namespace, service_account);
        let mut params = CertificateParams::default();
        // Subject is empty as in Istio: the identity lives in the URI SAN only.
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
        let now = OffsetDateTime::now_utc();
        params.not_before = now - BACKDATE;
        params.not_after = now + ttl;
        params.serial_number = Some(random_serial());
        let request = CertificateSigningRequestParams {
            params,
            public_key: csr.public_key,
        };
        let leaf = request.signed_by(&self.issuer)?;
        let expires = now + ttl;
        let expires_at_ms = u64::try_from(expires.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        Ok(Issued {
            chain: vec![leaf.pem(), self.root_pem.clone()],
            spiffe_id,
            expires_at_ms,
        })
    }
}

/// 16 random bytes with the top bit clear (serials are positive integers).
fn random_serial() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f;
    SerialNumber::from_slice(&bytes)
}

#[cfg(unix)]
fn restrict_permissions(path: &Path) -> Result<(), CaError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|source| {
        CaError::Io {
            path: path.display().to_string(),
            source,
        }
    })
}

#[cfg(not(unix))]
fn restrict_permissions(_path: &Path) -> Result<(), CaError> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_persisted_root_is_reloaded() {
        let dir = std::env::temp_dir().join(format!("mesh-control-ca-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = Ca::start(&RootSource::Dir(dir.clone()), "cluster.local").unwrap();
        let second = Ca::start(&RootSource::Dir(dir.clone()), "cluster.local").unwrap();
        assert_eq!(first.root_pem(), second.root_pem());
        let files = RootSource::Files {
            cert: dir.join(ROOT_CERT_FILE),
            key: dir.join(ROOT_CERT_FILE), // a certificate is not a key
        };
        let err = Ca::start(&files, "cluster.local").unwrap_err();
        assert!(
            err.to_string().contains("not a usable private key"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_csr_is_rejected() {
        let ca = Ca::generate("cluster.local").unwrap();
        let err = ca
            .sign("hello", "default", "sa", Duration::from_secs(60))
            .unwrap_err();
        assert!(matches!(err, CaError::BadCsr(_)));
    }
}
