//! `GET /api/v1/window`: rolling steady-state figures while a run is in progress, for the
//! chaos runner (or anyone with curl) to poll.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header::CONTENT_TYPE};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::time::Instant;

use super::stats::Recorder;

/// The requested arrival rate at a time since the start (0 when not applicable).
pub type RateFn = Arc<dyn Fn(Duration) -> f64 + Send + Sync>;

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, http::HeaderValue::from_static(content_type));
    response
}

fn handle(req: &Request<Incoming>, recorder: &Recorder, rate: &RateFn) -> Response<Full<Bytes>> {
    if req.uri().path() != "/api/v1/window" {
        return respond(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            "not found\n".into(),
        );
    }
    if req.method() != Method::GET {
        return respond(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET\n".into(),
        );
    }
    let summary = recorder.window(Instant::now(), |t| rate(t));
    match serde_json::to_string(&summary) {
        Ok(body) => respond(StatusCode::OK, "application/json", body),
        Err(e) => respond(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain; charset=utf-8",
            format!("cannot encode the window: {e}\n"),
        ),
    }
}

/// Serves the window endpoint on `listener` until the returned future is dropped.
pub async fn serve(listener: TcpListener, recorder: Arc<Recorder>, rate: RateFn) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors and the like: back off instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let (recorder, rate) = (Arc::clone(&recorder), Arc::clone(&rate));
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<Incoming>| {
                let response = handle(&req, &recorder, &rate);
                async move { Ok::<_, Infallible>(response) }
            });
            // A client that hangs up mid-request is its own problem, not the run's.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
