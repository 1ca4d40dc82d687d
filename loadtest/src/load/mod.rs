//! The load generator behind the `loadgen` binary, also used by the chaos runner's `load`
//! provider.
//!
//! The default is an *open model*: one scheduler computes the intended send time of every
//! request from a global arrival rate (optionally ramped in stages) and hands the requests
//! to a pool of keep-alive connections. Latency is measured from the intended send time
//! (coordinated-omission corrected) and from the actual send time (raw), both kept in
//! HdrHistograms, plus a per-second time series and a rolling steady-state window that can
//! be served over HTTP while the run is in progress. A mix may name degraded texts: 200
//! answers containing one are counted apart from failures. Optionally every request is
//! kept as a record (`outcomes`), which `soak` lines up with faults injected meanwhile.

pub mod config;
pub mod conn;
pub mod engine;
pub mod html;
pub mod mix;
pub mod outcomes;
pub mod plan;
pub mod progress;
pub mod report;
pub mod soak;
pub mod stats;
pub mod target;
pub mod window;

pub use config::{Model, RunConfig, RunError};
pub use engine::run;
pub use mix::Mix;
pub use plan::{Schedule, Stage};
pub use report::Report;
pub use stats::Recorder;
pub use target::Target;
