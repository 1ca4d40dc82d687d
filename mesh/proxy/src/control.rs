//! Joining the mesh through the control plane, and staying in it.
//!
//! At start the proxy registers its workload (name, service, labels, the address its
//! service traffic should come to), then long-polls `/api/v1/proxy-config` with the
//! version it holds; each answer is a new snapshot, swapped in atomically. When the
//! control plane is unreachable the proxy keeps serving with the last configuration and
//! retries with backoff; when it comes back (even restarted, with no memory of us) the
//! proxy registers again and resyncs. See `docs/control-plane-api.md`.
//!
//! - [`client`]: this workload's view of the typed `mesh-client`: register, poll,
//!   certificates.
//! - [`sync`]: the long-poll loop that keeps the snapshot current.
//! - [`certificates`]: the mesh certificate, issued by the control plane's CA and
//!   renewed at half life.

pub mod certificates;
pub mod client;
pub mod sync;

pub use certificates::{IssueError, issue, rotate};
pub use client::{ControlClient, POLL_WAIT, Registration};
pub use sync::sync;
