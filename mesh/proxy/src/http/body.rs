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

/// Calls `done(status, bytes)` once `resp`'s body has ended (or is dropped), with the
/// number of body bytes that went downstream: when a request is finished, for metrics
/// and the access log.
pub(crate) fn on_end<F>(resp: Response<ProxyBody>, done: F) -> Response<ProxyBody>
where
    F: FnOnce(u16, u64) + Send + Sync + Unpin + 'static,
{
    let (parts, body) = resp.into_parts();
    let code = parts.status.as_u16();
    let done = move |bytes: u64| done(code, bytes);
    Response::from_parts(parts, boxed(Observed::new(body, done)))
}

/// Counts the bytes of a body and calls `done` once, when the body ends or is dropped.
pub struct Observed<F: FnOnce(u64) + Send> {
    inner: ProxyBody,
    bytes: u64,
    done: Option<F>,
}

impl<F: FnOnce(u64) + Send> Observed<F> {
    /// Wraps `inner`.
    pub fn new(inner: ProxyBody, done: F) -> Self {
        Self {
            inner,
            bytes: 0,
            done: Some(done),
        }
    }

    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done(self.bytes);
        }
    }
}

impl<F: FnOnce(u64) + Send + Unpin> Body for Observed<F> {
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

impl<F: FnOnce(u64) + Send> Drop for Observed<F> {
    fn drop(&mut self) {
        self.finish();
    }
}
