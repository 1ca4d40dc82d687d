//! Network faults of a fault lease, as the caller's sidecar applies them to one HTTP
//! exchange (after Toxiproxy's toxics and Chaos Mesh's NetworkChaos):
//!
//! - `bandwidth`: the response body is relayed at the rate ([`Throttled`]); on the
//!   request's way, forwarding waits as long as sending the request body at the rate
//!   takes (the body is already buffered for retries by then);
//! - `reset`: the connection to the caller is cut, before forwarding (the service never
//!   sees the request) or after `after_bytes` bytes of the response body ([`Cut`]);
//! - `blackhole`: nothing comes back, before or after the service did the work, until
//!   the caller gives up (its closing cancels the request) or the lease ends;
//! - `slow_close`: the whole response is relayed, its end only after the delay
//!   ([`SlowClose`]);
//! - a delay on the response's way (a lease's `delay.direction: response`).
//!
//! A cut with nothing sent is a [`respond::hangup`]: the listener closes the connection
//! without a word, which is what a caller sees of a reset peer.

use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{Response, header};
use hyper::body::{Body, Frame, SizeHint};
use mesh_api::compile::now_ms;
use mesh_api::defaults::Direction;
use opentelemetry::KeyValue;
use tokio::time::{Instant, Sleep};

use crate::http::body::{BoxError, ProxyBody, boxed};
use crate::http::respond;
use crate::outbound::Phase;
use crate::outbound::ctx::Ctx;
use crate::telemetry::flags::Flag;

/// Longest a blackhole holds a request when its lease's end is unknown.
const MAX_HOLD: Duration = Duration::from_secs(3600);

/// The network faults that fired for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Network {
    /// Wait this long before relaying the response.
    pub response_delay: Option<Duration>,
    /// Rate in bytes per second, and the body it applies to.
    pub bandwidth: Option<(u64, Direction)>,
    /// Response bytes let through, and where the cut happens.
    pub reset: Option<(u64, Direction)>,
    /// Where the traffic disappears.
    pub blackhole: Option<Direction>,
    /// How long the response's end is held.
    pub slow_close: Option<Duration>,
    /// End of the lease (ms since the epoch): a blackhole ends there.
    pub expires_at_ms: Option<u64>,
}

impl Network {
    /// The request's side: a cut or a blackhole before forwarding.
    pub(in crate::outbound) async fn on_request(&self, ctx: &mut Ctx) -> Phase<()> {
        if self.reset.is_some_and(|(_, d)| d == Direction::Request) {
            return std::ops::ControlFlow::Break(reset(ctx));
        }
        if self.blackhole == Some(Direction::Request) {
            return std::ops::ControlFlow::Break(self.blackhole(ctx).await);
        }
        std::ops::ControlFlow::Continue(())
    }

    /// A throttled request body: forwarding waits as long as its transfer takes.
    pub(in crate::outbound) async fn throttle_request(&self, body_len: u64, ctx: &mut Ctx) {
        if let Some((rate, Direction::Request)) = self.bandwidth {
            note_bandwidth(ctx, rate, Direction::Request);
            tokio::time::sleep(transfer_time(body_len, rate)).await;
        }
    }

    /// The response's side, applied to the response the retries produced.
    pub(in crate::outbound) async fn on_response(
        &self,
        resp: Response<ProxyBody>,
        ctx: &mut Ctx,
    ) -> Response<ProxyBody> {
        if let Some(wait) = self.response_delay {
            ctx.note_flag(Flag::DelayInjected);
            ctx.trace_event("fault.delay", || {
                vec![
                    KeyValue::new("fault.delay_ms", wait.as_millis() as i64),
                    KeyValue::new("fault.direction", "response"),
                ]
            });
            tokio::time::sleep(wait).await;
        }
        if self.blackhole == Some(Direction::Response) {
            // The service answered; the answer goes nowhere.
            drop(resp);
            return self.blackhole(ctx).await;
        }
        let (mut parts, mut body) = resp.into_parts();
        if let Some((after, Direction::Response)) = self.reset {
            if after == 0 {
                return reset(ctx);
            }
            ctx.note_flag(Flag::FaultInjected);
            ctx.note_details("fault_filter_reset");
            ctx.trace_event("fault.reset", || {
                vec![KeyValue::new("fault.reset.after_bytes", after as i64)]
            });
            body = boxed(Cut::new(body, after));
        }
        if let Some((rate, Direction::Response)) = self.bandwidth {
            note_bandwidth(ctx, rate, Direction::Response);
            body = boxed(Throttled::new(body, rate));
        }
        if let Some(hold) = self.slow_close {
            ctx.note_flag(Flag::DelayInjected);
            ctx.trace_event("fault.slow_close", || {
                vec![KeyValue::new(
                    "fault.slow_close_ms",
                    hold.as_millis() as i64,
                )]
            });
            // Without a length the caller reads to the end of the body, which is held.
            parts.headers.remove(header::CONTENT_LENGTH);
            body = boxed(SlowClose::new(body, hold));
        }
        Response::from_parts(parts, body)
    }

    /// Holds the request until the caller gives up or the lease ends, then hangs up.
    async fn blackhole(&self, ctx: &mut Ctx) -> Response<ProxyBody> {
        ctx.note_flag(Flag::FaultInjected);
        ctx.note_details("fault_filter_blackhole");
        ctx.trace_event("fault.blackhole", Vec::new);
        let hold = self.expires_at_ms.map_or(MAX_HOLD, |end| {
            Duration::from_millis(end.saturating_sub(now_ms())).min(MAX_HOLD)
        });
        tokio::time::sleep(hold).await;
        respond::hangup()
    }
}

fn reset(ctx: &mut Ctx) -> Response<ProxyBody> {
    ctx.note_flag(Flag::FaultInjected);
    ctx.note_flag(Flag::LocalReset);
    ctx.note_details("fault_filter_reset");
    ctx.trace_event("fault.reset", || {
        vec![KeyValue::new("fault.reset.after_bytes", 0)]
    });
    respond::hangup()
}

fn note_bandwidth(ctx: &mut Ctx, rate: u64, direction: Direction) {
    ctx.note_flag(Flag::DelayInjected);
    ctx.trace_event("fault.bandwidth", || {
        vec![
            KeyValue::new("fault.bandwidth.bytes_per_second", rate as i64),
            KeyValue::new("fault.direction", direction.as_str()),
        ]
    });
}

/// How long `bytes` take at `rate` bytes per second.
fn transfer_time(bytes: u64, rate: u64) -> Duration {
    Duration::from_secs_f64(bytes as f64 / rate.max(1) as f64)
}

/// A body relayed at a fixed rate: data goes out in slices of about 50 ms worth, each
/// when the rate allows it, so the last byte leaves `size / rate` after the first poll.
pub(crate) struct Throttled {
    inner: ProxyBody,
    rate: u64,
    started: Option<Instant>,
    sent: u64,
    /// Data read from `inner` and not relayed yet.
    pending: Bytes,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Throttled {
    /// Wraps `inner` at `rate` bytes per second.
    pub(crate) fn new(inner: ProxyBody, rate: u64) -> Self {
        Self {
            inner,
            rate: rate.max(1),
            started: None,
            sent: 0,
            pending: Bytes::new(),
            sleep: None,
        }
    }

    fn slice(&self) -> usize {
        usize::try_from(self.rate / 20)
            .unwrap_or(usize::MAX)
            .clamp(1, 16 * 1024)
    }
}

impl Body for Throttled {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let started = *this.started.get_or_insert_with(Instant::now);
        loop {
            if let Some(sleep) = this.sleep.as_mut() {
                ready!(sleep.as_mut().poll(cx));
                this.sleep = None;
                let n = this.slice().min(this.pending.len());
                this.sent += n as u64;
                return Poll::Ready(Some(Ok(Frame::data(this.pending.split_to(n)))));
            }
            if !this.pending.is_empty() {
                let n = this.slice().min(this.pending.len()) as u64;
                let due = started + transfer_time(this.sent + n, this.rate);
                this.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
                continue;
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => this.pending = data,
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                other => return Poll::Ready(other),
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_empty() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body cut after `after` bytes: what comes before goes out, then the body fails, and
/// the listener can only close the connection. A shorter body ends as it would.
pub(crate) struct Cut {
    inner: ProxyBody,
    left: u64,
    cut: bool,
}

impl Cut {
    /// Wraps `inner`, letting `after` bytes through.
    pub(crate) fn new(inner: ProxyBody, after: u64) -> Self {
        Self {
            inner,
            left: after,
            cut: false,
        }
    }
}

impl Body for Cut {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if self.cut {
            return Poll::Ready(Some(Err("connection reset by fault injection".into())));
        }
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        let Some(Ok(frame)) = frame else {
            return Poll::Ready(frame);
        };
        match frame.into_data() {
            Ok(mut data) => {
                if data.len() as u64 >= self.left {
                    data.truncate(usize::try_from(self.left).unwrap_or(usize::MAX));
                    self.cut = true;
                }
                self.left -= data.len() as u64;
                Poll::Ready(Some(Ok(Frame::data(data))))
            }
            Err(trailers) => Poll::Ready(Some(Ok(trailers))),
        }
    }

    fn is_end_stream(&self) -> bool {
        !self.cut && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        // The caller is promised the whole body, and gets less: a truncated response.
        self.inner.size_hint()
    }
}

/// A body whose end is held back: every frame goes out as it comes, the end `hold`
/// after the inner body ended.
pub(crate) struct SlowClose {
    inner: ProxyBody,
    hold: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl SlowClose {
    /// Wraps `inner`.
    pub(crate) fn new(inner: ProxyBody, hold: Duration) -> Self {
        Self {
            inner,
            hold,
            sleep: None,
            done: false,
        }
    }
}

impl Body for SlowClose {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.sleep.is_none() {
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                None => this.sleep = Some(Box::pin(tokio::time::sleep(this.hold))),
                some => return Poll::Ready(some),
            }
        }
        if let Some(sleep) = this.sleep.as_mut() {
            ready!(sleep.as_mut().poll(cx));
        }
        this.done = true;
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        // No exact length: the listener frames the body in chunks, so the end is a frame
        // of its own that can be held.
        let mut hint = SizeHint::new();
        hint.set_lower(self.inner.size_hint().lower());
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::body::full;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn a_throttled_body_takes_the_time_its_rate_says() {
        let started = Instant::now();
        let body = Throttled::new(full(vec![7u8; 10_000]), 2_000);
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len(), 10_000);
        assert_eq!(started.elapsed(), Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttled_body_sends_its_first_slice_at_once_and_then_keeps_pace() {
        let started = Instant::now();
        let mut body = Throttled::new(full(vec![1u8; 1000]), 1000);
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first.len(), 50);
        assert_eq!(started.elapsed(), Duration::from_millis(50));
        let mut got = first.len();
        while let Some(frame) = body.frame().await {
            got += frame.unwrap().into_data().unwrap().len();
            let due = transfer_time(got as u64, 1000);
            assert_eq!(started.elapsed(), due);
        }
        assert_eq!(got, 1000);
    }

    #[tokio::test]
    async fn a_cut_body_lets_the_bytes_before_the_cut_through_then_fails() {
        let mut body = Cut::new(full(vec![b'x'; 100]), 30);
        let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(data.len(), 30);
        assert!(body.frame().await.unwrap().is_err());
        // A body shorter than the cut point ends normally.
        let short = Cut::new(full(vec![b'x'; 10]), 30);
        assert_eq!(short.collect().await.unwrap().to_bytes().len(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_close_holds_the_end_not_the_data() {
        let started = Instant::now();
        let mut body = SlowClose::new(full("answer"), Duration::from_secs(2));
        assert_eq!(body.size_hint().exact(), None);
        let data = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(&data[..], b"answer");
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert!(!body.is_end_stream());
        assert!(body.frame().await.is_none());
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(body.is_end_stream());
    }
}
