//! The HTML routes: landing page, health and the product page.

use askama::Template;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::VARY;
use axum::response::{Html, IntoResponse, Response};

use crate::error::AppError;
use crate::products::COMEDY_OF_ERRORS;
use crate::state::AppState;
use crate::upstream::{Service, outbound_headers};
use crate::views::{BookDetails, DetailsView, LandingPage, ProductPage, ReviewList, ReviewsView};

/// `GET /` and `/index.html`.
pub(crate) async fn landing(State(state): State<AppState>) -> Result<Html<String>, AppError> {
    let url = |s| state.backends().base_url(s).as_str().to_owned();
    let page = LandingPage {
        details_url: url(Service::Details),
        reviews_url: url(Service::Reviews),
        ratings_url: url(Service::Ratings),
    };
    Ok(Html(page.render()?))
}

/// `GET /health`: plain text in an HTML content type, as the original answers.
pub(crate) async fn health() -> Html<&'static str> {
    Html("Product page is healthy")
}

/// `GET /productpage`: always 200; a failing backend only degrades its card.
///
/// Calls are sequential like the original's: details, then the `FLOOD_FACTOR`
/// extra reviews calls, then reviews. The query string (`?u=normal`) is ignored.
pub(crate) async fn product_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let session = state.sessions().from_headers(&headers);
    let outbound = outbound_headers(&headers, session.user.as_deref());
    let product = &COMEDY_OF_ERRORS;
    let id = product.id.to_string();
    let backends = state.backends();

    let details = match backends.call(Service::Details, &id, &outbound).await {
        Ok(json) => DetailsView::Ok(BookDetails::from_json(&json)),
        Err(_) => DetailsView::Failed,
    };
    for _ in 0..state.flood_factor() {
        // Extra load on reviews on purpose; the answers are thrown away.
        let _ = backends.call(Service::Reviews, &id, &outbound).await;
    }
    let reviews = match backends.call(Service::Reviews, &id, &outbound).await {
        Ok(json) => ReviewsView::Ok(ReviewList::from_json(&json)),
        Err(_) => ReviewsView::Failed,
    };

    let page = ProductPage {
        user: session.user.as_deref(),
        product,
        details,
        reviews,
    };
    // The page depends on the session cookie; caches must not share it across users.
    Ok(([(VARY, "Cookie")], Html(page.render()?)).into_response())
}
