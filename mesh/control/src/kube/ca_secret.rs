//! The CA root kept in a Kubernetes Secret, the way istiod keeps its self-signed root in
//! `istio-ca-secret`: the first control plane generates the root and creates the Secret,
//! every later one (a new pod after a rollout, an eviction, a lost node) reads it back.
//! So the sidecars' certificates stay trusted when the control-plane pod is replaced,
//! which an `emptyDir` cannot give.
//!
//! The Secret holds `root-cert.pem` and `root-key.pem` (the `--ca-dir` file names). Two
//! pods starting at once may both find no Secret: the one whose create loses (409) reads
//! the winner's, so both issue from the same root.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use crate::ca::{Ca, CaError, ROOT_CERT_FILE, ROOT_KEY_FILE, RootSource};

/// Why the root could not be read from, or kept in, its Secret.
#[derive(Debug, thiserror::Error)]
pub enum CaSecretError {
    /// The API server refused or failed (RBAC: get and create on secrets).
    #[error("Secret {secret}: {source}")]
    Api {
        /// `namespace/name`.
        secret: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// The Secret exists but lacks a key, or a key is not text.
    #[error(
        "Secret {secret}: no usable {key} (it must hold {ROOT_CERT_FILE} and {ROOT_KEY_FILE}, PEM)"
    )]
    Missing {
        /// `namespace/name`.
        secret: String,
        /// The key.
        key: &'static str,
    },
    /// Generating a new root failed.
    #[error("generating a CA root for Secret {secret}: {source}")]
    Generate {
        /// `namespace/name`.
        secret: String,
        /// The cause.
        #[source]
        source: CaError,
    },
}

/// The root of the Secret `namespace`/`name`, created with a new root when it does not
/// exist yet.
pub async fn root_source(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    trust_domain: &str,
) -> Result<RootSource, CaSecretError> {
    let secret = format!("{namespace}/{name}");
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let api_error = |source| CaSecretError::Api {
        secret: secret.clone(),
        source,
    };
    if let Some(found) = api.get_opt(name).await.map_err(api_error)? {
        return read(&found, &secret);
    }
    let ca = Ca::generate(trust_domain).map_err(|source| CaSecretError::Generate {
        secret: secret.clone(),
        source,
    })?;
    let (cert, key) = (ca.root_pem().to_owned(), ca.key_pem());
    let new = Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(namespace.to_owned()),
            labels: Some(BTreeMap::from([(
                "app".to_owned(),
                "mesh-control".to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([
            (
                ROOT_CERT_FILE.to_owned(),
                ByteString(cert.clone().into_bytes()),
            ),
            (
                ROOT_KEY_FILE.to_owned(),
                ByteString(key.clone().into_bytes()),
            ),
        ])),
        ..Secret::default()
    };
    match api.create(&PostParams::default(), &new).await {
        Ok(_) => {
            tracing::info!(%secret, "created the CA root and kept it in its Secret");
            Ok(RootSource::Pem {
                origin: format!("Secret {secret}"),
                cert,
                key,
            })
        }
        // Another control plane created it first: issue from its root, not ours.
        Err(kube::Error::Api(status)) if status.is_already_exists() => {
            match api.get_opt(name).await.map_err(api_error)? {
                Some(found) => read(&found, &secret),
                None => Err(CaSecretError::Missing {
                    secret: secret.clone(),
                    key: ROOT_CERT_FILE,
                }),
            }
        }
        Err(source) => Err(api_error(source)),
    }
}

fn read(found: &Secret, secret: &str) -> Result<RootSource, CaSecretError> {
    let text = |key: &'static str| {
        found
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .and_then(|bytes| String::from_utf8(bytes.0.clone()).ok())
            .ok_or_else(|| CaSecretError::Missing {
                secret: secret.to_owned(),
                key,
            })
    };
    Ok(RootSource::Pem {
        origin: format!("Secret {secret}"),
        cert: text(ROOT_CERT_FILE)?,
        key: text(ROOT_KEY_FILE)?,
    })
}
