//! The general-purpose HTTP client (DNS names, any authority, hyper's own pool): for
//! passthrough traffic and the control plane. Clusters do not use it: they keep their
//! own [`Pool`](crate::upstream::pool::Pool) per endpoint address.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::http::body::UpstreamBody;
use crate::upstream::connector::MeshConnector;

/// A general-purpose HTTP client over the mesh connector.
pub type UpstreamClient = Client<MeshConnector, UpstreamBody>;

/// A pooled HTTP/1.1 client with the pool's connect and idle timeouts, mTLS when `tls`
/// is set.
pub fn client(
    connect_timeout: Duration,
    keep_alive: bool,
    idle: Option<Duration>,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> UpstreamClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let mut b = Client::builder(TokioExecutor::new());
    b.pool_idle_timeout(idle.unwrap_or(Duration::from_secs(3600)));
    if !keep_alive {
        b.pool_max_idle_per_host(0);
    }
    b.build(MeshConnector::new(http, tls))
}
