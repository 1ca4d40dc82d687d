//! Deadlines and retries, with paused tokio time: the clock only moves when every
//! task is waiting, so "6 seconds" takes no real time and the assertions are exact.

use std::time::Duration;

use tokio::time::Instant;

use super::support::{
    Bookinfo, DETAILS, DETAILS_ERROR, RATINGS, REVIEWS_ERROR, REVIEWS_V2, Reply, STAR, count,
};

const SLACK: Duration = Duration::from_millis(100);

fn about(actual: Duration, expected: Duration) -> bool {
    actual >= expected && actual < expected + SLACK
}

#[tokio::test(start_paused = true)]
async fn slow_reviews_get_two_attempts_three_seconds_apart() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_V2).after(Duration::from_secs(4)),
        Reply::ok(RATINGS),
    )
    .await;
    let start = Instant::now();
    let (status, page) = bi.page("/productpage").await;
    let took = start.elapsed();
    assert_eq!(status, 200);
    assert!(page.contains(REVIEWS_ERROR) && page.contains("Error fetching product reviews"));
    assert!(page.contains("PublisherA"));
    assert_eq!(count(&page, STAR), 0);
    let hits = bi.reviews.hits();
    assert_eq!(hits.len(), 2);
    let gap = hits[1].at - hits[0].at;
    assert!(about(gap, Duration::from_secs(3)), "attempts {gap:?} apart");
    assert!(about(took, Duration::from_secs(6)), "page took {took:?}");
}

#[tokio::test(start_paused = true)]
async fn reviews_503_is_retried_at_once() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::status(503, ""),
        Reply::ok(RATINGS),
    )
    .await;
    let start = Instant::now();
    let (status, page) = bi.page("/productpage").await;
    assert_eq!(status, 200);
    assert!(page.contains(REVIEWS_ERROR));
    let hits = bi.reviews.hits();
    assert_eq!(hits.len(), 2);
    assert!(hits[1].at - hits[0].at < SLACK, "no backoff");
    assert!(start.elapsed() < SLACK);
}

#[tokio::test(start_paused = true)]
async fn slow_details_gets_one_attempt_of_three_seconds() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS).after(Duration::from_secs(10)),
        Reply::ok(REVIEWS_V2),
        Reply::ok(RATINGS),
    )
    .await;
    let start = Instant::now();
    let (status, page) = bi.page("/productpage").await;
    let took = start.elapsed();
    assert_eq!(status, 200);
    assert!(page.contains(DETAILS_ERROR));
    assert_eq!(count(&page, STAR), 9, "reviews still answered");
    assert_eq!(bi.details.hits().len(), 1);
    assert!(about(took, Duration::from_secs(3)), "page took {took:?}");
    // reviews is only called once details has given up.
    assert!(about(
        bi.reviews.hits()[0].at - bi.details.hits()[0].at,
        Duration::from_secs(3)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_reviews_answer_within_the_deadline_is_used() {
    let bi = Bookinfo::start(
        Reply::ok(DETAILS),
        Reply::ok(REVIEWS_V2).after(Duration::from_millis(2900)),
        Reply::ok(RATINGS),
    )
    .await;
    let start = Instant::now();
    let (_, page) = bi.page("/productpage").await;
    assert_eq!(count(&page, STAR), 9);
    assert_eq!(bi.reviews.hits().len(), 1);
    assert!(about(start.elapsed(), Duration::from_millis(2900)));
}
