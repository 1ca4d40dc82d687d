//! What the benchmark's reference proxies share: `NAME LISTEN UPSTREAM` arguments, the
//! single-threaded runtime mesh-proxy runs on, and one task per downstream connection.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

pub(crate) type Error = Box<dyn std::error::Error + Send + Sync>;

/// Accepts connections on LISTEN (the first argument) and serves each one with
/// `serve(downstream, UPSTREAM)` in a task of its own.
pub(crate) fn run<F, Fut>(name: &str, serve: F) -> Result<(), Error>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Copy + 'static,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: {name} LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(64);
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: SocketAddr = upstream.parse()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async move {
            let listener = TcpListener::bind(listen).await?;
            loop {
                let (downstream, _) = listener.accept().await?;
                let name = name.to_owned();
                let connection = serve(downstream, upstream);
                tokio::spawn(async move {
                    if let Err(error) = connection.await {
                        eprintln!("{name}: {error}");
                    }
                });
            }
        })
}
