//! The listeners' HTTP/1.1 fast lane: a small server loop for the requests a mesh carries
//! almost all the time (keep-alive HTTP/1.1, a `Content-Length` body of at most
//! [`BODY_LIMIT`], no upgrade), written straight against the socket.
//!
//! Why not hyper's server for these too: on a sidecar, the HTTP machinery is most of
//! the user-space cost per request. A loop that parses a head with `httparse`, hands the
//! handler a complete body and writes the response head and a ready body in one `write`
//! does the same job for less: on top of the pool's own client connection, it took a
//! further 8 % off a sidecar pair's CPU per request (`scripts/bench-ab.sh`, 12 rounds).
//!
//! Everything else still goes to hyper, for the rest of the connection: the h2 preface,
//! `CONNECT` and `Upgrade`, chunked or large request bodies, `Expect`, HTTP/1.0, and any
//! head `httparse` refuses (so malformed requests get hyper's answers). Hyper starts from
//! the bytes this loop has read and not used ([`Rewind`]), so nothing is lost in the
//! hand-over.
//!
//! On the inbound listener ([`PeerHeaders::SetAside`]) the loop also takes the peer
//! metadata exchange's two headers out of the head while parsing it: they are about
//! 600 bytes that would otherwise be checked, put into the header map and taken out
//! again on every request. The handler gets them on their own ([`Received`]).

use std::future::Future;
use std::io;
use std::mem::MaybeUninit;
use std::pin::{Pin, pin};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderValue};
use http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::watch;

use crate::http::body::ProxyBody;
use crate::http::headers::digits;
use crate::telemetry::peer::Received;
use crate::tls::MeshStream;

/// Largest request body the fast lane reads whole before calling the handler: the
/// outbound listener buffers this much for retries anyway.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Largest request head the fast lane reads; a longer one goes to hyper, which answers
/// `431`.
const HEAD_LIMIT: usize = 64 * 1024;

/// As many headers as hyper accepts by default.
const MAX_HEADERS: usize = 100;
/// Room made in the read buffer before each read of a request. Requests are cut off the
/// front of one buffer, so its spare room shrinks with every request; below this, a
/// request would arrive in two reads (and two system calls) instead of one. Once the
/// last request's bytes are dropped, making room reuses the same allocation.
const READ_ROOM: usize = 4 * 1024;
/// Headers a proxy may add to a request on its way through.
const ADDED_HEADERS: usize = 4;

/// A downstream request's body: complete when the fast lane read the request, streamed
/// by hyper otherwise.
#[derive(Debug)]
pub enum DownstreamBody {
    /// The whole body (`None` once taken).
    Complete(Option<Bytes>),
    /// A body hyper is reading.
    Hyper(Incoming),
}

impl Body for DownstreamBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Self::Complete(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Self::Hyper(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Complete(bytes) => bytes.is_none(),
            Self::Hyper(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Complete(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            Self::Hyper(body) => body.size_hint(),
        }
    }
}

/// What the fast lane does with the peer metadata exchange's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerHeaders {
    /// They are headers like any other (the outbound, gateway and admin listeners: an
    /// app's headers for a host outside the mesh go out as they came).
    Keep,
    /// They are taken out of the head and given to the handler on their own (the
    /// inbound listener, which never forwards them).
    SetAside,
}

/// How a fast-lane connection ended.
pub enum Outcome {
    /// Closed (by either side, or after an error); nothing more to do.
    Closed,
    /// A request the fast lane does not serve: hyper takes the connection from here,
    /// starting with these unread bytes.
    HandOver(Rewind),
}

/// Serves requests on `io` until the client closes, the connection must close, shutdown
/// begins while it is idle, or a request needs hyper. The handler gets the exchange's
/// headers set aside (`Some`) when `peer_headers` says so, else `None`.
pub async fn serve<H, F>(
    io: MeshStream,
    peer_headers: PeerHeaders,
    handler: H,
    shutdown: watch::Receiver<bool>,
) -> Outcome
where
    H: Fn(Request<DownstreamBody>, Option<Received>) -> F,
    F: Future<Output = Response<ProxyBody>>,
{
    let mut conn = Conn {
        io,
        buf: BytesMut::with_capacity(8 * 1024),
        out: Vec::with_capacity(8 * 1024),
        spans: Vec::with_capacity(16),
        set_aside: peer_headers == PeerHeaders::SetAside,
    };
    // One wait for the shutdown per connection, not one per request: registering and
    // dropping a watch waiter between every two requests showed up in the profile.
    let mut down = shutdown.clone();
    let mut begun = pin!(async move {
        let _ = down.wait_for(|down| *down).await;
    });
    loop {
        let head = match conn.read_request(begun.as_mut()).await {
            Read::Request(head) => head,
            Read::Closed => return Outcome::Closed,
            Read::HandOver => return Outcome::HandOver(conn.rewind()),
        };
        let Head {
            req,
            exchange,
            mut keep_alive,
        } = head;
        let method_is_head = req.method() == Method::HEAD;
        // Pinned here, where it is made: passed by value, the request's future (a few
        // KB) would be copied into `respond`'s state and then again into a pinned slot,
        // on every request.
        let response = pin!(handler(req, exchange));
        let Some(resp) = conn.respond(response).await else {
            return Outcome::Closed;
        };
        keep_alive &= !*shutdown.borrow();
        match conn.write_response(resp, method_is_head, keep_alive).await {
            Ok(true) => {}
            Ok(false) | Err(_) => return Outcome::Closed,
        }
    }
}

/// One downstream connection: its stream, what has been read and not yet used, the
/// buffer responses are written from, and where the last head's headers were (kept, like
/// the buffers, from one request to the next).
struct Conn {
    io: MeshStream,
    buf: BytesMut,
    out: Vec<u8>,
    spans: Vec<Span>,
    /// Whether the exchange's headers are set aside ([`PeerHeaders::SetAside`]).
    set_aside: bool,
}

// The request is moved out once, right away: cheaper than an allocation per request.
#[allow(clippy::large_enum_variant)]
enum Read {
    Request(Head),
    Closed,
    HandOver,
}

struct Head {
    req: Request<DownstreamBody>,
    /// The exchange's headers, when set aside.
    exchange: Option<Received>,
    keep_alive: bool,
}

/// Where a header sits in the head, as byte ranges.
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

/// What the parse of a complete head yields before the body is read.
struct Parsed {
    head_len: usize,
    method: (usize, usize),
    target: (usize, usize),
    body_len: usize,
    keep_alive: bool,
    /// Where the first `x-envoy-peer-metadata-id` and `x-envoy-peer-metadata` values
    /// are, when set aside (none of their copies is in the spans).
    peer_id: Option<(usize, usize)>,
    peer_metadata: Option<(usize, usize)>,
}

impl Conn {
    /// Reads the next request, head and body, or says why there is none.
    async fn read_request(&mut self, mut shutdown: Pin<&mut impl Future<Output = ()>>) -> Read {
        let parsed = loop {
            if !self.buf.is_empty() {
                match parse(&self.buf, &mut self.spans, self.set_aside) {
                    Ok(Some(p)) => break p,
                    Ok(None) if self.buf.len() < HEAD_LIMIT => {}
                    Ok(None) | Err(()) => return Read::HandOver,
                }
            }
            // Between requests, a shutdown closes the idle connection.
            let idle = self.buf.is_empty();
            self.buf.reserve(READ_ROOM);
            tokio::select! {
                biased;
                read = self.io.read_buf(&mut self.buf) => match read {
                    Ok(0) | Err(_) => return Read::Closed,
                    Ok(_) => {}
                },
                () = shutdown.as_mut(), if idle => return Read::Closed,
            }
        };
        while self.buf.len() < parsed.head_len + parsed.body_len {
            self.buf
                .reserve(parsed.head_len + parsed.body_len - self.buf.len());
            match self.io.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return Read::Closed,
                Ok(_) => {}
            }
        }
        let head = self.buf.split_to(parsed.head_len).freeze();
        let body = self.buf.split_to(parsed.body_len).freeze();
        match build(&head, &parsed, &self.spans, body.clone()) {
            Some(req) => Read::Request(Head {
                req,
                exchange: self.set_aside.then(|| {
                    let slice = |(a, b): (usize, usize)| head.slice(a..b);
                    Received {
                        id: parsed.peer_id.map(slice),
                        metadata: parsed.peer_metadata.map(slice),
                    }
                }),
                keep_alive: parsed.keep_alive,
            }),
            // Hyper parses the same bytes again and answers for them.
            None => {
                let mut again = BytesMut::with_capacity(head.len() + self.buf.len());
                again.extend_from_slice(&head);
                again.extend_from_slice(&body);
                again.extend_from_slice(&self.buf);
                self.buf = again;
                Read::HandOver
            }
        }
    }

    /// Waits for the handler's response while watching the connection: a client that
    /// closes it cancels the request (`None`), as Envoy does (flag `DC`). Bytes of a
    /// pipelined next request are kept for later.
    async fn respond<F: Future<Output = Response<ProxyBody>>>(
        &mut self,
        mut response: Pin<&mut F>,
    ) -> Option<Response<ProxyBody>> {
        loop {
            tokio::select! {
                biased;
                resp = response.as_mut() => return Some(resp),
                read = self.io.read_buf(&mut self.buf), if self.buf.len() < HEAD_LIMIT => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                },
            }
        }
    }

    /// Writes `resp`; says whether the connection stays open.
    async fn write_response(
        &mut self,
        resp: Response<ProxyBody>,
        method_is_head: bool,
        keep_alive: bool,
    ) -> io::Result<bool> {
        let (parts, mut body) = resp.into_parts();
        if parts
            .extensions
            .get::<crate::http::respond::Hangup>()
            .is_some()
        {
            // Nothing is written: the caller sees the connection closed.
            return Ok(false);
        }
        let status = parts.status;
        let no_body = method_is_head
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED;
        let keep_alive = keep_alive && !wants_close(&parts.headers);
        let framing = if no_body {
            Framing::None
        } else if parts.headers.contains_key(header::CONTENT_LENGTH) {
            Framing::Length
        } else if let Some(n) = body.size_hint().exact() {
            Framing::Add(n)
        } else {
            Framing::Chunked
        };

        let out = &mut self.out;
        out.clear();
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status.as_str().as_bytes());
        out.push(b' ');
        out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in &parts.headers {
            if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
                continue;
            }
            put_header(out, name.as_str().as_bytes(), value.as_bytes());
        }
        if !parts.headers.contains_key(header::DATE) {
            put_date(out);
        }
        match framing {
            Framing::Add(n) => put_header(out, b"content-length", digits(n, &mut [0; 20])),
            Framing::Chunked => put_header(out, b"transfer-encoding", b"chunked"),
            Framing::None | Framing::Length => {}
        }
        if !keep_alive {
            put_header(out, b"connection", b"close");
        }
        out.extend_from_slice(b"\r\n");

        if !matches!(framing, Framing::None) {
            // Frames that are ready now go out with the head, in one write; the buffer
            // is flushed before waiting for a frame that is not.
            loop {
                let next = {
                    let mut frame = pin!(http_body_util::BodyExt::frame(&mut body));
                    match poll_once(frame.as_mut()).await {
                        Some(f) => f,
                        None => {
                            self.io.write_all(&self.out).await?;
                            self.out.clear();
                            frame.await
                        }
                    }
                };
                let data = match next {
                    None => break,
                    Some(Ok(frame)) => match frame.into_data() {
                        Ok(data) => data,
                        // Trailers have no place in this framing; they are dropped.
                        Err(_) => continue,
                    },
                    // The body failed half way: all the client can be told is a close.
                    Some(Err(_)) => {
                        self.io.write_all(&self.out).await?;
                        return Ok(false);
                    }
                };
                if matches!(framing, Framing::Chunked) {
                    if data.is_empty() {
                        continue;
                    }
                    self.out
                        .extend_from_slice(format!("{:x}\r\n", data.len()).as_bytes());
                    self.out.extend_from_slice(&data);
                    self.out.extend_from_slice(b"\r\n");
                } else {
                    self.out.extend_from_slice(&data);
                }
                if self.out.len() >= 64 * 1024 {
                    self.io.write_all(&self.out).await?;
                    self.out.clear();
                }
                if body.is_end_stream() {
                    break;
                }
            }
            if matches!(framing, Framing::Chunked) {
                self.out.extend_from_slice(b"0\r\n\r\n");
            }
        }
        self.io.write_all(&self.out).await?;
        self.out.clear();
        // The map goes to the next request or response (two allocations fewer).
        crate::http::headers::recycle(parts.headers);
        Ok(keep_alive)
    }

    /// The connection for hyper, with what has been read and not used in front.
    fn rewind(self) -> Rewind {
        Rewind {
            prefix: self.buf.freeze(),
            io: self.io,
        }
    }
}

enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// The response carries its `Content-Length`.
    Length,
    /// The body's exact size is known: add `Content-Length`.
    Add(u64),
    /// Unknown length.
    Chunked,
}

/// Polls `fut` once: its output if ready, `None` if it would wait.
async fn poll_once<F: Future + Unpin>(fut: F) -> Option<F::Output> {
    let mut fut = fut;
    std::future::poll_fn(|cx| match Pin::new(&mut fut).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Writes a `Date` header; the text is formatted once per second, as hyper does.
fn put_date(out: &mut Vec<u8>) {
    thread_local! {
        static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
    }
    let now = std::time::SystemTime::now();
    let second = now
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != second || text.is_empty() {
            *at = second;
            *text = httpdate::fmt_http_date(now);
        }
        put_header(out, b"date", text.as_bytes());
    });
}

/// Whether a `Connection` header asks to close.
fn wants_close(headers: &HeaderMap) -> bool {
    headers.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    })
}

/// Parses a request head at the start of `buf`. `Ok(None)`: not complete yet. `Err`:
/// not one for the fast lane (hyper decides what it is). With `set_aside`, the peer
/// metadata exchange's headers are left out of `spans` and located in the result.
fn parse(buf: &[u8], spans: &mut Vec<Span>, set_aside: bool) -> Result<Option<Parsed>, ()> {
    // Uninitialized slots: a head has a handful of headers, and zeroing room for a
    // hundred costs more than parsing them.
    let mut headers = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let head_len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(()),
    };
    if req.version != Some(1) {
        return Err(());
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(());
    };
    if method == "CONNECT" {
        return Err(());
    }
    let at = |s: &[u8]| {
        let start = s.as_ptr() as usize - buf.as_ptr() as usize;
        (start, start + s.len())
    };
    let mut body_len = None;
    let mut keep_alive = true;
    let (mut peer_id, mut peer_metadata) = (None, None);
    spans.clear();
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        // httparse has checked the value's bytes as `HeaderValue` would (visible ASCII,
        // space, tab, obs-text), so leaving them out of the map changes what is accepted
        // in no way.
        if set_aside && let Some(is_id) = Received::which(name) {
            let first = if is_id {
                &mut peer_id
            } else {
                &mut peer_metadata
            };
            first.get_or_insert(at(h.value));
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or(())?;
            if body_len.is_some_and(|b| b != n) || n > BODY_LIMIT {
                return Err(());
            }
            body_len = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"upgrade")
            || name.eq_ignore_ascii_case(b"expect")
        {
            return Err(());
        } else if name.eq_ignore_ascii_case(b"connection") {
            keep_alive &= !h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
        spans.push(Span {
            name: at(name),
            value: at(h.value),
        });
    }
    Ok(Some(Parsed {
        head_len,
        method: at(method.as_bytes()),
        target: at(target.as_bytes()),
        body_len: body_len.unwrap_or(0),
        keep_alive,
        peer_id,
        peer_metadata,
    }))
}

/// Builds the request from a parsed head; `None` if a part of it is not valid for the
/// `http` types (hyper then answers for it).
fn build(
    head: &Bytes,
    parsed: &Parsed,
    spans: &[Span],
    body: Bytes,
) -> Option<Request<DownstreamBody>> {
    let slice = |(a, b): (usize, usize)| head.slice(a..b);
    let method = Method::from_bytes(&head[parsed.method.0..parsed.method.1]).ok()?;
    let uri = Uri::from_maybe_shared(slice(parsed.target)).ok()?;
    // Room for what the proxy adds (`x-request-id`, `host`, attempt count, ...) without
    // the map growing.
    let mut headers = crate::http::headers::map_with_capacity(spans.len() + ADDED_HEADERS);
    for span in spans {
        let name = crate::http::headers::name(&head[span.name.0..span.name.1]).ok()?;
        let value = HeaderValue::from_maybe_shared(slice(span.value)).ok()?;
        headers.append(name, value);
    }
    let mut req = Request::new(DownstreamBody::Complete((!body.is_empty()).then_some(body)));
    *req.method_mut() = method;
    *req.uri_mut() = uri;
    *req.version_mut() = Version::HTTP_11;
    *req.headers_mut() = headers;
    Some(req)
}

/// A connection handed to hyper: the bytes read and not used come first.
pub struct Rewind {
    prefix: Bytes,
    io: MeshStream,
}

impl AsyncRead for Rewind {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let me = self.get_mut();
        if !me.prefix.is_empty() {
            let n = me.prefix.len().min(buf.remaining());
            buf.put_slice(&me.prefix[..n]);
            me.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut me.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] = b"GET / HTTP/1.1\r\nhost: a\r\nX-Envoy-Peer-Metadata-Id: one\r\n\
        x-envoy-peer-metadata: md\r\nx-envoy-peer-metadata-id: two\r\naccept: */*\r\n\r\n";

    fn names(spans: &[Span]) -> Vec<&str> {
        let name = |s: &Span| std::str::from_utf8(&HEAD[s.name.0..s.name.1]).unwrap();
        spans.iter().map(name).collect()
    }

    #[test]
    fn set_aside_headers_stay_out_of_the_spans_and_the_first_of_each_is_found() {
        let mut spans = Vec::new();
        let parsed = parse(HEAD, &mut spans, true).unwrap().unwrap();
        assert_eq!(names(&spans), ["host", "accept"]);
        let value = |r: Option<(usize, usize)>| r.map(|(a, b)| &HEAD[a..b]);
        assert_eq!(value(parsed.peer_id), Some(&b"one"[..]));
        assert_eq!(value(parsed.peer_metadata), Some(&b"md"[..]));
    }

    #[test]
    fn kept_headers_are_headers_like_any_other() {
        let mut spans = Vec::new();
        let parsed = parse(HEAD, &mut spans, false).unwrap().unwrap();
        assert_eq!(spans.len(), 5);
        assert!(parsed.peer_id.is_none() && parsed.peer_metadata.is_none());
    }
}
