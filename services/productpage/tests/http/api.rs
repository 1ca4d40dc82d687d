//! The JSON API routes against fake upstreams.

use super::support::{
    Bookinfo, DETAILS, RATINGS, REVIEWS_V2, Reply, closed_port, config, serve, state,
};

const DETAILS_ERROR_JSON: &str =
    r#"{"error": "Sorry, product details are currently unavailable for this book."}"#;
const REVIEWS_ERROR_JSON: &str =
    r#"{"error": "Sorry, product reviews are currently unavailable for this book."}"#;
const RATINGS_ERROR_JSON: &str =
    r#"{"error": "Sorry, product ratings are currently unavailable for this book."}"#;

async fn json(bi: &Bookinfo, path: &str) -> (u16, String) {
    let resp = bi.get(path).await;
    assert_eq!(resp.headers()["content-type"], "application/json", "{path}");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn successful_answers_are_reserialised_with_python_spacing_and_order() {
    let bi = Bookinfo::healthy().await;
    let (status, body) = json(&bi, "/api/v1/products/1").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        r#"{"id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback", "pages": 200, "publisher": "PublisherA", "language": "English", "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"}"#
    );
    assert_eq!(bi.details.hits()[0].path, "/details/1");

    let (status, body) = json(&bi, "/api/v1/products/0/reviews").await;
    assert_eq!(status, 200);
    assert!(body.starts_with(r#"{"id": "0", "podname": "reviews-v2-5b64f47978-x9z7k", "clustername": "null", "reviews": [{"reviewer": "Reviewer1", "text": "#), "{body}");

    let (status, body) = json(&bi, "/api/v1/products/0/ratings").await;
    assert_eq!(
        (status, body.as_str()),
        (
            200,
            r#"{"id": 0, "ratings": {"Reviewer1": 5, "Reviewer2": 4}}"#
        )
    );
    assert_eq!(bi.ratings.hits()[0].path, "/ratings/0");
}

#[tokio::test]
async fn details_status_passes_through_with_the_error_object() {
    let bi = Bookinfo::start(
        Reply::status(400, r#"{"error":"please provide numeric product id"}"#),
        Reply::ok(REVIEWS_V2),
        Reply::ok(RATINGS),
    )
    .await;
    assert_eq!(
        json(&bi, "/api/v1/products/abc").await,
        (400, DETAILS_ERROR_JSON.to_owned())
    );
    assert_eq!(bi.details.hits()[0].path, "/details/abc");

    let bi = Bookinfo::start(
        Reply::status(555, "odd"),
        Reply::ok(REVIEWS_V2),
        Reply::ok(RATINGS),
    )
    .await;
    assert_eq!(
        json(&bi, "/api/v1/products/0").await,
        (555, DETAILS_ERROR_JSON.to_owned())
    );
}

#[tokio::test]
async fn reviews_status_passes_through_after_two_attempts() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::status(503, "upstream connect error"),
        Reply::ok(RATINGS),
    )
    .await;
    assert_eq!(
        json(&bi, "/api/v1/products/0/reviews").await,
        (503, REVIEWS_ERROR_JSON.to_owned())
    );
    assert_eq!(bi.reviews.hits().len(), 2);

    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::status(404, ""),
        Reply::ok(RATINGS),
    )
    .await;
    assert_eq!(
        json(&bi, "/api/v1/products/x/reviews").await,
        (404, REVIEWS_ERROR_JSON.to_owned())
    );
}

#[tokio::test]
async fn ratings_failures_and_refused_connections() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_V2),
        Reply::status(400, "{}"),
    )
    .await;
    assert_eq!(
        json(&bi, "/api/v1/products/abc/ratings").await,
        (400, RATINGS_ERROR_JSON.to_owned())
    );
    assert_eq!(bi.ratings.hits().len(), 1, "ratings is never retried");

    // Nothing listening: no response, so 500.
    let refused = closed_port().await;
    let url = serve(state(&config(refused, refused, refused, &[]))).await;
    for (route, body) in [
        ("", DETAILS_ERROR_JSON),
        ("/reviews", REVIEWS_ERROR_JSON),
        ("/ratings", RATINGS_ERROR_JSON),
    ] {
        let resp = super::support::client()
            .get(format!("{url}/api/v1/products/0{route}"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 500, "{route}");
        assert_eq!(resp.text().await.unwrap(), body);
    }
}

#[tokio::test]
async fn a_200_that_is_not_json_is_a_500() {
    let bi = Bookinfo::start(
        Reply::ok("<html>oops</html>"),
        Reply::ok(REVIEWS_V2),
        Reply::ok(RATINGS),
    )
    .await;
    assert_eq!(
        json(&bi, "/api/v1/products/0").await,
        (500, DETAILS_ERROR_JSON.to_owned())
    );
}
