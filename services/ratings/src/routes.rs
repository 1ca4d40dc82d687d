//! The HTTP surface: `/ratings/...`, `/health` and `/metrics`.
//!
//! Like the original, any path starting with `/ratings/` is a ratings request (its id is
//! whatever `parseInt` makes of the last URL segment, see [`crate::id`]), unknown GET and
//! POST paths get an empty 404, and every method other than GET and POST gets a 405
//! (the original leaves such requests hanging forever).

use axum::Router;
use axum::body::Body;
use axum::extract::{OriginalUri, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bookinfo_common::metrics::{self, track};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::Value;

use crate::db;
use crate::error::AppError;
use crate::faults::Decision;
use crate::id::ProductId;
use crate::state::AppState;

/// Largest POST body accepted (413 above).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The service's router.
pub fn app(state: AppState) -> Router {
    let http_metrics = state.metrics().http();
    let router = Router::new()
        .route("/health", get(health).post(not_found))
        // `/ratings/` alone matches too: the original's pattern is `^/ratings/[0-9]*`.
        .route("/ratings/", get(get_ratings).post(post_ratings))
        .route("/ratings/{*rest}", get(get_ratings).post(post_ratings))
        .fallback(not_found)
        .with_state(state.clone())
        .merge(metrics::routes(state.metrics()))
        // Keep the original's answer to POSTs on unknown paths for /metrics as well.
        .route("/metrics", post(not_found))
        .layer(middleware::from_fn(only_get_and_post))
        .layer(middleware::from_fn_with_state(http_metrics, track));
    bookinfo_common::trace::layer(router)
}

/// A compact JSON answer with the original's content type.
pub(crate) fn json_response(status: StatusCode, body: String) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Turns away every method but GET and POST, before any handler runs. A plain route
/// filter would not do: axum answers HEAD with the GET handler.
async fn only_get_and_post(req: Request, next: Next) -> Response {
    if req.method() == Method::GET || req.method() == Method::POST {
        next.run(req).await
    } else {
        AppError::MethodNotAllowed.into_response()
    }
}

async fn not_found() -> AppError {
    AppError::NotFound
}

async fn health(State(state): State<AppState>) -> Response {
    if state.faults().healthy() {
        json_response(
            StatusCode::OK,
            r#"{"status":"Ratings is healthy"}"#.to_owned(),
        )
    } else {
        json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"status":"Ratings is not healthy"}"#.to_owned(),
        )
    }
}

async fn get_ratings(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
) -> Result<Response, AppError> {
    let id = product_id(&uri)?;
    if let Some(db) = state.mysql() {
        let [reviewer1, reviewer2] = db::fetch_ratings(db).await.map_err(|error| {
            tracing::warn!(%error, "Reading ratings from the database failed.");
            if error.is_connect() {
                AppError::DbConnect
            } else {
                AppError::DbSelect
            }
        })?;
        let ratings = serde_json::json!({ "Reviewer1": reviewer1, "Reviewer2": reviewer2 });
        return Ok(ratings_response(&id, &ratings));
    }
    match state.faults().decide() {
        Decision::Unavailable => return Err(AppError::Unavailable),
        Decision::ServeAfter(delay) => tokio::time::sleep(delay).await,
        Decision::Serve => {}
    }
    // Looked up after the delay, as the original does.
    let ratings = state.store().get(&id).unwrap_or_else(default_ratings);
    Ok(ratings_response(&id, &ratings))
}

async fn post_ratings(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    body: Body,
) -> Result<Response, AppError> {
    // Same order of checks as the original: id, then JSON, then the v2 refusal.
    let id = product_id(&uri)?;
    let bytes = read_body(body).await?;
    let ratings: Value = serde_json::from_slice(&bytes).map_err(|_| AppError::BadJson)?;
    if state.mysql().is_some() {
        return Err(AppError::PostNotImplemented);
    }
    let resp = ratings_response(&id, &ratings);
    state.store().put(id, ratings);
    Ok(resp)
}

fn product_id(uri: &Uri) -> Result<ProductId, AppError> {
    // The raw request target, query string included, exactly as the client sent it.
    let raw = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |pq| pq.as_str());
    ProductId::from_url(raw).ok_or(AppError::BadProductId)
}

async fn read_body(body: Body) -> Result<bytes::Bytes, AppError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(AppError::TooLarge {
            limit: MAX_BODY_BYTES,
        }),
        Err(error) => {
            tracing::debug!(%error, "Reading a request body failed.");
            Err(AppError::BodyRead)
        }
    }
}

fn default_ratings() -> Value {
    serde_json::json!({ "Reviewer1": 5, "Reviewer2": 4 })
}

/// `{"id":<id>,"ratings":<ratings>}`. Written by hand so an id of any length stays an
/// exact JSON integer (serde_json would round it through `f64`).
fn ratings_response(id: &ProductId, ratings: &Value) -> Response {
    json_response(
        StatusCode::OK,
        format!("{{\"id\":{id},\"ratings\":{ratings}}}"),
    )
}

#[cfg(test)]
mod tests;
