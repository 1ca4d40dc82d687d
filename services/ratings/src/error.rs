//! Every error answer of the service, with the original's status codes and bodies.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::routes::json_response;

/// A request that cannot get its normal answer.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The last URL segment is not a number to `parseInt`.
    #[error("please provide numeric product ID")]
    BadProductId,
    /// The POST body is not JSON.
    #[error("please provide valid ratings JSON")]
    BadJson,
    /// The POST body is larger than we accept.
    #[error("ratings JSON larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The POST body could not be read (the client went away mid-body).
    #[error("could not read the request body")]
    BodyRead,
    /// A fault variant decided to fail this request.
    #[error("Service unavailable")]
    Unavailable,
    /// v2 could not connect to its database.
    #[error("could not connect to ratings database")]
    DbConnect,
    /// v2 connected but the select failed.
    #[error("could not perform select")]
    DbSelect,
    /// POST to v2.
    #[error("Post not implemented for database backed ratings")]
    PostNotImplemented,
    /// A method other than GET or POST.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// No such route.
    #[error("not found")]
    NotFound,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let error_body = || {
            format!(
                "{{\"error\":{}}}",
                serde_json::Value::from(self.to_string())
            )
        };
        let status = match self {
            Self::BadProductId | Self::BadJson | Self::BodyRead => StatusCode::BAD_REQUEST,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::DbSelect => StatusCode::INTERNAL_SERVER_ERROR,
            Self::PostNotImplemented => StatusCode::NOT_IMPLEMENTED,
            // The original's quirk, kept because clients rely on it: a connect failure
            // answers 200 without a content type. reviews then finds no `ratings` key and
            // shows "Ratings service is currently unavailable".
            Self::DbConnect => return Response::new(Body::from(error_body())),
            // Like the original: 404 with an empty body and no content type.
            Self::NotFound => return StatusCode::NOT_FOUND.into_response(),
            // The original never answers other methods at all, leaving clients hanging;
            // we say no at once.
            Self::MethodNotAllowed => {
                let mut resp = json_response(StatusCode::METHOD_NOT_ALLOWED, error_body());
                resp.headers_mut()
                    .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
                return resp;
            }
        };
        json_response(status, error_body())
    }
}
