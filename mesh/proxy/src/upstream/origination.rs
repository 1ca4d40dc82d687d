//! TLS origination to servers outside the mesh (`DestinationRule` `tls.mode: SIMPLE` or
//! `MUTUAL`), as in the egress lab: the app speaks plain HTTP to port 80 and the sidecar
//! opens TLS to the real server, verifying its certificate against `caCertificates` (a PEM
//! file) or, without one, the public roots bundled with the proxy. `MUTUAL` also presents
//! the client certificate of `clientCertificate` and `privateKey` (PEM files).

use std::sync::Arc;

use mesh_api::networking::destination_rule::ClientTlsSettings;
use mesh_api::networking::destination_rule::TlsMode;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore};

use crate::tls;

/// Why no origination config could be built.
#[derive(Debug, thiserror::Error)]
pub enum OriginationError {
    /// The CA file could not be read or holds no usable certificate.
    #[error("caCertificates {path}: {reason}")]
    Roots {
        /// File.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// `MUTUAL` without a usable client certificate and key.
    #[error("{field} {path}: {reason}")]
    ClientCert {
        /// `clientCertificate` or `privateKey`.
        field: &'static str,
        /// File (empty when the field is missing).
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The client config for `SIMPLE` or `MUTUAL` origination with these settings.
pub fn client_config(settings: &ClientTlsSettings) -> Result<Arc<ClientConfig>, OriginationError> {
    let mut roots = RootCertStore::empty();
    match &settings.ca_certificates {
        Some(path) => {
            let bad = |reason: String| OriginationError::Roots {
                path: path.clone(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
            for cert in certs {
                roots
                    .add(cert.map_err(|e| bad(e.to_string()))?)
                    .map_err(|e| bad(e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(bad("no certificate in the file".to_owned()));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots);
    let config = match settings.mode {
        TlsMode::Mutual => {
            let (chain, key) = client_identity(settings)?;
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The certificate chain and private key `MUTUAL` presents, read from their PEM files.
fn client_identity(
    settings: &ClientTlsSettings,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), OriginationError> {
    // A credentialName is a Kubernetes secret; a sidecar started from files has no API
    // server to read it from, so it needs the files themselves.
    let missing = |field: &'static str| OriginationError::ClientCert {
        field,
        path: String::new(),
        reason: match &settings.credential_name {
            Some(name) => format!(
                "not set; credentialName {name} is a Kubernetes secret, which this proxy cannot read: give the PEM files instead"
            ),
            None => "not set".to_owned(),
        },
    };
    let cert_path = settings
        .client_certificate
        .as_deref()
        .ok_or_else(|| missing("clientCertificate"))?;
    let key_path = settings
        .private_key
        .as_deref()
        .ok_or_else(|| missing("privateKey"))?;
    let bad = |field: &'static str, path: &str, reason: String| OriginationError::ClientCert {
        field,
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| bad("clientCertificate", cert_path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("clientCertificate", cert_path, e.to_string()))?;
    if chain.is_empty() {
        return Err(bad(
            "clientCertificate",
            cert_path,
            "no certificate in the file".to_owned(),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path)
        .map_err(|e| bad("privateKey", key_path, e.to_string()))?;
    Ok((chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> ClientTlsSettings {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn mutual_without_files_says_which_one_is_missing_and_why_a_secret_is_not_enough() {
        let error = client_config(&settings(
            r#"{"mode": "MUTUAL", "credentialName": "books-creds"}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("clientCertificate"), "{error}");
        assert!(
            error.contains("credentialName books-creds is a Kubernetes secret"),
            "{error}"
        );

        let error = client_config(&settings(
            r#"{"mode": "MUTUAL", "clientCertificate": "/nonexistent/client.pem", "privateKey": "/nonexistent/key.pem"}"#,
        ))
        .unwrap_err()
        .to_string();
        assert!(
            error.starts_with("clientCertificate /nonexistent/client.pem:"),
            "{error}"
        );
    }
}
