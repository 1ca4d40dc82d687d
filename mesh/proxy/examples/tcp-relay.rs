//! The floor of what any proxy pair costs, for `scripts/bench-mesh.sh`: a TCP relay
//! that copies bytes between each downstream connection and an upstream connection of
//! its own, and does nothing else: no HTTP parsing, no routing, no metrics. An HTTP
//! proxy makes the same socket calls per request as this relay (one read and one write
//! each way), so what a proxy costs above this row is its own work, and what this row
//! costs is the kernel's and the runtime's. Same single-threaded runtime as mesh-proxy.
//!
//!   cargo run --release -p mesh-proxy --example tcp-relay -- LISTEN UPSTREAM

mod common;

use std::net::SocketAddr;

use common::Error;
use tokio::io::copy_bidirectional;
use tokio::net::TcpStream;

fn main() -> Result<(), Error> {
    common::run("tcp-relay", relay)
}

/// Copies both ways until either side closes.
async fn relay(mut downstream: TcpStream, upstream: SocketAddr) -> Result<(), Error> {
    downstream.set_nodelay(true)?;
    let mut up = TcpStream::connect(upstream).await?;
    up.set_nodelay(true)?;
    copy_bidirectional(&mut downstream, &mut up).await?;
    Ok(())
}
