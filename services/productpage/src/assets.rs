//! Static files under `/static/`, compiled into the binary so the service is a
//! single file with nothing to mount.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Everything served under `/static/`.
const ASSETS: &[Asset] = &[
    Asset {
        path: "css/bookinfo.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../static/css/bookinfo.css"),
    },
    Asset {
        path: "img/izzy.png",
        content_type: "image/png",
        body: include_bytes!("../static/img/izzy.png"),
    },
];

/// Assets change only with a new build; an hour of caching keeps page loads light
/// during load tests without making a redeploy look stale for long.
const CACHE: &str = "public, max-age=3600";

/// `GET /static/{*path}`.
pub(crate) async fn serve(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.path == path) {
        Some(a) => (
            [(CONTENT_TYPE, a.content_type), (CACHE_CONTROL, CACHE)],
            a.body,
        )
            .into_response(),
        None => crate::routes::not_found().await.into_response(),
    }
}
