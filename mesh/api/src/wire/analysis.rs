//! `GET /api/v1/analyze` (the configuration in force) and `POST /api/v1/analyze` (as it
//! would be with some files applied): what `meshctl analyze` prints.

use serde::{Deserialize, Serialize};

pub use crate::analyze::{Finding, Level};

/// The body of `POST /api/v1/analyze`: files to consider applied, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeRequest {
    /// The files, as `meshctl apply -f` would send them one by one.
    pub files: Vec<AnalyzeFile>,
}

/// One file of an [`AnalyzeRequest`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalyzeFile {
    /// File name used in findings.
    pub name: String,
    /// Its YAML.
    pub text: String,
}

/// The answer: every finding, errors first (empty when all is well).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Findings.
    pub findings: Vec<Finding>,
}
