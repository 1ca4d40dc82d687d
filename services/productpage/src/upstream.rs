//! Calls to details, reviews and ratings, with the original's timeouts and retries.
//!
//! These numbers are what the fault-injection and timeout labs are built on, so they
//! are kept exactly: every attempt has a 3 s deadline (connect, headers and body
//! together), details and ratings get one attempt, reviews gets two with no backoff.
//! Every logical call, not every attempt, is counted in `request_result_total`.

use std::time::Duration;

use bookinfo_common::headers::{PRODUCTPAGE_FORWARD, forwarded};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use reqwest::Url;
use tracing::Instrument as _;

/// Deadline of one attempt, like the original's `requests.get(..., timeout=3.0)`.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);

/// Attempts made on reviews. The second attempt is the original's deliberate bug:
/// a 7 s delay injected on reviews makes productpage give up only after 2 × 3 s = 6 s,
/// which is what the fault-injection lab lets people discover. Do not "fix" it.
const REVIEWS_ATTEMPTS: u32 = 2;

/// Status reported when no response arrived (timeout, refused connection, DNS failure).
const NO_RESPONSE: u16 = 500;

/// Header carrying the signed-in user to every upstream; routing rules such as
/// `end-user: exact: jason` match on it.
pub const END_USER: HeaderName = HeaderName::from_static("end-user");

/// Headers for the calls made on behalf of a request: the tracing and auth headers
/// of [`PRODUCTPAGE_FORWARD`], plus `end-user` from the session. An `end-user` header
/// sent by the client is never copied, so nobody can pose as jason without signing in.
pub fn outbound_headers(incoming: &HeaderMap, user: Option<&str>) -> HeaderMap {
    let mut out = forwarded(incoming, PRODUCTPAGE_FORWARD);
    // Login rejects names that are not valid header values, so this only skips
    // names from cookies signed by an older build.
    if let Some(value) = user.and_then(|u| HeaderValue::from_str(u).ok()) {
        out.insert(END_USER, value);
    }
    out
}

/// The services productpage calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// `GET /details/{id}`.
    Details,
    /// `GET /reviews/{id}`.
    Reviews,
    /// `GET /ratings/{id}` (only the JSON API calls ratings directly).
    Ratings,
}

impl Service {
    /// Name used in URLs, logs and the `destination_app` label.
    pub fn name(self) -> &'static str {
        match self {
            Self::Details => "details",
            Self::Reviews => "reviews",
            Self::Ratings => "ratings",
        }
    }

    /// The text users see when the service failed; labs and tests grep for it.
    pub fn unavailable_message(self) -> &'static str {
        match self {
            Self::Details => "Sorry, product details are currently unavailable for this book.",
            Self::Reviews => "Sorry, product reviews are currently unavailable for this book.",
            Self::Ratings => "Sorry, product ratings are currently unavailable for this book.",
        }
    }

    fn attempts(self) -> u32 {
        match self {
            Self::Reviews => REVIEWS_ATTEMPTS,
            Self::Details | Self::Ratings => 1,
        }
    }
}

/// A logical call that did not produce usable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The upstream's status if a response arrived, otherwise 500 (also 500 for a
    /// 200 whose body is not JSON).
    pub status: u16,
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("no answer within {ATTEMPT_TIMEOUT:?}")]
    Timeout,
    #[error("{0}")]
    Transport(#[source] reqwest::Error),
    #[error("answered with status {0}")]
    Status(u16),
}

impl AttemptError {
    fn status(&self) -> u16 {
        match self {
            Self::Status(s) => *s,
            Self::Timeout | Self::Transport(_) => NO_RESPONSE,
        }
    }
}

/// Labels of `request_result_total`, named as in the original.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ResultLabels {
    /// `details`, `reviews` or `ratings`.
    pub destination_app: &'static str,
    /// 200, the failing status, or 500 when no response arrived.
    pub response_code: u16,
}

/// The three upstreams and the client that reaches them.
#[derive(Debug, Clone)]
pub struct Backends {
    client: reqwest::Client,
    details: Url,
    reviews: Url,
    ratings: Url,
    results: Family<ResultLabels, Counter>,
}

impl Backends {
    /// Backends at the given base URLs; `results` is registered by the caller.
    pub fn new(
        client: reqwest::Client,
        details: Url,
        reviews: Url,
        ratings: Url,
        results: Family<ResultLabels, Counter>,
    ) -> Self {
        Self {
            client,
            details,
            reviews,
            ratings,
            results,
        }
    }

    /// Base URL of a service (shown on the landing page).
    pub fn base_url(&self, service: Service) -> &Url {
        match service {
            Service::Details => &self.details,
            Service::Reviews => &self.reviews,
            Service::Ratings => &self.ratings,
        }
    }

    /// `GET /<service>/<id>` with the service's attempts and deadlines, forwarding
    /// `headers`. Success means a 200 whose body is JSON.
    pub async fn call(
        &self,
        service: Service,
        id: &str,
        headers: &HeaderMap,
    ) -> Result<serde_json::Value, Failure> {
        let result = match self.endpoint(service, id) {
            Some(url) => self.attempts(service, &url, headers).await,
            None => Err(Failure {
                status: NO_RESPONSE,
            }),
        };
        let response_code = match &result {
            Ok(_) => 200,
            Err(f) => f.status,
        };
        self.results
            .get_or_create(&ResultLabels {
                destination_app: service.name(),
                response_code,
            })
            .inc();
        result
    }

    async fn attempts(
        &self,
        service: Service,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<serde_json::Value, Failure> {
        let attempts = service.attempts();
        let mut last = AttemptError::Timeout;
        for attempt in 1..=attempts {
            match self.attempt(service, url, headers).await {
                Ok(body) => {
                    return serde_json::from_slice(&body).map_err(|error| {
                        tracing::warn!(destination = service.name(), %url, %error, "Upstream answered 200 with a body that is not JSON.");
                        Failure { status: NO_RESPONSE }
                    });
                }
                Err(error) => {
                    // Any failure is retried, whatever the status: that is the
                    // original's behaviour and the labs depend on it.
                    tracing::warn!(destination = service.name(), %url, attempt, attempts, %error, "Upstream call failed.");
                    last = error;
                }
            }
        }
        Err(Failure {
            status: last.status(),
        })
    }

    async fn attempt(
        &self,
        service: Service,
        url: &Url,
        headers: &HeaderMap,
    ) -> Result<Bytes, AttemptError> {
        let request = self.client.get(url.clone()).headers(headers.clone());
        // One CLIENT span per attempt, as OpenTelemetry counts resends.
        let span = bookinfo_common::trace::client_span("GET", url.as_str(), service.name());
        let exchange = async {
            let response = request.send().await.map_err(AttemptError::Transport)?;
            let status = response.status().as_u16();
            bookinfo_common::trace::record_status(&tracing::Span::current(), Some(status), None);
            if status != 200 {
                return Err(AttemptError::Status(status));
            }
            // The body is part of the attempt: a backend that stalls mid-body times
            // out like one that never answers.
            response.bytes().await.map_err(AttemptError::Transport)
        };
        let result = tokio::time::timeout(ATTEMPT_TIMEOUT, exchange.instrument(span.clone()))
            .await
            .unwrap_or(Err(AttemptError::Timeout));
        if let Err(e @ (AttemptError::Timeout | AttemptError::Transport(_))) = &result {
            bookinfo_common::trace::record_status(&span, None, Some(&e.to_string()));
        }
        result
    }

    /// `<base>/<service>/<id>`, with `id` percent-encoded as one path segment.
    fn endpoint(&self, service: Service, id: &str) -> Option<Url> {
        let mut url = self.base_url(service).clone();
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .push(service.name())
            .push(id);
        Some(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backends() -> Backends {
        bookinfo_common::client::install_crypto_provider();
        let url = |s: &str| Url::parse(s).unwrap();
        Backends::new(
            reqwest::Client::new(),
            url("http://details:9080"),
            url("http://reviews.ns:9191/"),
            url("http://[::1]:9080"),
            Family::default(),
        )
    }

    #[test]
    fn endpoints_encode_the_id_as_one_segment() {
        let b = backends();
        assert_eq!(
            b.endpoint(Service::Details, "0").unwrap().as_str(),
            "http://details:9080/details/0"
        );
        assert_eq!(
            b.endpoint(Service::Reviews, "1").unwrap().as_str(),
            "http://reviews.ns:9191/reviews/1"
        );
        assert_eq!(
            b.endpoint(Service::Ratings, "a/b c").unwrap().as_str(),
            "http://[::1]:9080/ratings/a%2Fb%20c"
        );
    }

    #[test]
    fn end_user_comes_from_the_session_only() {
        let mut incoming = HeaderMap::new();
        incoming.insert("end-user", "mallory".parse().unwrap());
        incoming.insert("x-request-id", "r1".parse().unwrap());
        incoming.insert("x-foo", "dropped".parse().unwrap());
        let out = outbound_headers(&incoming, None);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-request-id"], "r1");
        let out = outbound_headers(&incoming, Some("jason"));
        assert_eq!(
            out.get_all("end-user").iter().collect::<Vec<_>>(),
            ["jason"]
        );
    }

    #[test]
    fn only_reviews_is_retried() {
        assert_eq!(Service::Reviews.attempts(), 2);
        assert_eq!(Service::Details.attempts(), 1);
        assert_eq!(Service::Ratings.attempts(), 1);
    }
}
