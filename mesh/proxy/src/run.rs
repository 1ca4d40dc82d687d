//! Starting a proxy: load the configuration, bind every listener (so a bad address fails
//! before anything serves), spawn the servers, and watch the configuration files for
//! changes. Used by `main` and by tests, which bind port 0 and read the real addresses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cluster::client;
use crate::config::{self, Env, LoadError, Mode};
use crate::inbound::{AllowAll, Inbound};
use crate::snapshot::{Snapshot, Store};
use crate::state::ProxyState;
use crate::telemetry::ServiceName;
use crate::{admin, outbound, server};

/// How often the configuration files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_millis(250);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] LoadError),
    /// A listener could not bind.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// A started proxy.
#[derive(Debug)]
pub struct Running {
    /// Outbound listener (sidecar mode).
    pub outbound: Option<SocketAddr>,
    /// Inbound listener (sidecar mode).
    pub inbound: Option<SocketAddr>,
    /// Gateway listeners (gateway mode).
    pub gateways: Vec<SocketAddr>,
    /// Admin listener.
    pub admin: SocketAddr,
    /// Shared state (current snapshot, metrics).
    pub state: Arc<ProxyState>,
    shutdown: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Running {
    /// Asks every listener to stop and drain.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Resolves when the proxy has been asked to stop (`/quitquitquit`, or [`Self::shutdown`]).
    pub async fn stopped(&self) {
        let mut rx = self.shutdown.subscribe();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Waits for every listener to finish draining.
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Loads the configuration and starts every listener.
pub async fn start(env: &Env) -> Result<Running, StartError> {
    let loaded = config::load(&env.config, env.mode)?;
    let listeners = loaded.table.listeners.clone();
    let workload = loaded.file.workload.clone();
    let snapshot = Snapshot::new("1", loaded.table, loaded.file.registry);
    let state = Arc::new(ProxyState::new(
        Store::new(snapshot),
        workload.workload(),
        env.access_log,
    ));
    let (tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();

    let admin_listener = bind(env.admin).await?;
    let admin = admin_listener
        .local_addr()
        .map_err(|source| StartError::Bind {
            addr: env.admin,
            source,
        })?;
    {
        let (state, tx) = (state.clone(), tx.clone());
        let handler = move |req, _conn| {
            let resp = admin::handle(&state, &req, &tx);
            async move { resp }
        };
        tasks.spawn(server::serve(
            admin_listener,
            handler,
            rx.clone(),
            Duration::ZERO,
        ));
    }

    let (mut outbound_addr, mut inbound_addr, mut gateways) = (None, None, Vec::new());
    match env.mode {
        Mode::Sidecar => {
            let l = bind(env.outbound).await?;
            outbound_addr = l.local_addr().ok();
            let st = state.clone();
            tasks.spawn(server::serve(
                l,
                move |req, conn| outbound::handle(st.clone(), req, conn),
                rx.clone(),
                env.drain,
            ));

            let l = bind(env.inbound).await?;
            inbound_addr = l.local_addr().ok();
            let service = workload
                .service
                .clone()
                .or_else(|| workload.labels.get("app").cloned())
                .unwrap_or_else(|| workload.name.clone());
            let inbound = Arc::new(Inbound {
                state: state.clone(),
                app: env.app,
                client: client(mesh_api::defaults::DEFAULT_CONNECT_TIMEOUT, true, None),
                policy: Box::new(AllowAll),
                service: ServiceName {
                    host: format!("{service}.{}.svc.cluster.local", workload.namespace),
                    name: service,
                    namespace: workload.namespace.clone(),
                },
            });
            tasks.spawn(server::serve(
                l,
                move |req, conn| inbound.clone().handle(req, conn),
                rx.clone(),
                env.drain,
            ));
        }
        Mode::Gateway => {
            let mut ports: Vec<u32> = listeners.iter().map(|l| l.port).collect();
            ports.sort_unstable();
            ports.dedup();
            for port in ports {
                let Ok(port) = u16::try_from(port) else {
                    continue;
                };
                let l = bind(SocketAddr::new(env.gateway_address, port)).await?;
                gateways.extend(l.local_addr().ok());
                let st = state.clone();
                tasks.spawn(server::serve(
                    l,
                    move |req, conn| outbound::handle(st.clone(), req, conn),
                    rx.clone(),
                    env.drain,
                ));
            }
            if gateways.is_empty() {
                tracing::warn!("No Gateway selects this gateway's labels: no listener started.");
            }
        }
    }

    tasks.spawn(watch_files(
        env.config.clone(),
        env.mode,
        loaded.files,
        state.clone(),
        rx,
    ));
    Ok(Running {
        outbound: outbound_addr,
        inbound: inbound_addr,
        gateways,
        admin,
        state,
        shutdown: tx,
        tasks,
    })
}

fn mtimes(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

/// Reloads the configuration when any file it came from changes. A failed reload keeps
/// the running configuration and logs the precise error.
async fn watch_files(
    path: PathBuf,
    mode: Mode,
    mut files: Vec<PathBuf>,
    state: Arc<ProxyState>,
    mut stop: watch::Receiver<bool>,
) {
    let mut seen = mtimes(&files);
    let mut version = 1u64;
    loop {
        tokio::select! {
            () = tokio::time::sleep(RELOAD_POLL) => {}
            _ = stop.changed() => return,
        }
        let now = mtimes(&files);
        if now == seen {
            continue;
        }
        seen = now;
        match config::load(&path, mode) {
            Ok(loaded) => {
                version += 1;
                files = loaded.files;
                seen = mtimes(&files);
                state.store.store(Snapshot::new(
                    version.to_string(),
                    loaded.table,
                    loaded.file.registry,
                ));
                tracing::info!(version, "Configuration reloaded.");
            }
            Err(error) => {
                tracing::error!(%error, "Configuration change rejected; the previous configuration stays in force.")
            }
        }
    }
}
