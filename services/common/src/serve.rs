//! Binding and serving with graceful shutdown.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::Router;
use axum::serve::ListenerExt;
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;

use crate::config::Listen;

/// Binds the listen address. For `::` the socket is made dual-stack explicitly (the
/// Kubernetes dual-stack manifests need IPv4 and IPv6 on one port); if the host has no
/// IPv6 at all, it falls back to `0.0.0.0`.
pub fn bind(listen: Listen) -> io::Result<TcpListener> {
    let addr = SocketAddr::new(listen.ip, listen.port);
    match bind_addr(addr) {
        Ok(l) => Ok(l),
        Err(e)
            if listen.ip == IpAddr::from([0u16; 8])
                && e.kind() == io::ErrorKind::AddrNotAvailable =>
        {
            bind_addr(SocketAddr::new(
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                listen.port,
            ))
        }
        Err(e) => Err(e),
    }
}

fn bind_addr(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    TcpListener::from_std(socket.into())
}

/// Serves `router` until SIGTERM or Ctrl-C, then stops accepting and lets in-flight
/// requests finish. Prefer [`start`], which listens for the signals before binding.
pub async fn run(listener: TcpListener, router: Router) -> io::Result<()> {
    run_until(listener, router, shutdown_signal()).await
}

/// [`run`] with a shutdown future made earlier.
pub async fn run_until(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    // Bookinfo answers are small and written in one go; Nagle would only add latency.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

pub use crate::shutdown::shutdown_signal;

/// The tail of every service's `main`: bind, log where we listen, serve until a signal.
/// A bind failure is reported as one line naming the address (exit code 1).
pub async fn start(program: &str, listen: Listen, router: Router) -> std::process::ExitCode {
    let shutdown = shutdown_signal();
    let listener = match bind(listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "{program}: cannot listen on {}: {e}",
                SocketAddr::new(listen.ip, listen.port)
            );
            return std::process::ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, "{program} listening."),
        Err(error) => tracing::warn!(%error, "{program} listening on an unknown address."),
    }
    match run_until(listener, router, shutdown).await {
        Ok(()) => {
            tracing::info!("{program} stopped.");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            tracing::error!(%error, "{program} server failed.");
            std::process::ExitCode::FAILURE
        }
    }
}
