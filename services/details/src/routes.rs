//! HTTP routes of the details service.
//!
//! The original mounts its handler at the prefix `/details` (any path below it) and reads
//! the id from the last path segment; GET, HEAD, POST and PUT are all answered like GET,
//! OPTIONS gets 200 and other methods 405. We keep all of that.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use bookinfo_common::headers::{SERVICE_FORWARD, forwarded};
use bookinfo_common::metrics::{self, Metrics};

use crate::book::BookDetails;
use crate::config::Config;
use crate::external;
use crate::id;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// Parsed configuration.
    pub config: Config,
    /// Client for the external books API.
    pub client: reqwest::Client,
}

/// Builds the service router.
pub fn app(state: Arc<AppState>) -> Router {
    let metrics = Metrics::new();
    let http = metrics.http();
    let router = Router::new()
        .route("/details", any(details))
        .route("/details/", any(details))
        .route("/details/{*rest}", any(details))
        .route("/health", any(health))
        .route("/health/{*rest}", any(health))
        .fallback(not_found)
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(http, metrics::track))
        .merge(metrics::routes(Arc::new(metrics)));
    bookinfo_common::trace::layer(router)
}

fn json(status: StatusCode, body: String) -> Response {
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Answers methods the original does not treat like GET; `None` means "serve it".
fn method_gate(method: &Method) -> Option<Response> {
    match *method {
        Method::GET | Method::HEAD | Method::POST | Method::PUT => None,
        Method::OPTIONS => {
            Some((StatusCode::OK, [(header::ALLOW, "GET,HEAD,POST,OPTIONS")]).into_response())
        }
        _ => Some(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    }
}

async fn details(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    if let Some(resp) = method_gate(req.method()) {
        return resp;
    }
    let last = req
        .uri()
        .path()
        .split('/')
        .rfind(|s| !s.is_empty())
        .unwrap_or("");
    let Some(id) = id::parse(&percent_decode(last)) else {
        return json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"please provide numeric product id"}"#.to_owned(),
        );
    };
    if !state.config.external {
        return json(StatusCode::OK, BookDetails::comedy_of_errors().to_json(&id));
    }
    let headers = forwarded(req.headers(), SERVICE_FORWARD);
    match external::fetch(&state.client, &state.config.books_api, headers).await {
        Ok(book) => json(StatusCode::OK, book.to_json(&id)),
        Err(error) => {
            tracing::warn!(%error, "External books API failed.");
            json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({ "error": error.to_string() }).to_string(),
            )
        }
    }
}

async fn health(req: Request<Body>) -> Response {
    if let Some(resp) = method_gate(req.method()) {
        return resp;
    }
    json(
        StatusCode::OK,
        r#"{"status":"Details is healthy"}"#.to_owned(),
    )
}

async fn not_found(req: Request<Body>) -> Response {
    let body = format!(
        "<!DOCTYPE html><html><head><title>Not Found</title></head><body><h1>Not Found</h1>\
         <p>`{}' not found.</p></body></html>",
        html_escape(req.uri().path())
    );
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        body,
    )
        .into_response()
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Decodes `%XX` escapes; invalid escapes are kept as they are (the id parse then fails).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
