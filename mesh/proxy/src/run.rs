//! Starting a proxy, in named steps: load the configuration, serve the admin listener,
//! bind the sidecar's listeners (so a bad address fails before anything serves), then
//! either watch the configuration files or join the mesh (register, first
//! configuration, identity, the control loop), and serve the traffic listeners. Used by
//! `main` and by tests, which bind port 0 and read the real addresses.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{Request, Response};
use mesh_api::wire;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::{self, Env, LoadError, Mode, Source, WorkloadSpec};
use crate::control::{self, ControlClient, Registration};
use crate::http::body::ProxyBody;
use crate::http::http1::DownstreamBody;
use crate::http::server::{self, ConnInfo};
use crate::inbound::Inbound;
use crate::inbound::authz;
use crate::mtls::{Mtls, TRUST_DOMAIN};
use crate::snapshot::{Snapshot, Store};
use crate::state::ProxyState;
use crate::telemetry::metrics::ServiceName;
use crate::telemetry::trace::Tracing;
use crate::tls::{self, MeshStream, MtlsMode, SpiffeId};
use crate::{admin, outbound};

/// How often the configuration files are checked for changes.
pub const RELOAD_POLL: Duration = Duration::from_millis(250);

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] LoadError),
    /// The control plane's URL is unusable.
    #[error(transparent)]
    Control(#[from] mesh_client::ClientError),
    /// Asked to stop before the first configuration arrived.
    #[error("stopped before the first configuration arrived")]
    Stopped,
    /// The trace exporter could not start.
    #[error(transparent)]
    Tracing(#[from] crate::telemetry::trace::StartError),
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

    /// Waits for every listener to finish draining, then sends the spans still
    /// waiting for their batch.
    pub async fn join(mut self) {
        while self.tasks.join_next().await.is_some() {}
        if self.state.tracing.is_some() {
            let state = self.state.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Some(t) = &state.tracing {
                    t.shutdown();
                }
            })
            .await;
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// A listener's local address, with an unspecified IP (0.0.0.0, ::) replaced by
/// loopback: the address other proxies on this machine should use.
fn reachable(l: &TcpListener) -> Option<SocketAddr> {
    let mut addr = l.local_addr().ok()?;
    if addr.ip().is_unspecified() {
        addr.set_ip([127, 0, 0, 1].into());
    }
    Some(addr)
}

/// Where Prometheus reaches the admin listener: its bound address, or, when it binds every
/// interface, the inbound listener's IP (the pod IP under Kubernetes), else loopback.
fn scrape_address(admin: SocketAddr, inbound: Option<SocketAddr>) -> SocketAddr {
    let mut addr = admin;
    if addr.ip().is_unspecified() {
        let ip = inbound
            .map(|i| i.ip())
            .filter(|ip| !ip.is_unspecified() && !ip.is_loopback())
            .unwrap_or_else(|| [127, 0, 0, 1].into());
        addr.set_ip(ip);
    }
    addr
}

/// The addresses a proxy registers: where its inbound traffic and its scrapes go.
#[derive(Debug, Clone, Copy)]
struct Advertised {
    inbound: Option<SocketAddr>,
    admin: SocketAddr,
}

/// Loads the configuration and starts every listener. In control-plane mode this waits
/// (retrying) for the first configuration; `/ready` answers 503 until then.
pub async fn start(env: &Env) -> Result<Running, StartError> {
    let (tx, rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let (workload, initial, files) = load(env)?;
    let me = workload.workload();
    let gateway = env.mode == Mode::Gateway;
    let node_ip = match env.inbound.ip() {
        ip if ip.is_unspecified() => [127, 0, 0, 1].into(),
        ip => ip,
    };
    let tracing = match &env.trace {
        Some(settings) => Some(Tracing::start(settings, &me, node_ip, gateway)?),
        None => None,
    };
    let state = Arc::new(
        ProxyState::new(
            Store::new(initial),
            me,
            workload.exchange(gateway, node_ip),
            env.access_log,
            gateway,
        )
        .with_tracing(tracing),
    );
    let admin = serve_admin(env, &state, &tx, &rx, &mut tasks).await?;
    // Sidecar listeners are bound now (their addresses go into the registration) and
    // served once the configuration is there.
    let sidecar = match env.mode {
        Mode::Sidecar => Some((bind(env.outbound).await?, bind(env.inbound).await?)),
        Mode::Gateway => None,
    };
    let inbound_addr = sidecar.as_ref().and_then(|(_, i)| reachable(i));
    match &env.source {
        Source::File(path) => {
            state.set_ready();
            tasks.spawn(watch_files(
                path.clone(),
                env.mode,
                files,
                state.clone(),
                rx.clone(),
            ));
        }
        Source::Control { url, workload, .. } => {
            let addrs = Advertised {
                inbound: inbound_addr,
                admin: scrape_address(admin, inbound_addr),
            };
            join_mesh(env, url, workload, addrs, &state, &rx, &mut tasks).await?;
        }
    }
    let (outbound, inbound, gateways) = match sidecar {
        Some((out_l, in_l)) => {
            let (outbound, inbound) =
                serve_sidecar(env, &workload, out_l, in_l, &state, &rx, &mut tasks);
            (outbound, inbound, Vec::new())
        }
        None => (
            None,
            None,
            serve_gateways(env, &state, &rx, &mut tasks).await?,
        ),
    };
    Ok(Running {
        outbound,
        inbound,
        gateways,
        admin,
        state,
        shutdown: tx,
        tasks,
    })
}

/// What we know before any listener exists: who we are, the first configuration (from
/// the files, or empty until the control plane sends one) and the files to watch.
fn load(env: &Env) -> Result<(WorkloadSpec, Snapshot, Vec<PathBuf>), StartError> {
    Ok(match &env.source {
        Source::File(path) => {
            let loaded = config::load(path, env.mode)?;
            let snapshot = Snapshot::new("1", loaded.table, loaded.file.registry)
                .with_security(loaded.security);
            (loaded.file.workload, snapshot, loaded.files)
        }
        Source::Control { workload, .. } => (workload.clone(), Snapshot::empty(), Vec::new()),
    })
}

/// What a listener serves. One type for every kind of listener, so the accept loop, our
/// HTTP/1.1 fast lane and hyper's HTTP/1 and HTTP/2 server machinery (all generic over
/// the handler) are compiled once, not once per kind: code pages are most of a sidecar's
/// memory.
#[derive(Clone)]
enum Listener {
    /// Health, metrics, config dump, `/quitquitquit`.
    Admin {
        state: Arc<ProxyState>,
        shutdown: watch::Sender<bool>,
    },
    /// The app's outbound calls (sidecar), or a gateway's port.
    Outbound(Arc<ProxyState>),
    /// Traffic for the local app.
    Inbound(Arc<Inbound>),
}

impl Listener {
    async fn handle(self, req: Request<DownstreamBody>, conn: ConnInfo) -> Response<ProxyBody> {
        match self {
            Self::Admin { state, shutdown } => admin::handle(&state, &req, &shutdown),
            Self::Outbound(state) => outbound::handle(state, req, conn).await,
            Self::Inbound(inbound) => inbound.handle(req, conn).await,
        }
    }

    /// Serves `listener` with this handler until shutdown. The one place the accept
    /// loop is started, so its handler closure is one type.
    fn serve(
        self,
        listener: TcpListener,
        transport: server::Transport,
        rx: &watch::Receiver<bool>,
        drain: Duration,
        tasks: &mut JoinSet<()>,
    ) {
        // Only the inbound listener consumes the exchange's headers; the others forward
        // an app's headers as they came.
        let peer_headers = match self {
            Self::Inbound(_) => server::PeerHeaders::SetAside,
            Self::Admin { .. } | Self::Outbound(_) => server::PeerHeaders::Keep,
        };
        let handler = move |req, conn| self.clone().handle(req, conn);
        tasks.spawn(server::serve(
            listener,
            transport,
            peer_headers,
            handler,
            rx.clone(),
            drain,
        ));
    }
}

/// Binds and serves the admin listener (first, so probes get answers during startup).
async fn serve_admin(
    env: &Env,
    state: &Arc<ProxyState>,
    tx: &watch::Sender<bool>,
    rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<SocketAddr, StartError> {
    let listener = bind(env.admin).await?;
    let admin = listener.local_addr().map_err(|source| StartError::Bind {
        addr: env.admin,
        source,
    })?;
    let admin_listener = Listener::Admin {
        state: state.clone(),
        shutdown: tx.clone(),
    };
    admin_listener.serve(listener, server::plain(), rx, Duration::ZERO, tasks);
    Ok(admin)
}

/// Control-plane mode: registers, waits for the first configuration, gets the mesh
/// identity, and keeps the configuration in sync from then on.
async fn join_mesh(
    env: &Env,
    url: &str,
    workload: &WorkloadSpec,
    addrs: Advertised,
    state: &Arc<ProxyState>,
    rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<(), StartError> {
    let registration = Registration {
        name: workload.name.clone(),
        namespace: workload.namespace.clone(),
        service: workload
            .service
            .clone()
            .or_else(|| (env.mode == Mode::Sidecar).then(|| service_of(workload))),
        service_account: workload
            .service_account
            .clone()
            .unwrap_or_else(|| "default".to_owned()),
        labels: workload.labels.clone(),
        address: addrs.inbound,
        sidecar: true,
        mode: match env.mode {
            Mode::Sidecar => wire::Mode::Sidecar,
            Mode::Gateway => wire::Mode::Gateway,
        },
        ports: Vec::new(),
        admin: Some(addrs.admin),
    };
    let control = Arc::new(ControlClient::new(url, registration, env.control_token())?);
    let mut stop = rx.clone();
    let Some(first) = control.first_config(&mut stop).await else {
        return Err(StartError::Stopped);
    };
    state.store.store(
        Snapshot::new(first.version, first.table, first.registry).with_security(first.security),
    );
    identity(&control, workload, state, rx, tasks).await;
    state.set_ready();
    tasks.spawn(control::sync(control, state.clone(), rx.clone()));
    Ok(())
}

/// The mesh identity, issued by the control plane's CA and renewed from then on.
/// Without it the proxy still serves, in plaintext.
async fn identity(
    control: &Arc<ControlClient>,
    workload: &WorkloadSpec,
    state: &ProxyState,
    rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) {
    let sa = workload
        .service_account
        .clone()
        .unwrap_or_else(|| "default".to_owned());
    match SpiffeId::new(TRUST_DOMAIN, &workload.namespace, &sa) {
        Ok(spiffe_id) => match control::issue(control, &spiffe_id)
            .await
            .and_then(|id| Ok(Mtls::new(id)?))
        {
            Ok(m) => {
                let m = Arc::new(m);
                state.set_mtls(m.clone());
                tasks.spawn(control::rotate(control.clone(), m, spiffe_id, rx.clone()));
            }
            Err(error) => {
                tracing::warn!(%error, "No mesh certificate: serving without mTLS.")
            }
        },
        Err(error) => {
            tracing::warn!(%error, "Unusable service account for a SPIFFE identity.")
        }
    }
}

/// Serves a sidecar's outbound and inbound listeners; gives their addresses.
fn serve_sidecar(
    env: &Env,
    workload: &WorkloadSpec,
    out_l: TcpListener,
    in_l: TcpListener,
    state: &Arc<ProxyState>,
    rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> (Option<SocketAddr>, Option<SocketAddr>) {
    let outbound = out_l.local_addr().ok();
    let inbound = in_l.local_addr().ok();
    Listener::Outbound(state.clone()).serve(out_l, server::plain(), rx, env.drain, tasks);
    let service = service_of(workload);
    let handler = Arc::new(Inbound {
        state: state.clone(),
        app: env.app,
        pool: Inbound::app_pool(),
        series: Default::default(),
        peers: Default::default(),
        service: ServiceName {
            host: format!("{service}.{}.svc.cluster.local", workload.namespace),
            name: service,
            namespace: workload.namespace.clone(),
        },
    });
    let transport = inbound_transport(state.clone(), workload, env.app.port());
    Listener::Inbound(handler).serve(in_l, transport, rx, env.drain, tasks);
    (outbound, inbound)
}

/// Binds and serves one listener per port of the Gateways selecting this gateway;
/// gives their addresses.
async fn serve_gateways(
    env: &Env,
    state: &Arc<ProxyState>,
    rx: &watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
) -> Result<Vec<SocketAddr>, StartError> {
    let mut ports: Vec<u32> = state
        .store
        .load()
        .table
        .listeners
        .iter()
        .map(|l| l.port)
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let mut gateways = Vec::new();
    for port in ports {
        let Ok(port) = u16::try_from(port) else {
            continue;
        };
        let local = env.gateway_ports.get(&port).copied().unwrap_or(port);
        let l = bind(SocketAddr::new(env.gateway_address, local)).await?;
        gateways.extend(l.local_addr().ok());
        Listener::Outbound(state.clone()).serve(l, server::plain(), rx, env.drain, tasks);
    }
    if gateways.is_empty() {
        tracing::warn!("No Gateway selects this gateway's labels: no listener started.");
    }
    Ok(gateways)
}

/// How long an inbound connection may take to show what it is and finish a handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The inbound transport: mesh mTLS terminated per the PeerAuthentication in force for
/// the app's port (STRICT, PERMISSIVE, DISABLE), re-read for every connection so policy
/// changes apply to new connections at once.
fn inbound_transport(
    state: Arc<ProxyState>,
    workload: &WorkloadSpec,
    port: u16,
) -> server::Transport {
    let (namespace, labels) = (workload.namespace.clone(), workload.labels.clone());
    Arc::new(move |tcp| {
        let (state, namespace, labels) = (state.clone(), namespace.clone(), labels.clone());
        Box::pin(async move {
            let snap = state.store.load();
            let mode = authz::effective_mtls(
                &snap.security.peer_authentications,
                authz::ROOT_NAMESPACE,
                &namespace,
                &labels,
                port,
            );
            let Some(m) = state.mtls() else {
                // No identity (file mode): plaintext only, and STRICT admits nobody.
                return (mode != MtlsMode::Strict).then(|| (MeshStream::Plain(tcp), None));
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls::accept(tcp, mode, &m.acceptor)).await
            {
                Ok(Ok(accepted)) => Some((accepted.stream, accepted.peer.map(Arc::from))),
                Ok(Err(error)) => {
                    tracing::debug!(%error, mode = mode.as_str(), "Inbound connection refused.");
                    None
                }
                Err(_) => None,
            }
        })
    })
}

/// The service a workload serves: its `service`, else its `app` label, else its name.
fn service_of(w: &WorkloadSpec) -> String {
    w.service
        .clone()
        .or_else(|| w.labels.get("app").cloned())
        .unwrap_or_else(|| w.name.clone())
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
                state.store.store(
                    Snapshot::new(version.to_string(), loaded.table, loaded.file.registry)
                        .with_security(loaded.security),
                );
                tracing::info!(version, "Configuration reloaded.");
            }
            Err(error) => {
                tracing::error!(%error, "Configuration change rejected; the previous configuration stays in force.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scrape_address;

    #[test]
    fn the_scrape_address_is_one_prometheus_can_reach() {
        let a = |s: &str| s.parse().unwrap();
        // Bound to one address: that one.
        assert_eq!(
            scrape_address(a("127.0.0.1:15100"), None),
            a("127.0.0.1:15100")
        );
        // Every interface: the pod IP the inbound listener has, else loopback.
        assert_eq!(
            scrape_address(a("0.0.0.0:15000"), Some(a("10.244.0.7:15006"))),
            a("10.244.0.7:15000")
        );
        assert_eq!(
            scrape_address(a("0.0.0.0:15000"), Some(a("127.0.0.1:15006"))),
            a("127.0.0.1:15000")
        );
        assert_eq!(
            scrape_address(a("0.0.0.0:15000"), None),
            a("127.0.0.1:15000")
        );
    }
}
