//! The JSON API under `/api/v1/products`.
//!
//! Bodies use Python's `json.dumps` spelling and keep the upstream's key order, and
//! upstream failures pass their status through with the original's error object,
//! so scripts written against the original see the same bytes.

use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bookinfo_common::json::to_python_json;

use crate::error::AppError;
use crate::products;
use crate::state::AppState;
use crate::upstream::{Service, outbound_headers};

/// `GET /api/v1/products`.
pub(crate) async fn products() -> Result<Response, AppError> {
    Ok(json(StatusCode::OK, products::list_json()?))
}

/// `GET /api/v1/products/{id}`: the details of a book.
pub(crate) async fn product(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    relay(&state, Service::Details, &id, &headers).await
}

/// `GET /api/v1/products/{id}/reviews`.
pub(crate) async fn reviews(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    relay(&state, Service::Reviews, &id, &headers).await
}

/// `GET /api/v1/products/{id}/ratings`: calls ratings directly.
pub(crate) async fn ratings(
    state: State<AppState>,
    id: Path<String>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    relay(&state, Service::Ratings, &id, &headers).await
}

/// Calls `service` for `id` and answers with its JSON, or with the upstream status
/// and the service's error object.
async fn relay(
    state: &AppState,
    service: Service,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, AppError> {
    let session = state.sessions().from_headers(headers);
    let outbound = outbound_headers(headers, session.user.as_deref());
    match state.backends().call(service, id, &outbound).await {
        Ok(value) => Ok(json(StatusCode::OK, to_python_json(&value)?)),
        Err(failure) => {
            let status =
                StatusCode::from_u16(failure.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let body =
                to_python_json(&serde_json::json!({ "error": service.unavailable_message() }))?;
            Ok(json(status, body))
        }
    }
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], body).into_response()
}
