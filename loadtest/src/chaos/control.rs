//! Every call the chaos runner makes to our mesh control plane's HTTP API, one function per
//! call: fault leases (`/api/v1/faults`) and mesh configuration (`/api/v1/apply`,
//! `/api/v1/delete`), through the typed `mesh-client` the proxy and meshctl use too.
//!
//! Calls to arbitrary URLs (Chaos Toolkit `http` providers) do not belong here: they stay
//! with the providers.
//!
//! Leasing faults and changing configuration are the mutating API: a control plane off
//! loopback (compose, Kubernetes) wants its admin token, taken from `MESH_CONTROL_TOKEN`
//! or the file named by `MESH_CONTROL_TOKEN_FILE`, as meshctl does.

use std::path::Path;
use std::time::Duration;

use mesh_api::wire::{ExperimentReport, FaultRequest};
use mesh_client::{ClientError, ControlClient, Credential};
use serde_json::Value;

/// The variables holding the admin token (or naming its file), shared with meshctl.
pub const TOKEN_VAR: &str = "MESH_CONTROL_TOKEN";
/// See [`TOKEN_VAR`].
pub const TOKEN_FILE_VAR: &str = "MESH_CONTROL_TOKEN_FILE";

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
    /// The control plane at `base`, with the admin token of the environment.
    pub fn new(base: &str) -> Self {
        let credential = Credential::from_env(TOKEN_VAR, TOKEN_FILE_VAR).map_err(|reason| {
            ClientError::Credential {
                from: "the environment".to_string(),
                reason,
            }
        });
        Self::with_credential(base, credential)
    }

    /// The control plane at `base`, presenting `credential` (or failing every call with
    /// why it is unusable).
    pub fn with_credential(
        base: &str,
        credential: Result<Option<Credential>, ClientError>,
    ) -> Self {
        let client = credential.and_then(|credential| {
            ControlClient::new(base)
                .map(|c| c.with_timeout(CALL_TIMEOUT).with_credential(credential))
        });
        ControlPlane {
            base: base.trim_end_matches('/').to_string(),
            client,
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

    /// `POST /api/v1/experiments`: the run's progress, for the dashboard.
    pub async fn report_progress(&self, report: &ExperimentReport) -> Result<(), ControlError> {
        self.client()?
            .report_experiment(report)
            .await
            .map(|_| ())
            .map_err(ControlError::Call)
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

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a panic is a failed test
mod tests {
    use super::*;
    use mesh_control::auth::{AdminToken, Auth};

    const ADMIN: &str = "chaos-admin-token-0123456789";

    #[tokio::test]
    async fn fault_calls_carry_the_admin_token() {
        let control = mesh_control::Control::new(mesh_control::Settings::default()).unwrap();
        let auth = Auth::open().with_admin(AdminToken::new(ADMIN).unwrap());
        let router = mesh_control::api::secured(control, std::sync::Arc::new(auth));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });

        let without = ControlPlane::with_credential(&url, Ok(None));
        let refused = without.halt_faults().await.unwrap_err();
        assert!(
            matches!(refused, ControlError::HaltFailed { status: 401, .. }),
            "{refused}"
        );
        let with = ControlPlane::with_credential(&url, Ok(Some(Credential::token(ADMIN))));
        with.halt_faults().await.unwrap();
        let broken = ControlPlane::with_credential(
            &url,
            Err(ClientError::Credential {
                from: "the environment".to_string(),
                reason: "set one, not both".to_string(),
            }),
        );
        let err = broken.halt_faults().await.unwrap_err().to_string();
        assert!(err.contains("set one, not both"), "{err}");
    }
}
