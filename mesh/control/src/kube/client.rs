//! Finding the cluster and building the API client.
//!
//! In a pod, `kube::Config::infer` reads the service account's token and CA and the
//! `KUBERNETES_SERVICE_HOST`/`PORT` variables; outside one it reads the kubeconfig
//! (`KUBECONFIG` or `~/.kube/config`), so `mesh-control --kubernetes` also works on a
//! laptop next to a kind cluster.

use ::kube::{Client, Config};

/// The cluster could not be found or its configuration used.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Neither an in-cluster service account nor a kubeconfig was found.
    #[error("no Kubernetes cluster configuration found (not in a pod, no kubeconfig): {0}")]
    Infer(#[source] ::kube::config::InferConfigError),
    /// The configuration was found but is unusable (a bad certificate, say).
    #[error("cannot build the Kubernetes client: {0}")]
    Client(#[source] ::kube::Error),
}

/// A client for the cluster this process runs in (or the kubeconfig's current context).
pub async fn connect() -> Result<Client, ConnectError> {
    let config = Config::infer().await.map_err(ConnectError::Infer)?;
    client_for(config)
}

/// A client for an explicit configuration (tests point one at a fake API server).
pub fn client_for(config: Config) -> Result<Client, ConnectError> {
    // kube builds its TLS configuration with rustls' process-wide provider; ours is ring,
    // the only one compiled in. Installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::try_from(config).map_err(ConnectError::Client)
}
