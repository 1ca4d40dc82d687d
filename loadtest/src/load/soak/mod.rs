//! The soak with faults (`scripts/soak.sh`, `soak-report`): a long open-model run of the
//! Bookinfo mix through the mesh while a schedule kills every kind of process, and the
//! analysis that lines the per-request log of `loadgen --outcomes` up with the faults.
//!
//! - `plan`: which process to kill when, with which signal;
//! - `inputs`: meshctl's state file and the two logs the script writes (faults, memory);
//! - `analysis`: per fault, what its window saw and how fast pages came back;
//! - `verdict`: the targets, met or not, and the printed report.

pub mod analysis;
pub mod inputs;
pub mod plan;
pub mod verdict;

use serde::Deserialize;

/// What a process is in the mesh (the roles of meshctl's state file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Control,
    App,
    Sidecar,
    Gateway,
    /// `meshctl up` itself (in the memory log only): never killed, up the whole run.
    Supervisor,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Control => "control",
            Role::App => "app",
            Role::Sidecar => "sidecar",
            Role::Gateway => "gateway",
            Role::Supervisor => "supervisor",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Role::Control,
            Role::App,
            Role::Sidecar,
            Role::Gateway,
            Role::Supervisor,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

/// The signal a fault sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// A graceful stop: the process drains, then exits.
    Term,
    /// A crash.
    Kill,
}

impl Signal {
    /// As `meshctl kill --signal` takes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "TERM" => Some(Signal::Term),
            "KILL" => Some(Signal::Kill),
            _ => None,
        }
    }

    fn other(self) -> Self {
        match self {
            Signal::Term => Signal::Kill,
            Signal::Kill => Signal::Term,
        }
    }
}

/// Why an input of the soak could not be used; the text names the file's problem.
#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("meshctl state file: {0}")]
    State(String),
    #[error("fault log line {line}: {reason}")]
    Fault { line: usize, reason: String },
    #[error("memory log line {line}: {reason}")]
    Memory { line: usize, reason: String },
    #[error("invalid plan: {0}")]
    Plan(String),
}

/// The service a workload serves: `reviews` for `reviews-v2` (the name up to its last
/// `-v<version>`), the name itself otherwise.
pub fn service_of(workload: &str) -> &str {
    match workload.rfind("-v") {
        Some(i) if i > 0 => &workload[..i],
        _ => workload,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_of_workloads() {
        assert_eq!(service_of("reviews-v2"), "reviews");
        assert_eq!(service_of("productpage-v1"), "productpage");
        assert_eq!(service_of("ratings-v-faulty"), "ratings");
        assert_eq!(service_of("istio-ingressgateway"), "istio-ingressgateway");
    }
}
