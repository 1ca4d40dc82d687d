//! Two tools for exercising the Bookinfo suite, sharing one crate:
//!
//! - [`load`]: the HTTP load generator behind `loadgen` (open and closed models,
//!   coordinated-omission corrected latency, text/JSON/HTML reports, a live window).
//! - [`chaos`]: the chaos-experiment runner behind `chaos` (Chaos Toolkit experiments with
//!   native fault-lease, kill, mesh-configuration and load providers; journal and report).
//!
//! Dependencies run one way: `chaos` drives load through [`load`], `load` knows nothing of
//! `chaos`.
//!
//! Module map:
//!
//! ```text
//! load/
//!   config      what a run is asked to do (model, target, mix, connections)
//!   engine      carrying it out: open and closed models over a connection pool
//!   conn        one keep-alive HTTP/1.1 or h2c connection
//!   plan        the arrival schedule (stages, intended send times)
//!   mix         weighted request mixes (YAML, built-in Bookinfo)
//!   target      the target URL and address
//!   stats       histograms, per-second series, the rolling window
//!   report      the run report, as text and JSON
//!   html        the self-contained HTML report
//!   progress    the terminal progress bar
//!   window      the live window endpoint
//! chaos/
//!   experiment/ the experiment document: format (serde types), validate, variables
//!   runner      running one, phase by phase, into a journal
//!   providers   what activities do (http, process, faults, kill, mesh config, load)
//!   control     every call to the mesh control plane's HTTP API
//!   tolerance   steady-state tolerances; jsonpath for the jsonpath tolerance
//!   report      HTML and Markdown reports from a journal
//!   time        RFC 3339 timestamps
//! ```
//!
//! The binaries live in `src/bin/` (`loadgen.rs`, `chaos.rs`).

pub mod chaos;
pub mod load;
