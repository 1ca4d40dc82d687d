//! The pool's own HTTP/1.1 client connection, for requests whose whole body is small and
//! sized (every Bookinfo call, and everything a retry can replay).
//!
//! A hyper client connection runs in a task of its own: a request crosses a channel to
//! that task, and the response and each body chunk cross back, one task wake-up each
//! way. A sidecar at 1000 requests per second spends a measurable share of its CPU on
//! those hops (about 10 % of a sidecar pair's CPU per request, `scripts/bench-ab.sh`).
//! A [`Conn`] is instead driven by whoever holds it: the request's own task
//! writes the request, reads the response head, and then the response body (which owns
//! the connection) reads the rest as the downstream side asks for it. At the end of the
//! body the connection goes back to the pool.
//!
//! Only requests whose body is complete before anything is sent come here: the request is
//! written whole, then the response is read. A large or streamed upload stays on hyper's
//! connection, which reads and writes at the same time (an upstream that answers while
//! the upload is still going must not deadlock against us).

use std::future::{Future, poll_fn};
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::{Buf, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
use http::request::Parts as RequestParts;
use http::response::Parts;
use http::{HeaderValue, Method, Response, StatusCode, Version};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use crate::http::body::{BoxError, UpstreamBody};
use crate::http::headers::{X_ENVOY_ATTEMPT_COUNT, digits};
use crate::telemetry::peer::Exchange;
use crate::upstream::connector::ClientIo;

/// Largest request body this connection takes (larger ones stay on hyper's).
pub(super) const MAX_BODY: u64 = 64 * 1024;
/// Largest response head we read; a bigger one is refused as hyper does.
const MAX_HEAD: usize = 64 * 1024;
/// Most response headers we parse (hyper's default limit).
const MAX_HEADERS: usize = 100;
/// Longest chunk-size or trailer line of a chunked body.
const MAX_LINE: usize = 4096;
/// How much we ask the socket for at a time.
const READ_CHUNK: usize = 16 * 1024;
/// Largest request buffer a connection keeps for its next request.
const KEPT_OUT: usize = 16 * 1024;

/// Whether a request with `body` can go over a [`Conn`]: the body is sized and at most
/// [`MAX_BODY`].
pub(super) fn fits(body: &UpstreamBody) -> bool {
    body.size_hint().exact().is_some_and(|n| n <= MAX_BODY)
}

/// An idle-or-busy HTTP/1.1 connection with the bytes read past the last response.
#[derive(Debug)]
pub(super) struct Conn {
    io: ClientIo,
    buf: BytesMut,
    /// The request being written, kept for the next one (no allocation per request).
    out: Vec<u8>,
    /// Where the headers of the response head being parsed are.
    spans: Vec<HeaderSpan>,
}

/// A header's name and value in a response head: (name start, name length, value start,
/// value length).
type HeaderSpan = (usize, usize, usize, usize);

/// Why a request got no response.
#[derive(Debug)]
pub(super) enum Failure {
    /// Nothing reached the endpoint (the connection was already closed): the request can
    /// go out on another connection.
    Unsent(io::Error),
    /// The exchange failed after the request went out, or the response was malformed.
    Failed(BoxError),
}

impl Conn {
    /// A fresh connection.
    pub(super) fn new(io: ClientIo) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
            out: Vec::new(),
            spans: Vec::new(),
        }
    }

    /// Whether an idle connection is still usable: the peer has neither closed it nor
    /// sent anything unasked. Looks without waiting.
    pub(super) fn is_usable(&mut self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut cx = Context::from_waker(Waker::noop());
        let mut probe = [0u8; 1];
        let mut rb = ReadBuf::new(&mut probe);
        matches!(
            Pin::new(&mut self.io).poll_read(&mut cx, &mut rb),
            Poll::Pending
        )
    }

    /// Sends the request (`head`, the try number `attempt` when counted, `body`) and
    /// reads the response head. The response body reads the rest from this connection;
    /// `keep_alive: false` closes it after this exchange.
    pub(super) async fn send(
        mut self,
        head: &RequestParts,
        attempt: Option<u32>,
        exchange: Option<&Exchange>,
        body: &[u8],
        keep_alive: bool,
    ) -> Result<(Parts, Framing, Self), Failure> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        out.reserve(256 + exchange.map_or(0, |e| e.wire().len()) + body.len());
        encode_head(head, attempt, exchange, body.len(), keep_alive, &mut out);
        out.extend_from_slice(body);
        // One write carries head and body; if even that first write fails, nothing of the
        // request reached the endpoint and it may be sent again elsewhere.
        let n = match self.io.write(&out).await {
            Ok(0) => return Err(Failure::Unsent(io::ErrorKind::WriteZero.into())),
            Ok(n) => n,
            Err(e) => return Err(Failure::Unsent(e)),
        };
        let sent = async {
            self.io.write_all(&out[n..]).await?;
            self.io.flush().await
        };
        sent.await.map_err(|e| Failure::Failed(e.into()))?;
        // A large upload's buffer is not kept for every later request.
        if out.capacity() <= KEPT_OUT {
            self.out = out;
        }
        let response = self.read_head().await.map_err(Failure::Failed)?;
        let framing = Framing::of(&head.method, &response).map_err(Failure::Failed)?;
        Ok((response, framing, self))
    }

    /// Reads the next final response head (skipping `100 Continue` and other 1xx).
    async fn read_head(&mut self) -> Result<Parts, BoxError> {
        loop {
            if let Some(head) = parse_head(&mut self.buf, &mut self.spans)? {
                if head.status.is_informational() && head.status != StatusCode::SWITCHING_PROTOCOLS
                {
                    continue;
                }
                return Ok(head);
            }
            if self.buf.len() > MAX_HEAD {
                return Err("the response head is too large".into());
            }
            let n = poll_fn(|cx| fill(&mut self.io, &mut self.buf, cx)).await?;
            if n == 0 {
                return Err("the connection closed before the response head".into());
            }
        }
    }
}

/// Writes the request line and headers: origin-form target, `Host` from the URI when
/// the headers have none, the try number, the peer metadata exchange's pair (made once
/// per proxy: written from its bytes), and the body's length in `content-length` (the
/// proxy removed any `transfer-encoding`, a hop-by-hop header, already).
fn encode_head(
    head: &RequestParts,
    attempt: Option<u32>,
    exchange: Option<&Exchange>,
    body_len: usize,
    keep_alive: bool,
    out: &mut Vec<u8>,
) {
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    let target = head.uri.path_and_query().map_or("/", |p| p.as_str());
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    fn put(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
        out.extend_from_slice(name);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    if !head.headers.contains_key(HOST)
        && let Some(authority) = head.uri.authority()
    {
        put(out, b"host", authority.as_str().as_bytes());
    }
    for (name, value) in &head.headers {
        let replaced = name == TRANSFER_ENCODING
            || name == CONTENT_LENGTH
            || (name == CONNECTION && !keep_alive)
            || (attempt.is_some() && name == X_ENVOY_ATTEMPT_COUNT)
            || (exchange.is_some() && Exchange::is_exchange_header(name));
        if !replaced {
            put(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    if let Some(n) = attempt {
        put(
            out,
            X_ENVOY_ATTEMPT_COUNT.as_str().as_bytes(),
            digits(n.into(), &mut [0; 20]),
        );
    }
    if let Some(e) = exchange {
        out.extend_from_slice(e.wire());
    }
    // A body, or a method that is expected to carry one, is sized explicitly (as hyper
    // does: `POST` with an empty body says `content-length: 0`).
    let says_length = body_len > 0
        || head.headers.contains_key(CONTENT_LENGTH)
        || matches!(head.method, Method::POST | Method::PUT | Method::PATCH);
    if says_length {
        put(
            out,
            b"content-length",
            digits(body_len as u64, &mut [0; 20]),
        );
    }
    if !keep_alive {
        put(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

/// Parses a complete response head off the front of `buf`; `None` if it is not all here.
fn parse_head(buf: &mut BytesMut, spans: &mut Vec<HeaderSpan>) -> Result<Option<Parts>, BoxError> {
    // Uninitialized slots, as in the listener's parser.
    let mut slots = [const { MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut []);
    let len = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
        &mut parsed,
        buf,
        &mut slots,
    ) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("malformed response head: {e}").into()),
    };
    let code = parsed.code.unwrap_or(0);
    let version = if parsed.version == Some(0) {
        Version::HTTP_10
    } else {
        Version::HTTP_11
    };
    // Header positions, so the values can be cut from the head without copying.
    let base = buf.as_ptr() as usize;
    spans.clear();
    spans.extend(parsed.headers.iter().map(|h| {
        let name = h.name.as_ptr() as usize - base;
        let value = h.value.as_ptr() as usize - base;
        (name, h.name.len(), value, h.value.len())
    }));
    let head = buf.split_to(len).freeze();
    // Room for what the proxy adds (`x-envoy-upstream-service-time`, ...).
    let mut headers = crate::http::headers::map_with_capacity(spans.len() + 4);
    for &(name, name_len, value, value_len) in spans.iter() {
        let name = crate::http::headers::name(&head[name..name + name_len])
            .map_err(|e| format!("malformed response header name: {e}"))?;
        let value = HeaderValue::from_maybe_shared(head.slice(value..value + value_len))
            .map_err(|e| format!("malformed value of response header {name}: {e}"))?;
        headers.append(name, value);
    }
    let status =
        StatusCode::from_u16(code).map_err(|_| format!("invalid response status {code}"))?;
    let mut resp = Response::new(());
    *resp.status_mut() = status;
    *resp.version_mut() = version;
    *resp.headers_mut() = headers;
    Ok(Some(resp.into_parts().0))
}

/// Reads what the socket has into `buf`'s spare room (no zeroing); `Ok(0)` at end of
/// stream.
fn fill(io: &mut ClientIo, buf: &mut BytesMut, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
    buf.reserve(READ_CHUNK);
    std::pin::pin!(io.read_buf(buf)).poll(cx)
}

/// How the response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Framing {
    /// No body (`HEAD`, 1xx, 204, 304), or what remains of a `content-length` one.
    Length(u64),
    /// `transfer-encoding: chunked`, at the given point of the stream.
    Chunked(Chunk),
    /// Until the server closes the connection (which then cannot be reused).
    UntilClose,
}

/// Where a chunked body's reader stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chunk {
    /// Before a chunk-size line.
    Size,
    /// Inside a chunk, with this many bytes to go.
    Data(u64),
    /// After a chunk's data, before its CRLF.
    DataEnd,
    /// After the last chunk, reading (and dropping) trailers up to the empty line.
    Trailers,
}

impl Framing {
    /// The framing of the body of `head`, answering a `method` request (RFC 9112 6.3).
    fn of(method: &Method, head: &Parts) -> Result<Self, BoxError> {
        let status = head.status;
        if method == Method::HEAD
            || status.is_informational()
            || status == StatusCode::NO_CONTENT
            || status == StatusCode::NOT_MODIFIED
        {
            return Ok(Self::Length(0));
        }
        if let Some(te) = head.headers.get_all(TRANSFER_ENCODING).iter().next_back() {
            let chunked = te
                .to_str()
                .ok()
                .and_then(|v| v.rsplit(',').next())
                .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            return Ok(if chunked {
                Self::Chunked(Chunk::Size)
            } else {
                Self::UntilClose
            });
        }
        let mut length = None;
        for value in head.headers.get_all(CONTENT_LENGTH) {
            for part in value.to_str().unwrap_or("x").split(',') {
                let n: u64 = part
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid response content-length {value:?}"))?;
                if length.is_some_and(|l| l != n) {
                    return Err("conflicting response content-length values".into());
                }
                length = Some(n);
            }
        }
        Ok(length.map_or(Self::UntilClose, Self::Length))
    }

    fn is_done(self) -> bool {
        self == Self::Length(0)
    }
}

/// Whether the connection may carry another request after this response.
pub(super) fn reusable(head: &Parts, framing: Framing, keep_alive: bool) -> bool {
    let tokens = |v: &HeaderValue| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .collect::<Vec<_>>()
    };
    let says = |word: &str| {
        head.headers
            .get_all(CONNECTION)
            .iter()
            .any(|v| tokens(v).iter().any(|t| t == word))
    };
    let persistent = match head.version {
        Version::HTTP_10 => says("keep-alive"),
        _ => !says("close"),
    };
    keep_alive
        && persistent
        && framing != Framing::UntilClose
        && head.status != StatusCode::SWITCHING_PROTOCOLS
}

/// A response body read from its connection by whoever polls it. When it ends, the
/// connection goes back to its pool (`home`) if it can carry another request; dropped
/// early, the connection closes.
pub(super) struct ResponseBody {
    conn: Option<Conn>,
    framing: Framing,
    reusable: bool,
    home: Option<super::Home>,
}

impl ResponseBody {
    /// The body of a response whose head was just read from `conn`.
    pub(super) fn new(conn: Conn, framing: Framing, reusable: bool, home: super::Home) -> Self {
        let mut body = Self {
            conn: Some(conn),
            framing,
            reusable,
            home: Some(home),
        };
        // An empty body may never be polled: give the connection back now.
        if framing.is_done() {
            body.finish();
        }
        body
    }

    fn finish(&mut self) {
        let conn = self.conn.take();
        if let (Some(home), Some(conn)) = (self.home.take(), conn)
            && self.reusable
            && conn.buf.is_empty()
        {
            home.take_back(conn);
        }
    }

    fn fail(&mut self, why: impl Into<BoxError>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.reusable = false;
        self.finish();
        Poll::Ready(Some(Err(why.into())))
    }
}

/// A line (without its CRLF) at the front of `buf`, if complete.
fn take_line(buf: &mut BytesMut) -> Result<Option<Bytes>, BoxError> {
    match buf.windows(2).position(|w| w == b"\r\n") {
        Some(end) => {
            let line = buf.split_to(end).freeze();
            buf.advance(2);
            Ok(Some(line))
        }
        None if buf.len() > MAX_LINE => Err("a chunked body line is too long".into()),
        None => Ok(None),
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, BoxError> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default();
    let digits = std::str::from_utf8(digits).unwrap_or("").trim();
    u64::from_str_radix(digits, 16).map_err(|_| format!("invalid chunk size {digits:?}").into())
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            // Serve what is already buffered before reading more.
            match this.framing {
                Framing::Length(0) => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Framing::Length(left) if !conn.buf.is_empty() => {
                    let n = conn
                        .buf
                        .len()
                        .min(usize::try_from(left).unwrap_or(usize::MAX));
                    let data = conn.buf.split_to(n).freeze();
                    this.framing = Framing::Length(left - n as u64);
                    if this.framing.is_done() {
                        this.finish();
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::UntilClose if !conn.buf.is_empty() => {
                    let data = conn.buf.split().freeze();
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Framing::Chunked(state) => match chunked_step(state, &mut conn.buf) {
                    Ok(Step::Next(next)) => {
                        this.framing = Framing::Chunked(next);
                        continue;
                    }
                    Ok(Step::Data(next, data)) => {
                        this.framing = Framing::Chunked(next);
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Ok(Step::End) => {
                        this.framing = Framing::Length(0);
                        continue;
                    }
                    Ok(Step::NeedMore) => {}
                    Err(e) => return this.fail(e),
                },
                Framing::Length(_) | Framing::UntilClose => {}
            }
            match fill(&mut conn.io, &mut conn.buf, cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return this.fail(e),
                Poll::Ready(Ok(0)) if this.framing == Framing::UntilClose => {
                    this.reusable = false;
                    this.finish();
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(0)) => {
                    return this.fail("the connection closed before the response body ended");
                }
                Poll::Ready(Ok(_)) => {}
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.conn.is_none() || self.framing.is_done()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            _ => SizeHint::default(),
        }
    }
}

/// One move of the chunked-body reader over the buffered bytes.
enum Step {
    Next(Chunk),
    Data(Chunk, Bytes),
    End,
    NeedMore,
}

fn chunked_step(state: Chunk, buf: &mut BytesMut) -> Result<Step, BoxError> {
    Ok(match state {
        Chunk::Size => match take_line(buf)? {
            Some(line) => match chunk_size(&line)? {
                0 => Step::Next(Chunk::Trailers),
                n => Step::Next(Chunk::Data(n)),
            },
            None => Step::NeedMore,
        },
        Chunk::Data(_) if buf.is_empty() => Step::NeedMore,
        Chunk::Data(left) => {
            let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let data = buf.split_to(n).freeze();
            let left = left - n as u64;
            let next = if left == 0 {
                Chunk::DataEnd
            } else {
                Chunk::Data(left)
            };
            Step::Data(next, data)
        }
        Chunk::DataEnd if buf.len() < 2 => Step::NeedMore,
        Chunk::DataEnd if &buf[..2] == b"\r\n" => {
            buf.advance(2);
            Step::Next(Chunk::Size)
        }
        Chunk::DataEnd => return Err("a chunk does not end with CRLF".into()),
        Chunk::Trailers => match take_line(buf)? {
            Some(line) if line.is_empty() => Step::End,
            Some(_) => Step::Next(Chunk::Trailers),
            None => Step::NeedMore,
        },
    })
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody")
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}
