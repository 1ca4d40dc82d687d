//! HTTP routes of the reviews service.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use bookinfo_common::headers::{SERVICE_FORWARD, forwarded};
use bookinfo_common::metrics::{self, Metrics};

use crate::body::{self, Ratings};
use crate::config::Config;
use crate::ratings;

/// Shared state of the handlers.
#[derive(Debug)]
pub struct AppState {
    /// Parsed configuration.
    pub config: Config,
    /// Client for the ratings service (honours `HTTP_PROXY`).
    pub client: reqwest::Client,
}

/// Builds the service router.
pub fn app(state: Arc<AppState>) -> Router {
    let metrics = Metrics::new();
    let http = metrics.http();
    let router = Router::new()
        .route("/", get(index))
        .route("/health", get(health))
        .route("/reviews/{id}", get(reviews))
        .with_state(state)
        .layer(axum::middleware::from_fn_with_state(http, metrics::track))
        .merge(metrics::routes(Arc::new(metrics)));
    bookinfo_common::trace::layer(router)
}

fn json(body: String) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

async fn health() -> Response {
    json(r#"{"status": "Reviews is healthy"}"#.to_owned())
}

async fn index(State(state): State<Arc<AppState>>) -> Html<String> {
    let c = &state.config;
    Html(format!(
        "<!DOCTYPE html><html><head><title>Bookinfo reviews</title></head><body>\
         <h1>Bookinfo reviews {}</h1><p>Ratings: {}. Try <a href=\"/reviews/0\">/reviews/0</a>.</p></body></html>",
        escape(&c.version),
        if c.ratings_enabled {
            format!("{} stars", escape(&c.star_color))
        } else {
            "off".to_owned()
        }
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Java's `Integer.parseInt`, which JAX-RS uses for an `int` path parameter: optional
/// sign, ASCII digits, 32-bit range. Anything else is a 404, as in the original.
pub fn parse_product_id(s: &str) -> Option<i32> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

async fn reviews(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(product_id) = parse_product_id(&id) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let c = &state.config;
    let ratings = if c.ratings_enabled {
        let fwd = forwarded(&headers, SERVICE_FORWARD);
        Ratings::Stars(
            ratings::fetch(
                &state.client,
                &c.ratings.base_url,
                product_id,
                fwd,
                c.ratings_timeout(),
            )
            .await,
        )
    } else {
        Ratings::Disabled
    };
    json(body::render(
        product_id,
        &c.podname,
        &c.clustername,
        ratings,
        &c.star_color,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_int_parsing() {
        assert_eq!(parse_product_id("0"), Some(0));
        assert_eq!(parse_product_id("+7"), Some(7));
        assert_eq!(parse_product_id("-3"), Some(-3));
        assert_eq!(parse_product_id("2147483647"), Some(i32::MAX));
        for bad in ["", "abc", "1.5", "2147483648", " 1", "0x1", "+", "-"] {
            assert_eq!(parse_product_id(bad), None, "{bad:?}");
        }
    }
}
