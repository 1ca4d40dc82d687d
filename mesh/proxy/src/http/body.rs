//! Body types inside the proxy (and the error type they carry), and a response body
//! wrapper that reports how many bytes went downstream once the response is finished
//! (for metrics and the access log).

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper::body::{Body, Frame, SizeHint};

use crate::telemetry::metrics::RequestProtocol;

/// Error type carried by request and response bodies inside the proxy.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Body of every request and response the proxy handles.
pub type ProxyBody = BoxBody<Bytes, BoxError>;

/// Body type of requests sent upstream (the same type, named for the pool's side).
pub type UpstreamBody = BoxBody<Bytes, BoxError>;

/// A complete body.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// An empty body.
pub fn empty() -> ProxyBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

/// Boxes any body with a compatible error.
pub fn boxed<B>(body: B) -> ProxyBody
where
    B: Body<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    body.map_err(Into::into).boxed()
}

/// A body that fails at once: a response the connection is closed on, not sent.
pub struct Severed;

impl Body for Severed {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        Poll::Ready(Some(Err("connection closed by fault injection".into())))
    }
}

/// Calls `done(status, bytes, protocol)` once `resp`'s body has ended (or is dropped),
/// with the number of body bytes that went downstream: when a request is finished, for
/// metrics and the access log. For a gRPC request (`grpc`), the protocol carries the
/// `grpc-status` of the response's headers or trailers.
pub(crate) fn on_end<F>(resp: Response<ProxyBody>, grpc: bool, done: F) -> Response<ProxyBody>
where
    F: FnOnce(u16, u64, RequestProtocol) + Send + Sync + Unpin + 'static,
{
    let (parts, body) = resp.into_parts();
    let code = parts.status.as_u16();
    // A trailers-only gRPC answer carries its status in the headers.
    let status = if grpc {
        grpc_status(&parts.headers)
    } else {
        None
    };
    let done = move |bytes: u64, trailer: Option<u32>| {
        done(
            code,
            bytes,
            RequestProtocol::of(grpc, code, trailer.or(status)),
        );
    };
    let mut observed = Observed::new(body, done);
    observed.grpc = grpc;
    Response::from_parts(parts, boxed(observed))
}

/// The `grpc-status` of `headers`.
fn grpc_status(headers: &http::HeaderMap) -> Option<u32> {
    headers
        .get(&crate::http::headers::GRPC_STATUS)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|v| v.trim().parse().ok())
}

/// Counts the bytes of a body and calls `done` once, when the body ends or is dropped
/// (with the `grpc-status` of its trailers, when asked to look).
pub struct Observed<F: FnOnce(u64, Option<u32>) + Send> {
    inner: ProxyBody,
    bytes: u64,
    grpc: bool,
    trailer: Option<u32>,
    done: Option<F>,
}

impl<F: FnOnce(u64, Option<u32>) + Send> Observed<F> {
    /// Wraps `inner`.
    pub fn new(inner: ProxyBody, done: F) -> Self {
        Self {
            inner,
            bytes: 0,
            grpc: false,
            trailer: None,
            done: Some(done),
        }
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.bytes, self.trailer);
        }
    }
}

impl<F: FnOnce(u64, Option<u32>) + Send + Unpin> Body for Observed<F> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                } else if self.grpc
                    && let Some(trailers) = frame.trailers_ref()
                {
                    self.trailer = grpc_status(trailers);
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<F: FnOnce(u64, Option<u32>) + Send> Drop for Observed<F> {
    fn drop(&mut self) {
        self.finish();
    }
}
