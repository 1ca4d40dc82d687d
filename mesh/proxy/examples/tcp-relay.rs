//! The floor of what any proxy pair costs, for `scripts/bench-mesh.sh`: a TCP relay
//! that copies bytes between each downstream connection and an upstream connection of
//! its own, and does nothing else: no HTTP parsing, no routing, no metrics. An HTTP
//! proxy makes the same socket calls per request as this relay (one read and one write
//! each way), so what a proxy costs above this row is its own work, and what this row
//! costs is the kernel's and the runtime's. Same single-threaded runtime as mesh-proxy.
//!
//!   cargo run --release -p mesh-proxy --example tcp-relay -- LISTEN UPSTREAM

use std::net::SocketAddr;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};

type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(upstream)) = (args.next(), args.next()) else {
        eprintln!("usage: tcp-relay LISTEN_ADDR UPSTREAM_ADDR");
        std::process::exit(64);
    };
    let listen: SocketAddr = listen.parse()?;
    let upstream: SocketAddr = upstream.parse()?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(serve(listen, upstream))
}

async fn serve(listen: SocketAddr, upstream: SocketAddr) -> Result<(), Error> {
    let listener = TcpListener::bind(listen).await?;
    loop {
        let (downstream, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(error) = relay(downstream, upstream).await {
                eprintln!("tcp-relay: {error}");
            }
        });
    }
}

/// Copies both ways until either side closes.
async fn relay(mut downstream: TcpStream, upstream: SocketAddr) -> Result<(), Error> {
    downstream.set_nodelay(true)?;
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    copy_bidirectional(&mut downstream, &mut up).await?;
    Ok(())
}
