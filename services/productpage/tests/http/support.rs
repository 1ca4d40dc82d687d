//! Fake upstreams, a productpage on a real socket, and canned Bookinfo bodies.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bookinfo_productpage::{AppState, Config, Proxy, app};
use tokio::net::TcpListener;
use tokio::time::Instant;

pub(crate) const DETAILS: &str = r#"{"id":0,"author":"William Shakespeare","year":1595,"type":"paperback","pages":200,"publisher":"PublisherA","language":"English","ISBN-10":"1234567890","ISBN-13":"123-1234567890"}"#;
pub(crate) const REVIEWS_V1: &str = r#"{"id": "0","podname": "reviews-v1-6f8d9c7b5-abcde","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."}]}"#;
pub(crate) const REVIEWS_V2: &str = r#"{"id": "0","podname": "reviews-v2-5b64f47978-x9z7k","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"stars": 5, "color": "black"}},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"stars": 4, "color": "black"}}]}"#;
pub(crate) const REVIEWS_V3: &str = r#"{"id": "0","podname": "reviews-v3-7d99fd7f58-qwert","clustername": "east","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"stars": 5, "color": "red"}},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"stars": 4, "color": "red"}}]}"#;
pub(crate) const REVIEWS_RATINGS_DOWN: &str = r#"{"id": "0","podname": "reviews-v2-5b64f47978-x9z7k","clustername": "null","reviews": [{  "reviewer": "Reviewer1",  "text": "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!", "rating": {"error": "Ratings service is currently unavailable"}},{  "reviewer": "Reviewer2",  "text": "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare.", "rating": {"error": "Ratings service is currently unavailable"}}]}"#;
pub(crate) const RATINGS: &str = r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#;

pub(crate) const STAR: &str = "glyphicon glyphicon-star";
pub(crate) const DETAILS_ERROR: &str =
    "Sorry, product details are currently unavailable for this book.";
pub(crate) const REVIEWS_ERROR: &str =
    "Sorry, product reviews are currently unavailable for this book.";

/// What a fake upstream answers to every request.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    body: String,
    delay: Duration,
}

impl Reply {
    pub(crate) fn ok(body: &str) -> Self {
        Self::status(200, body)
    }

    pub(crate) fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    pub(crate) fn is_ok(&self) -> bool {
        self.status == 200
    }

    pub(crate) fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request a fake received.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) at: Instant,
}

/// A fake upstream on 127.0.0.1 that records every request.
#[derive(Debug, Clone)]
pub(crate) struct Fake {
    addr: SocketAddr,
    hits: Arc<Mutex<Vec<Hit>>>,
}

impl Fake {
    pub(crate) async fn start(reply: Reply) -> Self {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let router = Router::new()
            .fallback(answer)
            .with_state((reply, hits.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, hits }
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    pub(crate) fn hits(&self) -> Vec<Hit> {
        self.hits.lock().unwrap().clone()
    }
}

type FakeState = (Reply, Arc<Mutex<Vec<Hit>>>);

async fn answer(State((reply, hits)): State<FakeState>, req: Request) -> Response {
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_owned(), ToString::to_string);
    hits.lock().unwrap().push(Hit {
        path,
        headers: req.headers().clone(),
        at: Instant::now(),
    });
    tokio::time::sleep(reply.delay).await;
    let status = StatusCode::from_u16(reply.status).unwrap();
    (status, [("content-type", "application/json")], reply.body).into_response()
}

/// A port nothing listens on: calls to it are refused.
pub(crate) async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Configuration pointing productpage at the given upstream ports on 127.0.0.1.
pub(crate) fn config(details: u16, reviews: u16, ratings: u16, extra: &[(&str, &str)]) -> Config {
    let ports = [
        details.to_string(),
        reviews.to_string(),
        ratings.to_string(),
    ];
    let mut env: HashMap<&str, &str> = HashMap::from([
        ("DETAILS_HOSTNAME", "127.0.0.1"),
        ("REVIEWS_HOSTNAME", "127.0.0.1"),
        ("RATINGS_HOSTNAME", "127.0.0.1"),
        ("DETAILS_SERVICE_PORT", ports[0].as_str()),
        ("REVIEWS_SERVICE_PORT", ports[1].as_str()),
        ("RATINGS_SERVICE_PORT", ports[2].as_str()),
    ]);
    env.extend(extra.iter().copied());
    Config::from_lookup(&env, None).unwrap()
}

pub(crate) fn state(config: &Config) -> AppState {
    AppState::new(config, Proxy::Direct).unwrap()
}

/// The three fakes behind one productpage.
pub(crate) struct Bookinfo {
    pub(crate) url: String,
    pub(crate) details: Fake,
    pub(crate) reviews: Fake,
    pub(crate) ratings: Fake,
}

impl Bookinfo {
    /// productpage on a real socket in front of fakes answering as given.
    pub(crate) async fn start(details: Reply, reviews: Reply, ratings: Reply) -> Self {
        Self::start_with(details, reviews, ratings, &[]).await
    }

    pub(crate) async fn start_with(
        details: Reply,
        reviews: Reply,
        ratings: Reply,
        extra: &[(&str, &str)],
    ) -> Self {
        let (details, reviews, ratings) = (
            Fake::start(details).await,
            Fake::start(reviews).await,
            Fake::start(ratings).await,
        );
        let state = state(&config(
            details.port(),
            reviews.port(),
            ratings.port(),
            extra,
        ));
        let url = serve(state).await;
        Self {
            url,
            details,
            reviews,
            ratings,
        }
    }

    /// A healthy v2 deployment.
    pub(crate) async fn healthy() -> Self {
        Self::start(
            Reply::ok(DETAILS),
            Reply::ok(REVIEWS_V2),
            Reply::ok(RATINGS),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
    }

    /// Status and body of `GET path`.
    pub(crate) async fn page(&self, path: &str) -> (u16, String) {
        let resp = self.get(path).await;
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// Serves productpage on 127.0.0.1:0 and returns its base URL.
pub(crate) async fn serve(state: AppState) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    format!("http://{addr}")
}

/// A client that ignores any machine proxy and does not follow redirects.
pub(crate) fn client() -> reqwest::Client {
    bookinfo_common::client::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub(crate) fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}
