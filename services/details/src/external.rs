//! The external books API call of "details v2" (`ENABLE_EXTERNAL_BOOK_SERVICE=true`).
//!
//! The egress lab routes this call through the mesh: with `DO_NOT_ENCRYPT=true` the app
//! speaks plain HTTP to port 80 and a ServiceEntry + DestinationRule make the sidecar
//! originate TLS to the real API.

use std::time::Duration;

use bookinfo_common::trace;
use http::HeaderMap;
use serde_json::Value;
use tracing::Instrument as _;

use crate::book::BookDetails;

/// The edition of The Comedy of Errors the original looks up.
pub const ISBN: &str = "0486424618";

/// The original's read timeout for the books API.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// Why the lookup failed; the message becomes the 400 body, as in the original.
#[derive(Debug, thiserror::Error)]
pub enum ExternalError {
    /// Transport failure or timeout.
    #[error("books API request failed: {0}")]
    Request(#[from] reqwest::Error),
    /// The API answered with a non-success status.
    #[error("books API answered HTTP {0}")]
    Status(u16),
    /// The body was not the expected JSON.
    #[error("books API answer is not usable: {0}")]
    Shape(String),
}

/// Fetches the book from the API at `base` and maps it to our details.
pub async fn fetch(
    client: &reqwest::Client,
    base: &str,
    headers: HeaderMap,
) -> Result<BookDetails, ExternalError> {
    let url = format!("{base}/books/v1/volumes?q=isbn:{ISBN}");
    let span = trace::client_span("GET", &url, "books-api");
    let call = async {
        let resp = client
            .get(&url)
            .headers(headers)
            .timeout(TIMEOUT)
            .send()
            .await?;
        trace::record_status(
            &tracing::Span::current(),
            Some(resp.status().as_u16()),
            None,
        );
        if !resp.status().is_success() {
            return Err(ExternalError::Status(resp.status().as_u16()));
        }
        Ok(resp.bytes().await?)
    };
    let body = call.instrument(span.clone()).await.inspect_err(|e| {
        if let ExternalError::Request(e) = e {
            trace::record_status(&span, None, Some(&e.to_string()));
        }
    })?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| ExternalError::Shape(format!("not JSON ({e})")))?;
    map_volume(&json)
}

/// Maps `items[0].volumeInfo` the way the original does.
pub fn map_volume(json: &Value) -> Result<BookDetails, ExternalError> {
    let info = json
        .pointer("/items/0/volumeInfo")
        .ok_or_else(|| ExternalError::Shape("no items[0].volumeInfo".into()))?;
    let get = |k: &str| info.get(k).cloned().unwrap_or(Value::Null);
    let isbn = |kind: &str| {
        info.get("industryIdentifiers")
            .and_then(Value::as_array)
            .and_then(|ids| {
                ids.iter()
                    .find(|i| i.get("type").and_then(Value::as_str) == Some(kind))
            })
            .and_then(|i| i.get("identifier").cloned())
            .unwrap_or(Value::Null)
    };
    Ok(BookDetails {
        author: info.pointer("/authors/0").cloned().unwrap_or(Value::Null),
        year: get("publishedDate"),
        kind: if info.get("printType").and_then(Value::as_str) == Some("BOOK") {
            "paperback"
        } else {
            "unknown"
        }
        .into(),
        pages: get("pageCount"),
        publisher: get("publisher"),
        language: if info.get("language").and_then(Value::as_str) == Some("en") {
            "English"
        } else {
            "unknown"
        }
        .into(),
        isbn10: isbn("ISBN_10"),
        isbn13: isbn("ISBN_13"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_a_volume() {
        let json: Value = serde_json::from_str(
            r#"{"items":[{"volumeInfo":{"authors":["William Shakespeare"],"publishedDate":"2002-03-12",
            "printType":"BOOK","pageCount":80,"publisher":"Dover Publications","language":"en",
            "industryIdentifiers":[{"type":"ISBN_10","identifier":"0486424618"},{"type":"ISBN_13","identifier":"9780486424613"}]}}]}"#,
        )
        .unwrap();
        let d = map_volume(&json).unwrap();
        let id = crate::id::parse("3").unwrap();
        assert_eq!(
            d.to_json(&id),
            r#"{"id":3,"author":"William Shakespeare","year":"2002-03-12","type":"paperback","pages":80,"publisher":"Dover Publications","language":"English","ISBN-10":"0486424618","ISBN-13":"9780486424613"}"#
        );
        assert!(map_volume(&serde_json::json!({"items": []})).is_err());
    }
}
