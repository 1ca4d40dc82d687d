//! Every call the chaos runner makes to our mesh control plane's HTTP API, one function per
//! call: fault leases (`/api/v1/faults`) and mesh configuration (`/api/v1/apply`,
//! `/api/v1/delete`), through the typed `mesh-client` the proxy and meshctl use too.
//!
//! Calls to arbitrary URLs (Chaos Toolkit `http` providers) do not belong here: they stay
//! with the providers.

use std::path::Path;
use std::time::Duration;

use mesh_api::wire::FaultRequest;
use mesh_client::{ClientError, ControlClient};
use serde_json::Value;

/// Bound on every control-plane call: the API answers from memory, so a slow answer means
/// the control plane is in trouble, and the experiment should say so rather than hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a control-plane call did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The URL is unusable, nothing answered, or the answer was not the API's.
    #[error("control plane: {0}")]
    Call(ClientError),
    #[error("the control plane refused the fault ({status}): {error}")]
    FaultRefused { status: u16, error: String },
    #[error("halting faults failed ({status}): {error}")]
    HaltFailed { status: u16, error: String },
    #[error("removing fault {id} failed ({status}): {error}")]
    RemoveFailed {
        id: String,
        status: u16,
        error: String,
    },
    /// `details` lists the control plane's validation errors, if it sent any.
    #[error("{verb} {} refused ({status}): {error} {details}", .file.display())]
    ConfigRefused {
        verb: &'static str,
        file: std::path::PathBuf,
        status: u16,
        error: String,
        details: String,
    },
}

/// A fault lease the control plane granted.
#[derive(Debug, Clone)]
pub struct Lease {
    pub id: String,
    /// The whole answer, for the journal.
    pub answer: Value,
}

/// What removing one fault lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    Deleted,
    /// The lease had already run out: nothing left to undo.
    Expired,
}

/// The control plane at one base URL.
#[derive(Debug, Clone)]
pub struct ControlPlane {
    base: String,
    /// The client, or why the URL is unusable: a run never fails, so a bad URL is
    /// reported by every activity that needs the control plane, in the journal.
    client: Result<ControlClient, ClientError>,
}

impl ControlPlane {
    pub fn new(base: &str) -> Self {
        ControlPlane {
            base: base.trim_end_matches('/').to_string(),
            client: ControlClient::new(base).map(|c| c.with_timeout(CALL_TIMEOUT)),
        }
    }

    /// The base URL (also handed to `meshctl --control`).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn client(&self) -> Result<&ControlClient, ControlError> {
        self.client
            .as_ref()
            .map_err(|e| ControlError::Call(e.clone()))
    }

    /// `POST /api/v1/faults`: asks for a fault lease.
    pub async fn create_fault(&self, request: &FaultRequest) -> Result<Lease, ControlError> {
        match self.client()?.add_fault(request).await {
            Ok(created) => Ok(Lease {
                id: created.lease.id.clone(),
                answer: journal_value(&created),
            }),
            Err(ClientError::Api {
                status, message, ..
            }) => Err(ControlError::FaultRefused {
                status,
                error: message,
            }),
            Err(other) => Err(ControlError::Call(other)),
        }
    }

    /// `DELETE /api/v1/faults/{id}`: ends one lease early.
    pub async fn remove_fault(&self, id: &str) -> Result<Removal, ControlError> {
        match self.client()?.remove_fault(id).await {
            Ok(_) => Ok(Removal::Deleted),
            Err(e) if e.is_not_found() => Ok(Removal::Expired),
            Err(ClientError::Api {
                status, message, ..
            }) => Err(ControlError::RemoveFailed {
                id: id.to_string(),
                status,
                error: message,
            }),
            Err(other) => Err(ControlError::Call(other)),
        }
    }

    /// `DELETE /api/v1/faults`: ends every fault lease, whoever made it (the halt).
    pub async fn halt_faults(&self) -> Result<Value, ControlError> {
        match self.client()?.clear_faults().await {
            Ok(cleared) => Ok(journal_value(&cleared)),
            Err(ClientError::Api {
                status, message, ..
            }) => Err(ControlError::HaltFailed {
                status,
                error: message,
            }),
            Err(other) => Err(ControlError::Call(other)),
        }
    }

    /// `POST /api/v1/apply` (or `/api/v1/delete`): applies or deletes the mesh resources
    /// in `yaml`, read from `file` (whose name the control plane uses in its messages).
    pub async fn apply_config(
        &self,
        file: &Path,
        yaml: String,
        delete: bool,
    ) -> Result<Value, ControlError> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("chaos.yaml");
        let client = self.client()?;
        let (verb, answer) = if delete {
            (
                "delete",
                client
                    .delete_resources(name, yaml)
                    .await
                    .map(|d| journal_value(&d)),
            )
        } else {
            (
                "apply",
                client.apply(name, yaml).await.map(|a| journal_value(&a)),
            )
        };
        match answer {
            Ok(answer) => Ok(answer),
            Err(ClientError::Api {
                status,
                message,
                errors,
            }) => Err(ControlError::ConfigRefused {
                verb,
                file: file.to_path_buf(),
                status,
                error: message,
                details: errors.join("; "),
            }),
            Err(other) => Err(ControlError::Call(other)),
        }
    }
}

/// An answer as the journal records it: the JSON the control plane sent.
fn journal_value(answer: &impl serde::Serialize) -> Value {
    serde_json::to_value(answer).unwrap_or(Value::Null)
}

/// An error with its causes, `outer: inner: innermost` (reqwest's own text alone often
/// says just "error sending request").
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}
