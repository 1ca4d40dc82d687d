//! `/productpage` against fake upstreams on real sockets.

use super::support::{
    Bookinfo, DETAILS, DETAILS_ERROR, RATINGS, REVIEWS_ERROR, REVIEWS_RATINGS_DOWN, REVIEWS_V1,
    REVIEWS_V2, REVIEWS_V3, Reply, STAR, closed_port, config, count, serve, state,
};

#[tokio::test]
async fn healthy_v2_page_has_nine_black_stars_and_the_details() {
    let bi = Bookinfo::healthy().await;
    let (status, page) = bi.page("/productpage").await;
    assert_eq!(status, 200);
    assert!(
        page.lines()
            .any(|l| l.contains("<title>Simple Bookstore App</title>"))
    );
    assert!(page.contains("<h1>The Comedy of Errors</h1>"));
    // The description is our own HTML and is not escaped.
    assert!(page.contains("<b>William Shakespeare's</b>"), "{page}");
    assert!(page.contains("Book Details") && page.contains("Book Reviews"));
    for cell in [
        "ISBN-10",
        "Publisher",
        "Pages",
        "Type",
        "Language",
        "1234567890",
        "PublisherA",
        "200",
        "paperback",
        "English",
    ] {
        assert!(page.contains(cell), "{cell}");
    }
    assert_eq!(count(&page, STAR), 9);
    assert_eq!(count(&page, "text-black-500"), 2);
    assert_eq!(count(&page, r#"class="star star-empty""#), 1);
    assert_eq!(
        count(
            &page,
            "Reviews served by: <span class=\"pod\">reviews-v2-5b64f47978-x9z7k</span>"
        ),
        2
    );
    assert!(
        !page.contains("on cluster"),
        "clustername \"null\" is hidden"
    );
    assert!(page.contains("reviews v2"), "version badge");
    assert!(page.contains("Reviewer1") && page.contains("The slapstick humour is refreshing!"));
    assert!(!page.contains("Error fetching"));
    assert_eq!(bi.details.hits()[0].path, "/details/0");
    assert_eq!(bi.reviews.hits()[0].path, "/reviews/0");
    assert!(
        bi.ratings.hits().is_empty(),
        "the page never calls ratings itself"
    );
}

#[tokio::test]
async fn v1_page_has_no_stars() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_V1),
        Reply::ok(RATINGS),
    )
    .await;
    let (status, page) = bi.page("/productpage").await;
    assert_eq!(status, 200);
    assert_eq!(count(&page, STAR), 0);
    assert_eq!(count(&page, "star-empty"), 0);
    assert!(page.contains("Book Reviews") && page.contains("reviews-v1-6f8d9c7b5-abcde"));
    assert!(page.contains("reviews v1"));
}

#[tokio::test]
async fn v3_page_has_red_stars_and_the_cluster() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_V3),
        Reply::ok(RATINGS),
    )
    .await;
    let (_, page) = bi.page("/productpage").await;
    assert_eq!(count(&page, STAR), 9);
    assert_eq!(count(&page, r#"<div class="stars text-red-500""#), 2);
    assert_eq!(count(&page, "text-black-500"), 0);
    assert_eq!(
        count(&page, r#" on cluster <span class="cluster">east</span>"#),
        2
    );
    assert!(page.contains("reviews v3"));
}

#[tokio::test]
async fn ratings_error_shows_the_message_and_no_stars() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_RATINGS_DOWN),
        Reply::ok(RATINGS),
    )
    .await;
    let (_, page) = bi.page("/productpage").await;
    assert_eq!(count(&page, STAR), 0);
    assert_eq!(
        count(
            &page,
            r#"<p class="text-red-500">Ratings service is currently unavailable</p>"#
        ),
        2
    );
}

#[tokio::test]
async fn unusual_star_counts() {
    let reviews = r#"{"podname": "p", "clustername": "null", "reviews": [
        {"reviewer": "a", "text": "t", "rating": {"stars": 0, "color": "black"}},
        {"reviewer": "b", "text": "t", "rating": {"stars": 7, "color": "red"}},
        {"reviewer": "c", "text": "t", "rating": {"stars": 1, "color": "red"}}]}"#;
    let bi = Bookinfo::start(Reply::ok(DETAILS), Reply::ok(reviews), Reply::ok(RATINGS)).await;
    let (_, page) = bi.page("/productpage").await;
    // 0 draws nothing, 7 draws 7 filled and no outline, 1 draws 1 + 4 outline.
    assert_eq!(count(&page, STAR), 8);
    assert_eq!(count(&page, "star-empty"), 4);
    assert_eq!(count(&page, "<div class=\"stars"), 2);
}

#[tokio::test]
async fn upstream_strings_are_escaped() {
    let reviews = r#"{"podname": "<b>pod</b>", "clustername": "null", "reviews": [
        {"reviewer": "<script>alert(1)</script>", "text": "a & b", "rating": {"stars": 2, "color": "\"><x"}}]}"#;
    let bi = Bookinfo::start(Reply::ok(DETAILS), Reply::ok(reviews), Reply::ok(RATINGS)).await;
    let (_, page) = bi.page("/productpage").await;
    assert!(!page.contains("<script>alert(1)"), "{page}");
    assert!(!page.contains("<b>pod"));
    assert!(!page.contains("a & b"));
    assert!(!page.contains("\"><x"));
    assert!(page.contains("alert(1)") && page.contains("pod"));
    assert_eq!(count(&page, STAR), 2);
}

#[tokio::test]
async fn details_failures_show_the_details_error() {
    let refused = closed_port().await;
    for reply in [
        Reply::status(503, "no healthy upstream"),
        Reply::status(500, "{}"),
        Reply::status(404, ""),
    ] {
        let bi = Bookinfo::start(reply.clone(), Reply::ok(REVIEWS_V2), Reply::ok(RATINGS)).await;
        let (status, page) = bi.page("/productpage").await;
        assert_eq!(status, 200, "{reply:?}");
        assert!(
            page.contains("Error fetching product details") && page.contains(DETAILS_ERROR),
            "{reply:?}"
        );
        assert!(!page.contains("Book Details"));
        assert!(page.contains("Book Reviews"), "reviews still render");
        assert_eq!(count(&page, STAR), 9);
        assert_eq!(bi.details.hits().len(), 1, "details is never retried");
    }
    let reviews = Bookinfo::healthy().await.reviews;
    let st = state(&config(refused, reviews.port(), refused, &[]));
    let url = serve(st).await;
    let page = super::support::client()
        .get(format!("{url}/productpage"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains(DETAILS_ERROR) && page.contains("Book Reviews"));
}

#[tokio::test]
async fn reviews_failures_show_the_reviews_error_after_two_attempts() {
    for reply in [
        Reply::status(503, ""),
        Reply::status(500, "{}"),
        Reply::status(404, ""),
        Reply::ok("not json"),
    ] {
        let bi = Bookinfo::start(Reply::ok(DETAILS), reply.clone(), Reply::ok(RATINGS)).await;
        let (status, page) = bi.page("/productpage").await;
        assert_eq!(status, 200, "{reply:?}");
        assert!(
            page.contains("Error fetching product reviews") && page.contains(REVIEWS_ERROR),
            "{reply:?}"
        );
        assert!(page.contains("Book Details") && page.contains("PublisherA"));
        assert_eq!(count(&page, STAR), 0);
        // A non-JSON 200 is a failure but not a reason to ask again.
        let expected = if reply.is_ok() { 1 } else { 2 };
        assert_eq!(bi.reviews.hits().len(), expected, "{reply:?}");
    }
}

#[tokio::test]
async fn page_is_200_when_everything_is_down() {
    let refused = closed_port().await;
    let url = serve(state(&config(refused, refused, refused, &[]))).await;
    let resp = super::support::client()
        .get(format!("{url}/productpage"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains(DETAILS_ERROR) && page.contains(REVIEWS_ERROR));
    assert!(page.contains("William Shakespeare"));
    assert_eq!(count(&page, STAR), 0);
}

#[tokio::test]
async fn flood_factor_adds_sequential_reviews_calls_after_details() {
    let bi = Bookinfo::start_with(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_V2),
        Reply::ok(RATINGS),
        &[("FLOOD_FACTOR", "3")],
    )
    .await;
    let (status, page) = bi.page("/productpage").await;
    assert_eq!(status, 200);
    assert_eq!(count(&page, STAR), 9);
    let reviews = bi.reviews.hits();
    assert_eq!(reviews.len(), 4);
    assert!(
        bi.details.hits()[0].at <= reviews[0].at,
        "details is called first"
    );
}
