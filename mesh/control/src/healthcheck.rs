//! `mesh-control healthcheck`: asks the running control plane's `/healthz` on loopback and
//! exits 0 when it answers 200. The container image's HEALTHCHECK runs it, so the image
//! needs no HTTP client of its own (it is `FROM scratch`, and every megabyte counts).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::time::Duration;

/// The port of `MESH_CONTROL_LISTEN` (default 15010), asked on 127.0.0.1.
fn target() -> Result<SocketAddr, String> {
    let listen =
        std::env::var("MESH_CONTROL_LISTEN").unwrap_or_else(|_| "127.0.0.1:15010".to_owned());
    let addr: SocketAddr = listen.parse().map_err(|_| {
        format!("MESH_CONTROL_LISTEN={listen:?} is not an address such as 0.0.0.0:15010")
    })?;
    Ok(SocketAddr::from(([127, 0, 0, 1], addr.port())))
}

fn check() -> Result<(), String> {
    let addr = target()?;
    let timeout = Duration::from_secs(2);
    let mut stream = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("cannot send to {addr}: {e}"))?;
    let mut answer = Vec::new();
    stream
        .take(4096)
        .read_to_end(&mut answer)
        .map_err(|e| format!("no answer from {addr}: {e}"))?;
    let status = String::from_utf8_lossy(&answer);
    let line = status.lines().next().unwrap_or("");
    if line.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(format!("{addr}/healthz answered {line:?}"))
    }
}

/// Runs the check: exit 0 when healthy, 1 with one line on stderr otherwise.
pub(crate) fn run() -> ExitCode {
    match check() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mesh-control healthcheck: {e}");
            ExitCode::FAILURE
        }
    }
}
