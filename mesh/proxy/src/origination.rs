//! TLS origination to servers outside the mesh (`DestinationRule` `tls.mode: SIMPLE`), as
//! in the egress lab: the app speaks plain HTTP to port 80 and the sidecar opens TLS to
//! the real server, verifying its certificate against `caCertificates` (a PEM file) or,
//! without one, the public roots bundled with the proxy.

use std::sync::Arc;

use mesh_api::networking::destination_rule::ClientTlsSettings;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
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
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// The client config for `SIMPLE` origination with these settings.
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
    let config = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
