//! The router: every path productpage answers, plus the 404 and 405 pages.

use askama::Template;
use axum::Router;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bookinfo_common::metrics::{self, track};
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use crate::{api, assets, auth, pages};

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    code: u16,
    reason: &'static str,
    message: &'static str,
}

/// The whole service. HEAD is answered on every GET route; a known path with the
/// wrong method gets 405, anything else 404 (including `/productpage/`).
pub fn app(state: AppState) -> Router {
    let registry = state.metrics();
    let router = Router::new()
        .route("/", get(pages::landing))
        .route("/index.html", get(pages::landing))
        .route("/health", get(pages::health))
        .route("/productpage", get(pages::product_page))
        .route("/login", post(auth::login))
        .route("/logout", get(auth::logout))
        .route("/api/v1/products", get(api::products))
        .route("/api/v1/products/{id}", get(api::product))
        .route("/api/v1/products/{id}/reviews", get(api::reviews))
        .route("/api/v1/products/{id}/ratings", get(api::ratings))
        .route("/static/{*path}", get(assets::serve))
        .with_state(state)
        .merge(metrics::routes(registry.clone()))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(registry.http(), track))
        .layer(TraceLayer::new_for_http());
    bookinfo_common::trace::layer(router)
}

/// 404 page.
pub(crate) async fn not_found() -> Response {
    status_page(
        StatusCode::NOT_FOUND,
        "The requested URL was not found on the server.",
    )
}

async fn method_not_allowed() -> Response {
    status_page(
        StatusCode::METHOD_NOT_ALLOWED,
        "The method is not allowed for the requested URL.",
    )
}

fn status_page(status: StatusCode, message: &'static str) -> Response {
    let page = StatusPage {
        code: status.as_u16(),
        reason: status.canonical_reason().unwrap_or(""),
        message,
    };
    match page.render() {
        Ok(html) => (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response(),
        Err(_) => status.into_response(),
    }
}
