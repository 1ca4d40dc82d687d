//! The mesh certificate authority.
//!
//! A root is generated at start (or loaded from PEM files, or persisted in a directory so
//! restarts keep trust). Workloads send a CSR made with a key that never leaves the proxy;
//! the identity in the issued certificate comes from the caller's credential (see
//! [`crate::auth`]; the workload's registration only in the open local demo), never from
//! the CSR: whatever names the CSR asks for are replaced by the SPIFFE URI
//! `spiffe://<trust-domain>/ns/<ns>/sa/<sa>`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mesh_api::wire::Issued;
use mesh_identity::{IdentityError, LocalCa, SpiffeId};

/// File names of a persisted root in `--ca-dir`.
pub const ROOT_CERT_FILE: &str = "root-cert.pem";
/// See [`ROOT_CERT_FILE`].
pub const ROOT_KEY_FILE: &str = "root-key.pem";

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
    #[error("{path}: {source}")]
    BadRoot {
        /// The file.
        path: String,
        /// What is wrong.
        #[source]
        source: IdentityError,
    },
    /// The CSR could not be read or its signature is wrong.
    #[error("invalid CSR: {0}")]
    BadCsr(String),
    /// The namespace and service account make no valid SPIFFE ID.
    #[error("{0}")]
    BadIdentity(IdentityError),
    /// Certificate generation failed.
    #[error("{0}")]
    Generate(IdentityError),
}

/// Where the root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootSource {
    /// A fresh root for this process only.
    Generate,
    /// Load from `dir` when present, else generate and save there.
    Dir(std::path::PathBuf),
    /// A root already read (from a Kubernetes Secret, say); `origin` names where, for
    /// errors.
    Pem {
        /// Where it was read, e.g. `Secret istio-system/mesh-ca-secret`.
        origin: String,
        /// Root certificate, PEM.
        cert: String,
        /// Its private key, PEM.
        key: String,
    },
    /// Load these PEM files.
    Files {
        /// Root certificate.
        cert: std::path::PathBuf,
        /// Its private key.
        key: std::path::PathBuf,
    },
}

/// The certificate authority: the mesh's [`LocalCa`] (root and workload certificate
/// profiles, CSR signing, shared with the proxy's tests and static-file setups), plus
/// where its root comes from.
#[derive(Debug)]
pub struct Ca {
    ca: LocalCa,
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
            RootSource::Pem { origin, cert, key } => {
                let ca = LocalCa::from_pem(cert, key, trust_domain).map_err(|source| {
                    CaError::BadRoot {
                        path: origin.clone(),
                        source,
                    }
                })?;
                Ok(Self { ca })
            }
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
                write(&key, &ca.ca.key_pem())?;
                restrict_permissions(&key)?;
                write(&cert, ca.ca.root_pem())?;
                Ok(ca)
            }
        }
    }

    /// A fresh self-signed root.
    pub fn generate(trust_domain: &str) -> Result<Self, CaError> {
        Ok(Self {
            ca: LocalCa::new(trust_domain).map_err(CaError::Generate)?,
        })
    }

    fn load(cert: &Path, key: &Path, trust_domain: &str) -> Result<Self, CaError> {
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        let ca = LocalCa::from_pem(&cert_pem, &key_pem, trust_domain).map_err(|source| {
            // Name the file that is wrong.
            let path = match &source {
                IdentityError::Decode { what, .. } if what.ends_with("key") => key,
                _ => cert,
            };
            CaError::BadRoot {
                path: path.display().to_string(),
                source,
            }
        })?;
        Ok(Self { ca })
    }

    /// The root certificate, PEM.
    pub fn root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The root's private key, PEM (to persist a generated root).
    pub fn key_pem(&self) -> String {
        self.ca.key_pem()
    }

    /// The trust domain (`cluster.local`).
    pub fn trust_domain(&self) -> &str {
        self.ca.trust_domain()
    }

    /// Signs a CSR for the identity `namespace`/`service_account`, valid for `ttl`.
    pub fn sign(
        &self,
        csr_pem: &str,
        namespace: &str,
        service_account: &str,
        ttl: Duration,
    ) -> Result<Issued, CaError> {
        let spiffe_id = SpiffeId::new(self.trust_domain(), namespace, service_account)
            .map_err(CaError::BadIdentity)?;
        let expires = SystemTime::now() + ttl;
        let chain = self
            .ca
            .sign_csr(csr_pem, &spiffe_id, ttl)
            .map_err(|e| match e {
                IdentityError::Decode { reason, .. } => CaError::BadCsr(reason),
                other => CaError::Generate(other),
            })?;
        let expires_at_ms = expires
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Ok(Issued {
            chain,
            spiffe_id: spiffe_id.as_str().to_owned(),
            expires_at_ms,
        })
    }
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
        // The key of another root: its leaves would fail every handshake, so it is refused.
        let other = dir.join("other");
        Ca::start(&RootSource::Dir(other.clone()), "cluster.local").unwrap();
        let mixed = RootSource::Files {
            cert: dir.join(ROOT_CERT_FILE),
            key: other.join(ROOT_KEY_FILE),
        };
        let err = Ca::start(&mixed, "cluster.local").unwrap_err().to_string();
        assert!(
            err.starts_with(&other.join(ROOT_KEY_FILE).display().to_string())
                && err.contains("is not the private key of the root certificate"),
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
