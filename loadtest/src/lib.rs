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
//! load/      config (what a run is asked to do), engine (open and closed models),
//!            conn (one keep-alive connection), plan (arrival schedule), mix (request mix),
//!            target (URL and address), stats (histograms, series, window), report (text
//!            and JSON), html (self-contained report page), progress (terminal bar),
//!            window (live window endpoint)
//! chaos/     experiment (the document and its validation), runner (running one),
//!            providers (what activities do), tolerance and jsonpath (steady-state
//!            checks), report (HTML and Markdown from a journal), time (timestamps)
//! ```
//!
//! The binaries live in `src/bin/` (`loadgen.rs`, `chaos.rs`).

pub mod chaos;
pub mod load;
