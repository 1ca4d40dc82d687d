//! The small acknowledgements of changes, and the error body every failure carries.

use serde::{Deserialize, Serialize};

/// Answer of `POST /api/v1/apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    /// `Kind namespace/name` of each resource applied.
    pub applied: Vec<String>,
    /// Non-fatal findings about the applied text.
    pub warnings: Vec<String>,
    /// The configuration version now in force.
    pub version: u64,
}

/// Answer of `POST /api/v1/delete`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deleted {
    /// Resources removed.
    pub deleted: Vec<String>,
    /// Resources named in the text that were not in force.
    pub missing: Vec<String>,
    /// The configuration version now in force.
    pub version: u64,
}

/// Answer of `POST /api/v1/workloads`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The workload name.
    pub registered: String,
}

/// Answer of `DELETE /api/v1/workloads/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deregistered {
    /// The workload name.
    pub deregistered: String,
}

/// Answer of `DELETE /api/v1/faults/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultDeleted {
    /// The lease id.
    pub deleted: String,
}

/// Answer of `DELETE /api/v1/faults` (halt: every lease removed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultsCleared {
    /// The ids removed.
    pub deleted: Vec<String>,
}

/// Answer of `GET /api/v1/ca/root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaRoot {
    /// The mesh root certificate, PEM.
    pub root: String,
}

/// The body of every 4xx/5xx answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// One line saying what is wrong.
    pub error: String,
    /// For rejected configuration: every problem, each naming file, document, resource
    /// and field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}
