//! Accept loop shared by every listener: HTTP/1.1 and h2c on one port, one task per
//! connection, and a graceful drain: on shutdown we stop accepting, let open
//! connections finish their requests, and give up after the drain period.
//!
//! Each connection first goes through a [`Transport`] step: plain for the outbound and
//! admin listeners, mTLS termination per PeerAuthentication for the inbound one. It runs
//! inside the connection's task, so a slow handshake never holds up the accept loop.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::http::body::ProxyBody;
pub use crate::http::http1::PeerHeaders;
use crate::http::http1::{self, DownstreamBody, Outcome};
use crate::http::respond;
use crate::telemetry::peer::Received;
use crate::tls::MeshStream;

/// The two ends of a downstream connection, and who the peer is.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The client.
    pub remote: SocketAddr,
    /// Our listener.
    pub local: SocketAddr,
    /// The peer's SPIFFE ID when it connected over mesh mTLS.
    pub peer: Option<Arc<str>>,
    /// The peer metadata exchange's headers of this request, when the fast lane set
    /// them aside ([`PeerHeaders::SetAside`]): then the request's header map has none of
    /// them. `None` when the listener keeps them or hyper read the request: whatever was
    /// sent is still in the map.
    pub exchange: Option<Received>,
}

/// Turns an accepted socket into the stream to serve (or refuses it: `None` closes).
pub type Transport = Arc<
    dyn Fn(
            TcpStream,
        ) -> Pin<Box<dyn Future<Output = Option<(MeshStream, Option<Arc<str>>)>> + Send>>
        + Send
        + Sync,
>;

/// The plain transport: no TLS.
pub fn plain() -> Transport {
    Arc::new(|tcp| Box::pin(async move { Some((MeshStream::Plain(tcp), None)) }))
}

/// Serves `handler` on `listener` until `shutdown` turns true, then drains for at most
/// `drain`. `peer_headers` says whether the fast lane sets the peer metadata exchange's
/// headers aside ([`ConnInfo::exchange`]).
pub async fn serve<H, F>(
    listener: TcpListener,
    transport: Transport,
    peer_headers: PeerHeaders,
    handler: H,
    mut shutdown: watch::Receiver<bool>,
    drain: Duration,
) where
    H: Fn(Request<DownstreamBody>, ConnInfo) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<ProxyBody>> + Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, remote) = match accepted {
                    Ok(a) => a,
                    Err(error) => {
                        // Out of file descriptors and the like: back off instead of spinning.
                        tracing::warn!(%error, "Accept failed.");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let local = stream.local_addr().unwrap_or(remote);
                let (h, transport, watcher) = (handler.clone(), transport.clone(), graceful.watcher());
                let down = shutdown.clone();
                tokio::spawn(async move {
                    let Some((io, peer)) = transport(stream).await else { return };
                    let conn = ConnInfo { remote, local, peer, exchange: None };
                    // The fast lane first; hyper takes over for anything it does not
                    // serve. The watcher is held throughout so the drain waits for both.
                    let fast = http1::serve(
                        io,
                        peer_headers,
                        |req, exchange| h(req, ConnInfo { exchange, ..conn.clone() }),
                        down,
                    )
                    .await;
                    let Outcome::HandOver(io) = fast else { return };
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let (h, conn) = (h.clone(), conn.clone());
                        async move {
                            let resp = h(req.map(DownstreamBody::Hyper), conn).await;
                            // A hang-up (a fault's reset or blackhole) is an error to hyper:
                            // it closes an HTTP/1.1 connection without an answer and resets
                            // an HTTP/2 stream, as a peer that cut the connection would.
                            if resp.extensions().get::<respond::Hangup>().is_some() {
                                return Err(respond::HungUp);
                            }
                            Ok(resp)
                        }
                    });
                    let builder = auto::Builder::new(TokioExecutor::new());
                    let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
                    if let Err(error) = watcher.watch(connection.into_owned()).await {
                        tracing::debug!(%error, "Connection ended with an error.");
                    }
                });
            }
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("Drain period over with connections still open.");
    }
}
