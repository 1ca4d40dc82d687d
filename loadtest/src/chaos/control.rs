//! Every call the chaos runner makes to our mesh control plane's HTTP API, one function per
//! call: fault leases (`/api/v1/faults`) and mesh configuration (`/api/v1/apply`,
//! `/api/v1/delete`).
//!
//! Requests and answers are untyped JSON for now; a typed client for this API is on its
//! way, and swapping it in should touch this file only. Calls to arbitrary URLs (Chaos
//! Toolkit `http` providers) do not belong here: they stay with the providers.

use std::path::Path;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

/// Bound on every control-plane call: the API answers from memory, so a slow answer means
/// the control plane is in trouble, and the experiment should say so rather than hang.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a control-plane call did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control plane {method} {url}: {reason}")]
    Send {
        method: Method,
        url: String,
        reason: String,
    },
    #[error("control plane {url}: {source}")]
    Read { url: String, source: reqwest::Error },
    #[error("the control plane refused the fault ({status}): {error}")]
    FaultRefused { status: u16, error: String },
    #[error("the control plane answered without a fault id: {0}")]
    NoFaultId(Value),
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
    http: reqwest::Client,
    base: String,
}

impl ControlPlane {
    pub fn new(http: reqwest::Client, base: &str) -> Self {
        ControlPlane {
            http,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// The base URL (also handed to `meshctl --control`).
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `POST /api/v1/faults`: asks for a fault lease; `body` is the lease request.
    pub async fn create_fault(&self, body: &Value) -> Result<Lease, ControlError> {
        let (status, answer) = self
            .call(
                Method::POST,
                "/api/v1/faults",
                Some((body.to_string(), "application/json")),
            )
            .await?;
        if !(200..300).contains(&status) {
            return Err(ControlError::FaultRefused {
                status,
                error: error_text(&answer),
            });
        }
        match answer.get("id").and_then(Value::as_str) {
            Some(id) => Ok(Lease {
                id: id.to_string(),
                answer,
            }),
            None => Err(ControlError::NoFaultId(answer)),
        }
    }

    /// `DELETE /api/v1/faults/{id}`: ends one lease early.
    pub async fn remove_fault(&self, id: &str) -> Result<Removal, ControlError> {
        let (status, answer) = self
            .call(Method::DELETE, &format!("/api/v1/faults/{id}"), None)
            .await?;
        match status {
            200..=299 => Ok(Removal::Deleted),
            404 => Ok(Removal::Expired),
            _ => Err(ControlError::RemoveFailed {
                id: id.to_string(),
                status,
                error: error_text(&answer),
            }),
        }
    }

    /// `DELETE /api/v1/faults`: ends every fault lease, whoever made it (the halt).
    pub async fn halt_faults(&self) -> Result<Value, ControlError> {
        let (status, answer) = self.call(Method::DELETE, "/api/v1/faults", None).await?;
        if !(200..300).contains(&status) {
            return Err(ControlError::HaltFailed {
                status,
                error: error_text(&answer),
            });
        }
        Ok(answer)
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
        let verb = if delete { "delete" } else { "apply" };
        let (status, answer) = self
            .call(
                Method::POST,
                &format!("/api/v1/{verb}?file={name}"),
                Some((yaml, "application/yaml")),
            )
            .await?;
        if !(200..300).contains(&status) {
            let details = answer
                .get("errors")
                .and_then(Value::as_array)
                .map(|e| {
                    e.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            return Err(ControlError::ConfigRefused {
                verb,
                file: file.to_path_buf(),
                status,
                error: error_text(&answer),
                details,
            });
        }
        Ok(answer)
    }

    /// One request; the answer is JSON when it parses, else its text as a JSON string.
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<(String, &str)>,
    ) -> Result<(u16, Value), ControlError> {
        let url = format!("{}{path}", self.base);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .timeout(CALL_TIMEOUT);
        if let Some((body, content_type)) = body {
            req = req.header("content-type", content_type).body(body);
        }
        let resp = req.send().await.map_err(|e| ControlError::Send {
            method,
            url: url.clone(),
            reason: error_chain(&e),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|source| ControlError::Read { url, source })?;
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, value))
    }
}

/// The control plane's `{"error": ...}` text, or the whole answer when it has none.
fn error_text(answer: &Value) -> String {
    answer
        .get("error")
        .and_then(Value::as_str)
        .map_or_else(|| answer.to_string(), str::to_string)
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
