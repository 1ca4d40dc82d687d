//! The mesh control plane.
//!
//! `mesh-control` holds the Istio resources in force (YAML files of a watched directory plus
//! resources applied through its API), the registry of workloads that announced themselves,
//! the fault leases of chaos tools and the mesh certificate authority. From these it compiles
//! one routing table per workload and hands it to the proxies over a long-poll watch API, so
//! a routing change, a new endpoint or an injected fault reaches every proxy without a
//! restart. A dashboard shows the whole picture on a projector.
//!
//! * [`source`]: where configuration files come from (a watched directory).
//! * [`kube`]: the Istio resources of a Kubernetes cluster as a source.
//! * [`store`]: the validated configuration and the API-applied overlay.
//! * [`registry`]: registered workloads, heartbeats and expiry.
//! * [`faults`]: fault leases and their injection into compiled routes.
//! * [`experiments`]: the chaos experiments the runner reports, for the dashboard.
//! * [`graph`]: the live service graph, from the proxies' metrics.
//! * [`push`]: versions, long polls and per-workload compilation.
//! * [`ca`]: the certificate authority issuing SPIFFE certificates.
//! * [`auth`]: workload credentials (tokens file, Kubernetes TokenReview) and the admin
//!   token of the mutating API.
//! * [`traces`]: the embedded OTLP receiver and the recent traces it keeps.
//! * [`api`], [`dashboard`], [`metrics`]: the HTTP surface.

pub mod api;
pub mod auth;
pub mod ca;
pub mod control;
pub mod dashboard;
pub mod error;
pub mod experiments;
pub mod faults;
pub mod graph;
pub mod kube;
pub mod metrics;
pub mod push;
pub mod registry;
pub mod source;
pub mod store;
pub mod traces;

pub use control::{Control, REGISTRATION_GRACE, Settings};
