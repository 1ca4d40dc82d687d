//! A plain proxy on hyper and tokio with no logic at all, for `scripts/bench-mesh.sh`:
//! an HTTP/1.1 reverse proxy (no routing, metrics, retries or pool: one upstream
//! connection per downstream connection), on the same single-threaded runtime as
//! mesh-proxy. It shows what a proxy costs that leaves all of HTTP to the library;
//! mesh-proxy speaks the common case itself and carries the whole mesh on top.
//!
//!   cargo run --release -p mesh-proxy --example bare-proxy -- LISTEN UPSTREAM

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use common::Error;
use http::{Request, Response, Uri};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Mutex;

fn main() -> Result<(), Error> {
    common::run("bare-proxy", relay)
}

/// Serves one downstream connection over one upstream connection.
async fn relay(downstream: TcpStream, upstream: SocketAddr) -> Result<(), Error> {
    downstream.set_nodelay(true)?;
    let up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    let (sender, connection) = http1::handshake::<_, Incoming>(TokioIo::new(up)).await?;
    tokio::spawn(connection);
    let sender = Arc::new(Mutex::new(sender));
    let service = hyper::service::service_fn(move |req| forward(sender.clone(), req));
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(downstream), service)
        .await?;
    Ok(())
}

/// Sends one request upstream in origin form.
async fn forward(
    sender: Arc<Mutex<http1::SendRequest<Incoming>>>,
    mut req: Request<Incoming>,
) -> Result<Response<Incoming>, Error> {
    let origin_form = req.uri().path_and_query().map_or("/", |p| p.as_str());
    *req.uri_mut() = origin_form.parse::<Uri>()?;
    let mut sender = sender.lock().await;
    sender.ready().await?;
    Ok(sender.send_request(req).await?)
}
