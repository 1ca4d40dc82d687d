//! What a run is asked to do: the load model, the target, the mix and the connection pool.
//!
//! Kept apart from the engine so that the report (which echoes these parameters) and the
//! engine (which carries them out) both depend on this module and not on each other.

use std::time::Duration;

use super::mix::Mix;
use super::plan::Schedule;
use super::target::Target;

/// How load is offered.
#[derive(Debug, Clone)]
pub enum Model {
    /// Requests arrive on a schedule, whether or not earlier ones have finished. A request
    /// still queued `max_lateness` after its intended send time is dropped, not sent.
    Open {
        schedule: Schedule,
        max_lateness: Duration,
    },
    /// Each connection sends its next request as soon as the previous one finishes, until
    /// `requests` have been sent or `duration` has passed (at least one is required).
    Closed {
        requests: Option<u64>,
        duration: Option<Duration>,
    },
}

/// Everything a run needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub target: Target,
    pub mix: Mix,
    pub model: Model,
    pub connections: usize,
    pub http2: bool,
    /// Bound on connecting and on each request (until the whole body is read).
    pub timeout: Duration,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RunError {
    #[error("unbounded run: give a duration or a request count")]
    Unbounded,
    #[error("the connection count must be at least 1")]
    NoConnections,
}

impl RunConfig {
    /// Planned length of the run, when known in advance.
    pub fn planned_duration(&self) -> Option<Duration> {
        match &self.model {
            Model::Open { schedule, .. } => Some(schedule.duration()),
            Model::Closed { duration, .. } => *duration,
        }
    }

    /// Requested arrival rate at `t` (open model), 0 for the closed model.
    pub fn requested_rate(&self, t: Duration) -> f64 {
        match &self.model {
            Model::Open { schedule, .. } => schedule.rate_at(t),
            Model::Closed { .. } => 0.0,
        }
    }

    /// Refuses a configuration that could never start or never end.
    pub(crate) fn validate(&self) -> Result<(), RunError> {
        if self.connections == 0 {
            return Err(RunError::NoConnections);
        }
        if let Model::Closed {
            requests: None,
            duration: None,
        } = self.model
        {
            return Err(RunError::Unbounded);
        }
        Ok(())
    }
}
