//! The control plane's HTTP contract, typed: every body a proxy, `meshctl`, the chaos
//! runner or a script sends to `mesh-control` or gets back (see
//! `docs/control-plane-api.md`).
//!
//! The control plane serializes these types and `mesh-client` deserializes them, so the
//! two cannot drift apart; the JSON each produces is pinned by `tests/wire.rs`, because
//! Chaos Toolkit experiments and curl users read it without our types.
//!
//! - [`workload`]: registration ([`WorkloadSpec`]), the registry listing,
//!   `proxy-status` and the Prometheus scrape targets ([`TargetGroup`]).
//! - [`proxy`]: the watch API's [`ProxyConfig`] and the certificate exchange.
//! - [`fault`]: fault requests and the leases they create.
//! - [`experiment`]: a chaos experiment's progress, reported by the runner.
//! - [`graph`]: the live service graph the dashboard draws.
//! - [`views`]: what `describe` and the dashboard's overview show, and resources in force.
//! - [`analysis`]: what `meshctl analyze` finds in the configuration.
//! - [`answers`]: the small acknowledgements (`applied`, `deleted`, ...) and the error body.

pub mod analysis;
pub mod answers;
pub mod experiment;
pub mod fault;
pub mod graph;
pub mod proxy;
pub mod views;
pub mod workload;

pub use analysis::{Analysis, AnalyzeFile, AnalyzeRequest, Finding, Level};
pub use answers::{
    ApiError, Applied, CaRoot, Deleted, Deregistered, FaultDeleted, FaultsCleared, Registered,
};
pub use experiment::{ExperimentFault, ExperimentRecorded, ExperimentReport, ExperimentView};
pub use fault::{
    AbortRequest, AbortView, BandwidthFault, BlackholeFault, DelayRequest, DelayView, Direction,
    FaultCreated, FaultRequest, LeaseView, ResetFault, SlowCloseFault,
};
pub use graph::{Graph, GraphEdge, GraphNode, Health, ScrapeProblem};
pub use proxy::{CertificateRequest, Issued, ProxyConfig};
pub use views::{
    ChangeRecord, ErrorRecord, Overview, ResourceEntry, RouteSummary, ServiceDescription,
    ServiceOverview,
};
pub use workload::{
    InvalidWorkload, Mode, ProxyStatus, SyncStatus, TargetGroup, WorkloadSpec, WorkloadView,
};
