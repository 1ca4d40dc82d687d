//! `request_result_total`: one count per logical call, whatever the attempts.

use super::support::{Bookinfo, DETAILS, RATINGS, Reply, closed_port, config, serve, state};

#[tokio::test]
async fn results_are_counted_per_call_not_per_attempt() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::status(503, ""),
        Reply::ok(RATINGS),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(bi.page("/productpage").await.0, 200);
    }
    assert_eq!(bi.get("/api/v1/products/0/ratings").await.status(), 200);
    assert_eq!(bi.reviews.hits().len(), 4, "two attempts per page");

    let (status, text) = bi.page("/metrics").await;
    assert_eq!(status, 200);
    assert!(
        text.contains(r#"request_result_total{destination_app="details",response_code="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"request_result_total{destination_app="reviews",response_code="503"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"request_result_total{destination_app="ratings",response_code="200"} 1"#),
        "{text}"
    );
    assert!(!text.contains(r#"destination_app="reviews",response_code="200""#));
    assert!(
        text.contains(
            r#"http_server_requests_total{method="GET",route="/productpage",code="200"} 2"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn refused_calls_count_as_500_and_flood_calls_count_too() {
    let refused = closed_port().await;
    let st = state(&config(refused, refused, refused, &[("FLOOD_FACTOR", "2")]));
    let url = serve(st.clone()).await;
    let resp = super::support::client()
        .get(format!("{url}/productpage"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = st.metrics().encode().unwrap();
    assert!(
        text.contains(r#"request_result_total{destination_app="details",response_code="500"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"request_result_total{destination_app="reviews",response_code="500"} 3"#),
        "{text}"
    );
}
