//! The control plane's state and the operations the API exposes.
//!
//! Each part sits behind its own short-lived mutex (never held across an await); every
//! change that proxies must see bumps the global version, which wakes the long polls.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use mesh_api::analyze::{Finding, analyze};
use mesh_api::compile::now_ms;
use mesh_api::host::qualify;
use mesh_api::wire::{
    ChangeRecord, ErrorRecord, FaultRequest, Graph, Issued, LeaseView, Overview, ProxyConfig,
    ProxyStatus, ResourceEntry, ServiceDescription, ServiceOverview, WorkloadSpec, WorkloadView,
};
use mesh_api::{Kind, ProxyScope, Resource};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::ca::{Ca, CaError, RootSource};
use crate::error::AppError;
use crate::faults::{FaultSpec, Faults};
use crate::graph::{self, Scrapes};
use crate::metrics::{Gauges, Metrics};
use crate::push::{Hub, compile_for};
use crate::registry::Workloads;
use crate::source::{ConfigSource, NotifyingSource, SourceError, SourceFile};
use crate::store::{Applied, Deleted, Rejected, Store};

/// Longest long poll a caller may ask for with `?wait=`.
pub const MAX_WAIT: Duration = Duration::from_secs(300);

/// How long after start proxies holding a configuration of an earlier run keep it, so the
/// registry can refill first (see [`Control::poll`]). Proxies retry an unreachable control
/// plane at most every 3.2 s and register again 200 ms after their first poll is refused
/// with 404, so within about 3.5 s of a restart every live proxy is back; 5 s covers that
/// with room for a slow machine.
pub const REGISTRATION_GRACE: Duration = Duration::from_secs(5);
/// How many recent changes the dashboard lists.
const MAX_CHANGES: usize = 20;

/// Namespace whose selector-less security policies apply mesh-wide (Istio's root namespace).
const ROOT_NAMESPACE: &str = "istio-system";

/// Why a configuration source could not be loaded at start.
#[derive(Debug, thiserror::Error)]
pub enum LoadSourceError {
    /// Its files could not be read.
    #[error(transparent)]
    Read(#[from] SourceError),
    /// They hold an invalid configuration (the one-line summary; nothing was applied).
    #[error(transparent)]
    Invalid(#[from] Rejected),
}

/// Startup settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// SPIFFE trust domain.
    pub trust_domain: String,
    /// Default lifetime of workload certificates.
    pub cert_ttl: Duration,
    /// Where the CA root comes from.
    pub root: RootSource,
    /// Default long-poll wait.
    pub poll_wait: Duration,
    /// After start, how long proxies that hold a configuration of an earlier run wait for
    /// their next one while workloads register again ([`REGISTRATION_GRACE`]).
    pub registration_grace: Duration,
    /// How many bytes of spans the embedded trace store keeps (oldest trace out first).
    pub trace_store_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            trust_domain: "cluster.local".to_owned(),
            cert_ttl: Duration::from_secs(24 * 3600),
            root: RootSource::Generate,
            poll_wait: Duration::from_secs(30),
            registration_grace: REGISTRATION_GRACE,
            trace_store_bytes: crate::traces::DEFAULT_BUDGET_BYTES,
        }
    }
}

/// Locks a mutex; a panic elsewhere while holding it does not make the data unusable
/// (every update is a single assignment or a validated swap).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The control plane.
#[derive(Debug)]
pub struct Control {
    store: Mutex<Store>,
    workloads: Mutex<Workloads>,
    faults: Mutex<Faults>,
    /// Wakes the fault expiry task when a lease is added (its deadline may be earlier).
    faults_changed: Arc<Notify>,
    hub: Hub,
    ca: Ca,
    metrics: Metrics,
    settings: Settings,
    /// The first version of this run: proxies holding a lower one were configured by an
    /// earlier run of the control plane.
    first_version: u64,
    /// End of the registration grace (start + [`Settings::registration_grace`]).
    grace_until: Instant,
    /// Recent traces the proxies exported to us.
    traces: crate::traces::TraceStore,
    /// The chaos experiments the runner reports.
    experiments: crate::experiments::Experiments,
    /// The proxies' metrics, for the dashboard's graph.
    scrapes: Mutex<Scrapes>,
    /// Recent changes taken, oldest first, at most [`MAX_CHANGES`].
    changes: Mutex<VecDeque<ChangeRecord>>,
}

impl Control {
    /// A control plane with an empty configuration.
    pub fn new(settings: Settings) -> Result<Arc<Self>, CaError> {
        let ca = Ca::start(&settings.root, &settings.trust_domain)?;
        let hub = Hub::new();
        Ok(Arc::new(Self {
            first_version: hub.current(),
            grace_until: Instant::now() + settings.registration_grace,
            store: Mutex::new(Store::new()),
            workloads: Mutex::new(Workloads::new()),
            faults: Mutex::new(Faults::new()),
            faults_changed: Arc::new(Notify::new()),
            hub,
            ca,
            metrics: Metrics::new(),
            traces: crate::traces::TraceStore::new(settings.trace_store_bytes),
            experiments: crate::experiments::Experiments::default(),
            settings,
            scrapes: Mutex::new(Scrapes::new()),
            changes: Mutex::new(VecDeque::new()),
        }))
    }

    /// The embedded trace store.
    pub fn traces(&self) -> &crate::traces::TraceStore {
        &self.traces
    }

    /// The chaos experiments reported.
    pub fn experiments(&self) -> &crate::experiments::Experiments {
        &self.experiments
    }

    /// The version in force.
    pub fn version(&self) -> u64 {
        self.hub.current()
    }

    /// Starts the expiry tasks (workloads, fault leases). They stop when the control
    /// plane is dropped. Needs a tokio runtime.
    pub fn start_background(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        tokio::spawn(expire_workloads(weak.clone()));
        tokio::spawn(expire_faults(weak.clone()));
        tokio::spawn(scrape_proxies(weak));
    }

    /// Remembers a change taken at `version`, for the dashboard.
    fn changed(&self, version: u64, change: String) {
        let mut changes = lock(&self.changes);
        if changes.len() == MAX_CHANGES {
            changes.pop_front();
        }
        changes.push_back(ChangeRecord {
            at_ms: now_ms(),
            version: version.to_string(),
            change,
        });
    }

    /// Recent changes taken, oldest first.
    pub fn changes(&self) -> Vec<ChangeRecord> {
        lock(&self.changes).iter().cloned().collect()
    }

    /// The live service graph; asking for it keeps the proxies' metrics read for
    /// [`graph::IDLE_AFTER`].
    pub fn graph(&self) -> Graph {
        let workloads = self.workloads();
        let mut scrapes = lock(&self.scrapes);
        scrapes.want(Instant::now());
        scrapes.graph(&workloads, now_ms())
    }

    /// Loads a source once (at start); an invalid set is an error.
    pub fn load_source(
        &self,
        source: &mut dyn ConfigSource,
    ) -> Result<Vec<String>, LoadSourceError> {
        match source.poll()? {
            None => Ok(Vec::new()),
            Some(files) => Ok(self.reload(&*source, &files)?),
        }
    }

    /// Polls `source` every `interval` on a thread of its own (file reads block), applying
    /// each change; stops when the control plane is dropped.
    pub fn watch_source(self: &Arc<Self>, mut source: Box<dyn ConfigSource>, interval: Duration) {
        let weak = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("config-source".to_owned())
            .spawn(move || {
                loop {
                    std::thread::sleep(interval);
                    let Some(control) = weak.upgrade() else {
                        return;
                    };
                    control.poll_source(source.as_mut());
                }
            });
        if let Err(error) = spawned {
            tracing::error!(%error, "cannot start the configuration watcher");
        }
    }

    /// Polls `source` each time it says it changed (a task on the runtime), applying each
    /// change the way [`Control::watch_source`] does; stops when the control plane is
    /// dropped or the source ends.
    pub fn follow_source<S: NotifyingSource + 'static>(self: &Arc<Self>, mut source: S) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            while source.changed().await {
                let Some(control) = weak.upgrade() else {
                    return;
                };
                control.poll_source(&mut source);
            }
        });
    }

    fn poll_source(&self, source: &mut dyn ConfigSource) {
        match source.poll() {
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "configuration source unreadable; keeping the last good configuration")
            }
            Ok(Some(files)) => match self.reload(&*source, &files) {
                Ok(warnings) => {
                    for warning in warnings {
                        tracing::warn!("{warning}");
                    }
                    tracing::info!(
                        version = self.version(),
                        source = source.name(),
                        files = files.len(),
                        "configuration reloaded"
                    );
                    self.changed(
                        self.version(),
                        format!("reloaded {} ({} files)", source.name(), files.len()),
                    );
                }
                Err(rejected) => {
                    for error in &rejected.errors {
                        tracing::error!("{error}");
                    }
                    tracing::error!(
                        "{}; the last good configuration stays in force",
                        rejected.summary
                    );
                }
            },
        }
    }

    /// The one path of "a new file set arrived" for every source: validate, count and log
    /// what was left out, publish.
    fn reload(
        &self,
        source: &dyn ConfigSource,
        files: &[SourceFile],
    ) -> Result<Vec<String>, Rejected> {
        let result = lock(&self.store).replace_source(source.name(), files, source.admission());
        match result {
            Ok(reloaded) => {
                for skipped in &reloaded.skipped {
                    self.metrics.config_error();
                    for error in &skipped.rejected.errors {
                        tracing::error!("{error}");
                    }
                    tracing::error!(
                        "{} is invalid and left out; the rest of {} applies",
                        skipped.file,
                        source.name()
                    );
                }
                self.hub.bump();
                Ok(reloaded.warnings)
            }
            Err(rejected) => {
                self.metrics.config_error();
                Err(rejected)
            }
        }
    }

    fn rejected(&self, rejected: Rejected) -> AppError {
        self.metrics.config_error();
        AppError::InvalidConfig {
            error: rejected.summary,
            errors: rejected.errors,
        }
    }

    /// Applies a YAML text; returns what was applied and the new version.
    pub fn apply(&self, file: &str, text: &str) -> Result<(Applied, u64), AppError> {
        let result = lock(&self.store).apply(file, text);
        let applied = result.map_err(|r| self.rejected(r))?;
        let version = self.hub.bump();
        self.changed(
            version,
            format!("applied {file}: {}", applied.applied.join(", ")),
        );
        Ok((applied, version))
    }

    /// Deletes the resources named in a YAML text.
    pub fn delete(&self, file: &str, text: &str) -> Result<(Deleted, u64), AppError> {
        let result = lock(&self.store).delete(file, text);
        let deleted = result.map_err(|r| self.rejected(r))?;
        let version = if deleted.deleted.is_empty() {
            self.hub.current()
        } else {
            let version = self.hub.bump();
            self.changed(
                version,
                format!("deleted {file}: {}", deleted.deleted.join(", ")),
            );
            version
        };
        Ok((deleted, version))
    }

    /// What `istioctl analyze` would tell about the configuration in force, or about it
    /// with `files` (name, YAML) applied on top when there are any (nothing is changed).
    pub fn analyze(&self, files: &[(String, String)]) -> Result<Vec<Finding>, AppError> {
        let config = if files.is_empty() {
            lock(&self.store).config()
        } else {
            let candidate = lock(&self.store).candidate(files);
            Arc::new(candidate.map_err(|r| AppError::InvalidConfig {
                error: r.summary,
                errors: r.errors,
            })?)
        };
        let registry = lock(&self.workloads).registry();
        Ok(analyze(config.resources(), &registry))
    }

    /// Resources in force.
    pub fn resources(&self, kind: Option<Kind>) -> Vec<ResourceEntry> {
        lock(&self.store).entries(kind)
    }

    /// Recent rejected changes.
    pub fn config_errors(&self) -> Vec<ErrorRecord> {
        lock(&self.store).errors().cloned().collect()
    }

    /// Registers a workload.
    pub fn register(&self, spec: WorkloadSpec) -> Result<String, AppError> {
        spec.validate()
            .map_err(|e| AppError::BadRequest(e.to_string()))?;
        let name = spec.name.clone();
        let changed = lock(&self.workloads).register(spec, Instant::now());
        if changed {
            self.hub.bump();
            tracing::info!(workload = %name, "workload registered");
        }
        Ok(name)
    }

    /// Deregisters a workload.
    pub fn deregister(&self, name: &str) -> Result<(), AppError> {
        if !lock(&self.workloads).deregister(name) {
            return Err(AppError::NotFound(format!(
                "workload {name:?} is not registered"
            )));
        }
        self.hub.bump();
        tracing::info!(workload = %name, "workload deregistered");
        Ok(())
    }

    /// Registered workloads.
    pub fn workloads(&self) -> Vec<WorkloadView> {
        lock(&self.workloads).list(Instant::now())
    }

    /// Where Prometheus scrapes every registered proxy (HTTP service discovery).
    pub fn prometheus_targets(&self) -> Vec<mesh_api::wire::TargetGroup> {
        lock(&self.workloads).prometheus_targets()
    }

    /// Sync state of every proxy.
    pub fn proxy_status(&self) -> Vec<ProxyStatus> {
        let latest = self.version().to_string();
        lock(&self.workloads).status(&latest)
    }

    /// The long poll: answers at once when the proxy's `held` version is not current
    /// (or absent), else waits up to `wait` for a change.
    ///
    /// A restart must be invisible to traffic, as an istiod restart is to Envoy, which
    /// keeps serving its last configuration. But this control plane learns endpoints only
    /// from registrations, and after a restart each proxy registers again on its own
    /// schedule: answering at once would hand the first proxies back a registry missing
    /// the workloads not back yet, and their clients would answer 503 (`UH`) meanwhile.
    /// So during the registration grace after start ([`Settings::registration_grace`]),
    /// a proxy holding a configuration of an earlier run (a version below this run's
    /// first; `0` means none) gets its next configuration when the grace ends (or its
    /// `wait` does, if sooner), and keeps serving its last one until then. A proxy holding
    /// nothing is answered at once: anything is better than nothing. A workload that did
    /// not come back is simply absent from the registry pushed when the grace ends.
    pub async fn poll(
        &self,
        workload: &str,
        held: Option<&str>,
        wait: Option<Duration>,
    ) -> Result<ProxyConfig, AppError> {
        let _poll = PollGuard::start(self, workload, held)?;
        let wait = wait.unwrap_or(self.settings.poll_wait).min(MAX_WAIT);
        if held.is_some_and(|held| self.is_of_an_earlier_run(held)) {
            let until = self.grace_until.min(Instant::now() + wait);
            if Instant::now() < until {
                tracing::debug!(%workload, "holding a proxy of an earlier run until workloads have registered again");
                tokio::time::sleep_until(until).await;
            }
            return self.proxy_config(workload);
        }
        let mut versions = self.hub.subscribe();
        if let Some(held) = held {
            let current = versions.borrow_and_update().to_string();
            if current == held {
                let changed = async {
                    // `wait_for` holds a borrow only inside this expression.
                    versions
                        .wait_for(|v| v.to_string() != held)
                        .await
                        .map(|_| ())
                };
                let _ = tokio::time::timeout(wait, changed).await;
            }
        }
        self.proxy_config(workload)
    }

    /// True when `held` is a version an earlier run of the control plane handed out
    /// (versions start at the start time in ms, so those are lower than this run's first).
    /// Anything not a positive number holds no configuration worth keeping.
    fn is_of_an_earlier_run(&self, held: &str) -> bool {
        held.parse::<u64>()
            .is_ok_and(|v| v > 0 && v < self.first_version)
    }

    /// The configuration of one workload at the current version.
    pub fn proxy_config(&self, workload: &str) -> Result<ProxyConfig, AppError> {
        let started = std::time::Instant::now();
        // Read the version before the inputs: a change racing with us bumps it again, so
        // the proxy never holds a version older than what it got.
        let version = self.version();
        let (scope, registry) = {
            let workloads = lock(&self.workloads);
            let spec = workloads
                .get(workload)
                .ok_or_else(|| unknown_workload(workload))?;
            (spec.scope(), workloads.registry())
        };
        let config = lock(&self.store).config();
        let table = compile_for(&config, &lock(&self.faults), &scope);
        let security = mesh_api::security::WorkloadSecurity::for_workload(
            config.peer_authentications(),
            config.authorization_policies(),
            &scope.namespace,
            &scope.labels,
        );
        self.metrics.pushed(started.elapsed().as_secs_f64());
        Ok(ProxyConfig {
            version: version.to_string(),
            table,
            registry,
            security,
        })
    }

    /// Creates a fault lease; returns its view plus warnings.
    pub fn add_fault(&self, request: FaultRequest) -> Result<(LeaseView, Vec<String>), AppError> {
        let spec = FaultSpec::try_from(request)
            .map_err(|e| AppError::BadRequest(format!("invalid fault: {e}")))?;
        let mut warnings = Vec::new();
        let known = lock(&self.workloads)
            .registry()
            .service(&spec.host)
            .is_some();
        let config = lock(&self.store).config();
        let routed = config.virtual_services().any(|vs| {
            vs.spec
                .hosts
                .iter()
                .any(|h| qualify(h, vs.namespace()) == spec.host)
        });
        if !known && !routed {
            warnings.push(format!(
                "service {} has no registered workload and no VirtualService; the fault applies once it appears",
                spec.host
            ));
        }
        let now = Instant::now();
        let view = lock(&self.faults).add(spec, now).view(now);
        if let Some(subset) = &view.subset {
            let table = compile_for(
                &config,
                &lock(&self.faults),
                &ProxyScope::sidecar(&view.namespace, &[]),
            );
            let used = table.services.get(&view.host).is_some_and(|s| {
                s.routes.iter().any(|r| {
                    r.name
                        .as_deref()
                        .is_some_and(|n| n.starts_with(&format!("{}-", view.id)))
                })
            });
            if !used {
                warnings.push(format!(
                    "no route of {} goes to subset {subset}; the fault matches no request until one does",
                    view.host
                ));
            }
        }
        self.faults_changed.notify_one();
        let version = self.hub.bump();
        self.changed(
            version,
            format!("fault {} added on {}", view.id, view.service),
        );
        tracing::info!(id = %view.id, host = %view.host, ttl = view.ttl_seconds, "fault lease created");
        Ok((view, warnings))
    }

    /// Active faults.
    pub fn faults(&self) -> Vec<LeaseView> {
        let now = Instant::now();
        lock(&self.faults).leases().map(|l| l.view(now)).collect()
    }

    /// Ends one fault lease.
    pub fn remove_fault(&self, id: &str) -> Result<(), AppError> {
        if !lock(&self.faults).remove(id) {
            return Err(AppError::NotFound(format!("no fault with id {id:?}")));
        }
        let version = self.hub.bump();
        self.changed(version, format!("fault {id} deleted"));
        tracing::info!(%id, "fault lease deleted");
        Ok(())
    }

    /// Ends every fault lease.
    pub fn clear_faults(&self) -> Vec<String> {
        let ids = lock(&self.faults).clear();
        if !ids.is_empty() {
            let version = self.hub.bump();
            self.changed(version, format!("faults cleared ({})", ids.join(", ")));
            tracing::info!(count = ids.len(), "all fault leases deleted");
        }
        ids
    }

    /// The root certificate.
    pub fn root_pem(&self) -> &str {
        self.ca.root_pem()
    }

    /// The namespace and service account `workload` registered with, if it is registered.
    pub fn registered_identity(&self, workload: &str) -> Option<(String, String)> {
        lock(&self.workloads)
            .get(workload)
            .map(|spec| (spec.namespace.clone(), spec.service_account.clone()))
    }

    /// Issues a certificate to a registered workload, for the identity it registered with
    /// (open mode; with credentials the API calls [`Control::sign`] with theirs).
    pub fn issue(
        &self,
        workload: &str,
        csr: &str,
        ttl: Option<Duration>,
    ) -> Result<Issued, AppError> {
        let (namespace, account) = self.registered_identity(workload).ok_or_else(|| {
            AppError::Forbidden(format!(
                "workload {workload:?} is not registered; only registered workloads get certificates"
            ))
        })?;
        self.sign(&namespace, &account, csr, ttl)
    }

    /// Signs a CSR for `namespace`/`account`, valid for `ttl` (default: the configured one).
    pub fn sign(
        &self,
        namespace: &str,
        account: &str,
        csr: &str,
        ttl: Option<Duration>,
    ) -> Result<Issued, AppError> {
        let ttl = ttl.unwrap_or(self.settings.cert_ttl);
        self.ca
            .sign(csr, namespace, account, ttl)
            .map_err(|e| match e {
                CaError::BadCsr(_) => AppError::BadRequest(e.to_string()),
                other => AppError::Internal(other.to_string()),
            })
    }

    /// Everything about one service, for `meshctl describe`; not found when no route,
    /// endpoint or fault mentions it (most likely a typo).
    pub fn describe(&self, service: &str, namespace: &str) -> Result<ServiceDescription, AppError> {
        let host = qualify(service, namespace);
        let short = host.split('.').next().unwrap_or(service).to_owned();
        let service_ns = host.split('.').nth(1).unwrap_or(namespace).to_owned();
        let config = lock(&self.store).config();
        let table = compile_for(
            &config,
            &lock(&self.faults),
            &ProxyScope::sidecar(namespace, &[]),
        );
        let compiled = table.services.get(&host);
        let endpoints = lock(&self.workloads)
            .registry()
            .service(&host)
            .map(|s| s.endpoints.clone())
            .unwrap_or_default();
        let faults: Vec<LeaseView> = self
            .faults()
            .into_iter()
            .filter(|f| f.host == host)
            .collect();
        if compiled.is_none() && endpoints.is_empty() {
            return Err(AppError::NotFound(format!(
                "service {host} is unknown: no route, endpoint or fault mentions it"
            )));
        }
        // Security policies selecting the service's workloads (`app=<service>`), those of
        // its namespace without a selector, and mesh-wide ones from the root namespace.
        let labels = [("app".to_owned(), short.clone())].into_iter().collect();
        let applies = |ns: &str, selector: Option<&mesh_api::security::WorkloadSelector>| {
            (ns == service_ns && selector.is_none_or(|s| s.matches(&labels)))
                || (ns == ROOT_NAMESPACE && selector.is_none())
        };
        let mut authorization = Vec::new();
        let mut peer_authentication = Vec::new();
        for loaded in config.resources() {
            match &loaded.resource {
                Resource::AuthorizationPolicy(p)
                    if applies(p.namespace(), p.spec.selector.as_ref()) =>
                {
                    authorization.push(p.clone());
                }
                Resource::PeerAuthentication(p)
                    if applies(p.namespace(), p.spec.selector.as_ref()) =>
                {
                    peer_authentication.push(p.clone());
                }
                _ => {}
            }
        }
        Ok(ServiceDescription {
            host,
            routes: compiled.map(|s| s.routes.clone()).unwrap_or_default(),
            subsets: compiled.map(|s| s.subsets.clone()).unwrap_or_default(),
            policy: compiled.map(|s| s.policy.clone()),
            endpoints,
            faults,
            authorization,
            peer_authentication,
            virtual_services: compiled
                .map(|s| s.virtual_services.clone())
                .unwrap_or_default(),
            destination_rule: compiled.and_then(|s| s.destination_rule.clone()),
            version: self.version().to_string(),
        })
    }

    /// The routing of a sidecar in the default namespace, per service, for the dashboard.
    pub fn overview(&self) -> Overview {
        let config = lock(&self.store).config();
        let mut table = compile_for(
            &config,
            &lock(&self.faults),
            &ProxyScope::sidecar("default", &[]),
        );
        // Services known only from the registry route with their default route.
        for record in lock(&self.workloads).registry().services {
            let host = record.host();
            table
                .services
                .entry(host.clone())
                .or_insert_with(|| mesh_api::CompiledService::with_default_route(&host));
        }
        let services = table
            .services
            .into_values()
            .map(|s| ServiceOverview {
                routes: s
                    .routes
                    .iter()
                    .map(crate::dashboard::describe_route)
                    .collect(),
                host: s.host,
                virtual_services: s.virtual_services,
                destination_rule: s.destination_rule,
            })
            .collect();
        Overview {
            version: self.version().to_string(),
            resources: config.len(),
            services,
            errors: self.config_errors(),
            changes: self.changes(),
        }
    }

    /// Metrics exposition.
    pub fn metrics_text(&self) -> Result<String, std::fmt::Error> {
        let gauges = Gauges {
            connected_proxies: i64::try_from(lock(&self.workloads).connected(Instant::now()))
                .unwrap_or(i64::MAX),
            config_version: i64::try_from(self.version()).unwrap_or(i64::MAX),
            active_faults: i64::try_from(lock(&self.faults).len()).unwrap_or(i64::MAX),
        };
        self.metrics.encode(gauges)
    }
}

fn unknown_workload(name: &str) -> AppError {
    AppError::NotFound(format!(
        "workload {name:?} is not registered (POST /api/v1/workloads first)"
    ))
}

/// Marks a poll in flight for its whole life, including when the client goes away and
/// the request future is dropped mid-wait.
struct PollGuard<'a> {
    control: &'a Control,
    workload: String,
}

impl<'a> PollGuard<'a> {
    fn start(control: &'a Control, workload: &str, held: Option<&str>) -> Result<Self, AppError> {
        if !lock(&control.workloads).poll_started(workload, held, Instant::now()) {
            return Err(unknown_workload(workload));
        }
        Ok(Self {
            control,
            workload: workload.to_owned(),
        })
    }
}

impl Drop for PollGuard<'_> {
    fn drop(&mut self) {
        lock(&self.control.workloads).poll_ended(&self.workload, Instant::now());
    }
}

/// Drops silent workloads once a second.
async fn expire_workloads(control: Weak<Control>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(control) = control.upgrade() else {
            return;
        };
        let expired = lock(&control.workloads).expire(Instant::now());
        if !expired.is_empty() {
            control.hub.bump();
            for name in expired {
                tracing::info!(workload = %name, "workload expired (not seen for 15 s)");
            }
        }
    }
}

/// Ends fault leases exactly when their TTL is over.
async fn expire_faults(control: Weak<Control>) {
    loop {
        let (next, changed) = {
            let Some(strong) = control.upgrade() else {
                return;
            };
            let next = lock(&strong.faults).next_deadline();
            (next, Arc::clone(&strong.faults_changed))
        };
        // Wait for the earliest lease to end or for a new lease (maybe ending earlier),
        // without keeping the control plane alive meanwhile.
        let notified = changed.notified();
        match next {
            Some(deadline) => {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => {}
                    () = notified => {}
                }
            }
            None => notified.await,
        }
        let Some(strong) = control.upgrade() else {
            return;
        };
        let ended = lock(&strong.faults).expire(Instant::now());
        if !ended.is_empty() {
            let version = strong.hub.bump();
            for id in ended {
                tracing::info!(%id, "fault lease ended (TTL over)");
                strong.changed(version, format!("fault {id} ended (TTL over)"));
            }
        }
    }
}

/// Reads every proxy's metrics once a second while someone watches the graph.
async fn scrape_proxies(control: Weak<Control>) {
    let mut tick = tokio::time::interval(graph::SCRAPE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut paused = true;
    loop {
        tick.tick().await;
        let targets = {
            let Some(control) = control.upgrade() else {
                return;
            };
            let workloads = control.workloads();
            let mut scrapes = lock(&control.scrapes);
            if !scrapes.wanted(Instant::now()) {
                if !paused {
                    scrapes.pause();
                    paused = true;
                }
                continue;
            }
            paused = false;
            let names: Vec<String> = workloads.iter().map(|w| w.spec.name.clone()).collect();
            scrapes.retain(&names);
            graph::targets(&workloads)
        };
        let mut pending = tokio::task::JoinSet::new();
        for (workload, admin) in targets {
            pending.spawn(async move {
                let page = graph::scrape::fetch(admin, graph::SCRAPE_TIMEOUT).await;
                let at = Instant::now();
                // Parsed here, off the lock: a page is a few hundred kilobytes.
                let sample = page
                    .map(|text| graph::sample_of(&text, at))
                    .map_err(|e| format!("{admin}: {e}"));
                (workload, sample)
            });
        }
        while let Some(done) = pending.join_next().await {
            let Ok((workload, sample)) = done else {
                continue;
            };
            let Some(control) = control.upgrade() else {
                return;
            };
            lock(&control.scrapes).record(&workload, sample);
        }
    }
}
