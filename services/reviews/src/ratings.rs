//! The call from reviews (v2, v3) to the ratings service.

use std::time::Duration;

use bookinfo_common::trace;
use http::{HeaderMap, HeaderValue, header};
use serde_json::Value;
use tracing::Instrument as _;

/// Asks ratings for `product_id` and returns the stars of Reviewer1 and Reviewer2.
///
/// Any failure (connect error, timeout, non-200, a body without a `ratings` object or
/// without a reviewer's integer) makes that reviewer's rating unavailable instead of
/// failing the whole answer, so the page degrades gracefully.
pub async fn fetch(
    client: &reqwest::Client,
    base_url: &str,
    product_id: i32,
    mut headers: HeaderMap,
    timeout: Duration,
) -> [Option<i64>; 2] {
    let url = format!("{base_url}/ratings/{product_id}");
    headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
    // The CLIENT span covers the whole exchange, body included; the warnings below are
    // written in it, so their log lines carry its ids.
    let span = trace::client_span("GET", &url, "ratings");
    exchange(client, &url, headers, timeout)
        .instrument(span)
        .await
}

async fn exchange(
    client: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    timeout: Duration,
) -> [Option<i64>; 2] {
    let span = tracing::Span::current();
    let resp = match client
        .get(url)
        .headers(headers)
        .timeout(timeout)
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => {
            trace::record_status(&span, None, Some(&e.to_string()));
            tracing::warn!("Error: unable to contact {url} got exception {e}");
            return [None, None];
        }
    };
    trace::record_status(&span, Some(resp.status().as_u16()), None);
    if resp.status() != reqwest::StatusCode::OK {
        tracing::warn!(
            "Error: unable to contact {url} got status of {}",
            resp.status().as_u16()
        );
        return [None, None];
    }
    match resp.bytes().await {
        Ok(body) => stars(&body),
        Err(e) => {
            tracing::warn!("Error: unable to contact {url} got exception {e}");
            [None, None]
        }
    }
}

/// Extracts `ratings.Reviewer1` and `ratings.Reviewer2` from a ratings answer.
pub fn stars(body: &[u8]) -> [Option<i64>; 2] {
    let Ok(json) = serde_json::from_slice::<Value>(body) else {
        return [None, None];
    };
    let ratings = json.get("ratings");
    let get = |k: &str| ratings.and_then(|r| r.get(k)).and_then(Value::as_i64);
    [get("Reviewer1"), get("Reviewer2")]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_ratings_shapes() {
        assert_eq!(
            stars(br#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#),
            [Some(5), Some(4)]
        );
        assert_eq!(
            stars(br#"{"id":0,"ratings":{"Reviewer1":1}}"#),
            [Some(1), None]
        );
        // The MySQL connect-error quirk: HTTP 200 with an error body and no ratings.
        assert_eq!(
            stars(br#"{"error":"could not connect to ratings database"}"#),
            [None, None]
        );
        assert_eq!(stars(b"garbage"), [None, None]);
        assert_eq!(stars(br#"{"ratings":{"Reviewer1":"5"}}"#), [None, None]);
    }
}
