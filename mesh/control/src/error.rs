//! The one error type of the HTTP API: every failure becomes a JSON body
//! `{"error": "..."}` (plus `"errors": [...]` for rejected configuration) with a 4xx/5xx
//! status, so scripts and chaos tools can always decode the answer.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use mesh_api::wire::ApiError;

/// An API failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The request is malformed or names something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// A configuration change failed validation; nothing of it was applied.
    #[error("{error}")]
    InvalidConfig {
        /// One-line summary.
        error: String,
        /// Every problem, each naming file, document, resource and field.
        errors: Vec<String>,
    },
    /// No credential, or one that proves nothing (401 with `WWW-Authenticate: Bearer`).
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not have what it asked for (an unknown workload asking for a
    /// certificate, a credential for another identity).
    #[error("{0}")]
    Forbidden(String),
    /// No such thing.
    #[error("{0}")]
    NotFound(String),
    /// Something we depend on did not answer (the Kubernetes API checking a token).
    #[error("{0}")]
    Unavailable(String),
    /// Our fault.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) | Self::InvalidConfig { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = matches!(self, Self::Unauthorized(_));
        let body = match self {
            Self::InvalidConfig { error, errors } => ApiError { error, errors },
            other => ApiError {
                error: other.to_string(),
                errors: Vec::new(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}
