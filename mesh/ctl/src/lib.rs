//! `meshctl`: the front door of the Bookinfo mesh on a laptop.
//!
//! `meshctl up` starts the control plane, every Bookinfo workload with its own sidecar and
//! the ingress gateway as supervised local processes; the other subcommands (`apply`,
//! `get`, `describe`, `proxy-status`, `fault`, `kill`, `explain`) talk to the control
//! plane's HTTP API or to the running `up`.

pub mod backoff;
pub mod cli;
pub mod commands;
pub mod control;
pub mod error;
pub mod explain;
pub mod fault;
pub mod human;
pub mod ports;
pub mod state;
pub mod supervisor;
pub mod table;
pub mod up;
pub mod workloads;

pub use error::CtlError;
