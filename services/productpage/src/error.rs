//! The one error type handlers return, and how each case is answered.
//!
//! Upstream failures are not errors here: the page degrades and the API passes the
//! upstream status through. What remains is bad client input (4xx with a message
//! naming the problem) and internal failures (500, logged once).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::form::FormError;

/// A request that could not be answered normally.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A template failed to render.
    #[error("could not render the page: {0}")]
    Render(#[from] askama::Error),
    /// A JSON body could not be encoded.
    #[error("could not encode the JSON answer: {0}")]
    Json(#[from] serde_json::Error),
    /// The login form could not be decoded.
    #[error("malformed login form: {0}")]
    Form(#[from] FormError),
    /// The login form came in an encoding we do not read.
    #[error("send the login form as application/x-www-form-urlencoded, not {0}")]
    UnsupportedForm(String),
    /// The user name cannot be stored or forwarded as a header.
    #[error("invalid user name: {0}")]
    BadUsername(&'static str),
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Render(_) | Self::Json(_) => {
                tracing::error!(error = %self, "Request failed.");
                StatusCode::INTERNAL_SERVER_ERROR
            }
            Self::Form(_) | Self::BadUsername(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedForm(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        };
        (status, format!("{self}\n")).into_response()
    }
}
