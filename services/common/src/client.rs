//! The outbound HTTP client every service uses for its upstream calls.
//!
//! It is a plain `reqwest` client, which honours `HTTP_PROXY` / `NO_PROXY`: in the mesh
//! the app's environment points `HTTP_PROXY` at the local sidecar, so every call reaches
//! it as a forward-proxy request naming the destination service. The app never knows.

use std::time::Duration;

/// Which proxy outbound calls go through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proxy {
    /// `HTTP_PROXY` / `NO_PROXY` from the environment: in the mesh, the local sidecar.
    FromEnvironment,
    /// No proxy. Tests use it so a proxy set on the machine cannot capture their calls.
    Direct,
    /// This proxy URL for every call (tests that put a sidecar in front of a service).
    Via(String),
}

/// How the client is built.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Reuse connections between calls. productpage turns this off, as the original
    /// does, so that every page is routed independently even without a mesh.
    pub keep_alive: bool,
    /// Which proxy to use.
    pub proxy: Proxy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            keep_alive: true,
            proxy: Proxy::FromEnvironment,
        }
    }
}

/// Installs the ring crypto provider for rustls once per process. reqwest is built
/// without its own provider, and building any client without one panics.
pub fn install_crypto_provider() {
    // Err only means a provider is already installed, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Builds the outbound client.
pub fn build(opts: ClientOptions) -> Result<reqwest::Client, reqwest::Error> {
    install_crypto_provider();
    let mut b = reqwest::Client::builder().tcp_nodelay(true);
    if !opts.keep_alive {
        b = b.pool_max_idle_per_host(0);
    } else {
        b = b.pool_idle_timeout(Duration::from_secs(30));
    }
    match opts.proxy {
        Proxy::FromEnvironment => {}
        Proxy::Direct => b = b.no_proxy(),
        Proxy::Via(url) => b = b.no_proxy().proxy(reqwest::Proxy::all(url)?),
    }
    b.build()
}
