//! The shutdown signal every binary of the suite waits on.

/// Resolves on SIGTERM (Kubernetes, docker stop, our runner) or Ctrl-C. The handlers
/// are installed when this is called, not when it is first awaited: a signal that comes
/// right after the port is bound must drain, not kill the process.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    let term = signal(SignalKind::terminate()).ok();
    let int = signal(SignalKind::interrupt()).ok();
    async fn recv(s: Option<Signal>) {
        match s {
            Some(mut s) => {
                s.recv().await;
            }
            None => std::future::pending::<()>().await,
        }
    }
    async move {
        tokio::select! {
            () = recv(term) => {},
            () = recv(int) => {},
        }
        tracing::info!("Shutdown signal received, draining.");
    }
}
