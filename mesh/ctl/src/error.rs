//! meshctl's errors. Each one prints as a single line that says what is wrong and, when
//! it can, what to do about it.

use crate::control::ClientError;

/// Everything that can make a meshctl command fail.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Bad arguments or configuration (exit code 64).
    #[error("{0}")]
    Usage(String),
    /// The control plane could not be reached or refused the request.
    #[error("{error}{hint}", error = .0, hint = token_hint(.0))]
    Control(#[from] ClientError),
    /// A file or process operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What meshctl was doing.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Anything else, already worded for the user.
    #[error("{0}")]
    Failed(String),
}

/// What to do about a 401: the mutating API of a control plane off loopback (compose,
/// Kubernetes) wants the admin token.
fn token_hint(error: &ClientError) -> &'static str {
    if matches!(error, ClientError::Api { status: 401, .. }) {
        " (pass the control plane's admin token: --token, MESH_CONTROL_TOKEN or MESH_CONTROL_TOKEN_FILE)"
    } else {
        ""
    }
}

impl CtlError {
    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// The process exit code: 64 for usage errors, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 64,
            _ => 1,
        }
    }
}
