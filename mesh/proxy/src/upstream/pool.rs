//! Connections to the endpoints of one cluster (or to the local app), pooled per endpoint
//! address over hyper's connection API.
//!
//! - **HTTP/1.1**: idle connections wait per endpoint; the most recently used one is taken
//!   first (it is warm, and the others can reach their idle timeout). A connection goes
//!   back to the pool only once its response body has been read to the end, so a
//!   half-read response never leaks into the next request; a response dropped early
//!   closes its connection. Requests with a small, sized body (nearly all of them) go
//!   over our own connection type, driven by the request's task ([`inline`]); streamed
//!   and large uploads over hyper's.
//! - **HTTP/2** (`h2UpgradePolicy: UPGRADE`, or `useClientProtocol` with an h2 client):
//!   one multiplexed connection per endpoint, shared by every request.
//!
//! The proxy's hot path pays for nothing else: endpoints are addresses (no DNS, no pool
//! key to build and hash from a URI), and no task is spawned per request to watch for a
//! connection becoming idle again.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri, Version, header};
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::FastMap;
use crate::http::body::{BoxError, UpstreamBody};
use crate::http::headers::X_ENVOY_ATTEMPT_COUNT;
use crate::telemetry::peer::Exchange;
use crate::upstream::connector::MeshConnector;

mod inline;

/// How long a checked-in connection may take to be ready for its next request.
const READY_WAIT: Duration = Duration::from_secs(1);

/// The protocol spoken to endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.1; `keep_alive: false` opens a connection per request
    /// (`maxRequestsPerConnection: 1`).
    Http1 {
        /// Whether connections are reused.
        keep_alive: bool,
    },
    /// One multiplexed HTTP/2 connection per endpoint (prior knowledge: h2c, or h2 inside
    /// mesh mTLS).
    Http2,
}

/// How a pool connects.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    /// The protocol.
    pub protocol: Protocol,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// How long an idle connection may wait for reuse (`None`: no limit).
    pub idle_timeout: Option<Duration>,
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// No connection could be made (refused, timed out, TLS handshake failed).
    #[error("connecting failed: {0}")]
    Connect(#[source] BoxError),
    /// The connection failed while the request was under way.
    #[error("{0}")]
    Request(#[source] BoxError),
}

impl SendError {
    /// Whether the request never reached the endpoint because no connection was made.
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect(_))
    }
}

/// A request as the pool sends it. The head is borrowed: a retry sends the same head
/// again, and HTTP/1.1 writes it out from there without copying it into a request of
/// its own.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Method, target (origin or absolute form) and headers; the `Host` header (or the
    /// URI's authority) names the service.
    pub head: &'a http::request::Parts,
    /// Which try this is, sent as `x-envoy-attempt-count` (replacing any such header).
    pub attempt: Option<u32>,
    /// The peer metadata exchange's headers, for a mesh peer (replacing any the app
    /// sent).
    pub exchange: Option<&'a Exchange>,
    /// The body.
    pub body: OutgoingBody,
}

/// The body of an [`Outgoing`] request.
#[derive(Debug)]
pub enum OutgoingBody {
    /// Complete already (a body buffered for retries): our HTTP/1.1 connection writes it
    /// from these bytes, with no boxed body type made around them per try.
    Whole(Bytes),
    /// Any other body.
    Body(UpstreamBody),
}

impl OutgoingBody {
    fn into_body(self) -> UpstreamBody {
        match self {
            Self::Whole(bytes) => crate::http::body::full(bytes),
            Self::Body(body) => body,
        }
    }

    /// Whether our own HTTP/1.1 connection takes this body ([`inline::fits`]).
    fn fits_inline(&self) -> bool {
        match self {
            Self::Whole(bytes) => bytes.len() as u64 <= inline::MAX_BODY,
            Self::Body(body) => inline::fits(body),
        }
    }
}

impl Outgoing<'_> {
    /// The request as an owned value, for hyper's connections.
    fn into_request(self) -> Request<UpstreamBody> {
        let mut req = Request::new(self.body.into_body());
        *req.method_mut() = self.head.method.clone();
        *req.uri_mut() = self.head.uri.clone();
        *req.version_mut() = self.head.version;
        *req.headers_mut() = self.head.headers.clone();
        if let Some(n) = self.attempt {
            req.headers_mut()
                .insert(X_ENVOY_ATTEMPT_COUNT.clone(), HeaderValue::from(n));
        }
        if let Some(exchange) = self.exchange {
            exchange.insert_into(req.headers_mut());
        }
        req
    }
}

/// A connection pool; cheap to share (`Arc` inside).
#[derive(Debug, Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    connector: MeshConnector,
    settings: PoolSettings,
    hosts: Mutex<FastMap<SocketAddr, Host>>,
}

#[derive(Debug, Default)]
struct Host {
    /// Idle hyper HTTP/1.1 connections, oldest first.
    idle: VecDeque<Idle<http1::SendRequest<UpstreamBody>>>,
    /// Idle connections of our own, oldest first.
    inline: VecDeque<Idle<inline::Conn>>,
    /// The shared HTTP/2 connection (behind an async lock so that concurrent first
    /// requests open one connection, not one each).
    h2: Arc<tokio::sync::Mutex<H2Slot>>,
}

/// The state of an endpoint's HTTP/2 connection.
#[derive(Debug, Default)]
struct H2Slot {
    conn: Option<http2::SendRequest<UpstreamBody>>,
    /// When the last attempt to connect failed, and why: requests that were waiting for
    /// that attempt share its outcome instead of each trying (and timing out) in turn.
    failed: Option<(Instant, String)>,
}

#[derive(Debug)]
struct Idle<C> {
    conn: C,
    since: Instant,
}

impl Pool {
    /// A pool connecting with `connector` (plain TCP, mesh mTLS or originated TLS).
    pub fn new(connector: MeshConnector, settings: PoolSettings) -> Self {
        Self {
            inner: Arc::new(Inner {
                connector,
                settings,
                hosts: Mutex::new(FastMap::default()),
            }),
        }
    }

    /// Sends `req` to the endpoint at `addr`. The request's `Host` header (or URI
    /// authority) names the service; the URI's path is what is asked for.
    pub async fn send(
        &self,
        addr: SocketAddr,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let (head, body) = req.into_parts();
        let out = Outgoing {
            head: &head,
            attempt: None,
            exchange: None,
            body: OutgoingBody::Body(body),
        };
        let sent = self.send_outgoing(addr, out).await;
        crate::http::headers::recycle(head.headers);
        sent
    }

    /// Sends `out` to the endpoint at `addr`.
    pub async fn send_outgoing(
        &self,
        addr: SocketAddr,
        out: Outgoing<'_>,
    ) -> Result<Response<PooledBody>, SendError> {
        match self.inner.settings.protocol {
            Protocol::Http1 { keep_alive } if out.body.fits_inline() => {
                self.send_inline(addr, out, keep_alive).await
            }
            // The other paths' futures are boxed: inline, their state would make every
            // request's future as large as theirs (and futures are copied as they move).
            Protocol::Http1 { keep_alive } => {
                Box::pin(self.send_h1(addr, out.into_request(), keep_alive)).await
            }
            Protocol::Http2 => Box::pin(self.send_h2(addr, out.into_request())).await,
        }
    }

    async fn send_h1(
        &self,
        addr: SocketAddr,
        req: Request<UpstreamBody>,
        keep_alive: bool,
    ) -> Result<Response<PooledBody>, SendError> {
        let mut req = for_http1(req);
        if !keep_alive {
            req.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        let (mut conn, mut reused) = match self.checkout(addr).await {
            Some(conn) => (conn, true),
            None => (self.connect_h1(addr).await?, false),
        };
        loop {
            match conn.try_send_request(req).await {
                Ok(resp) => {
                    let back = keep_alive.then(|| Checkin {
                        pool: self.inner.clone(),
                        addr,
                        conn,
                    });
                    return Ok(PooledBody::wrap(resp, back));
                }
                // An idle connection the endpoint closed just now: the request was not
                // sent, so it goes out again on a fresh connection.
                Err(mut e) if reused => match e.take_message() {
                    Some(unsent) => {
                        req = unsent;
                        conn = self.connect_h1(addr).await?;
                        reused = false;
                    }
                    None => return Err(SendError::Request(e.into_error().into())),
                },
                Err(e) => return Err(SendError::Request(e.into_error().into())),
            }
        }
    }

    /// Sends a request with a small, sized body over one of our own connections.
    async fn send_inline(
        &self,
        addr: SocketAddr,
        out: Outgoing<'_>,
        keep_alive: bool,
    ) -> Result<Response<PooledBody>, SendError> {
        let body = match out.body {
            OutgoingBody::Whole(bytes) => bytes,
            OutgoingBody::Body(body) => whole(body)
                .await
                .map_err(|e| SendError::Request(format!("reading the request body: {e}").into()))?,
        };
        let (mut conn, mut reused) = match self.checkout_inline(addr) {
            Some(conn) => (conn, true),
            None => (Box::pin(self.connect_inline(addr)).await?, false),
        };
        loop {
            match conn
                .send(out.head, out.attempt, out.exchange, &body, keep_alive)
                .await
            {
                Ok((head, framing, conn)) => {
                    let reusable = inline::reusable(&head, framing, keep_alive);
                    let home = Home {
                        pool: self.inner.clone(),
                        addr,
                    };
                    let body = inline::ResponseBody::new(conn, framing, reusable, home);
                    return Ok(Response::from_parts(head, PooledBody(Source::Inline(body))));
                }
                // An idle connection the endpoint closed just now: nothing was sent, so
                // the request goes out again on a fresh connection.
                Err(inline::Failure::Unsent(_)) if reused => {
                    conn = Box::pin(self.connect_inline(addr)).await?;
                    reused = false;
                }
                Err(inline::Failure::Unsent(e)) => return Err(SendError::Request(e.into())),
                Err(inline::Failure::Failed(e)) => return Err(SendError::Request(e)),
            }
        }
    }

    async fn send_h2(
        &self,
        addr: SocketAddr,
        req: Request<UpstreamBody>,
    ) -> Result<Response<PooledBody>, SendError> {
        let req = for_http2(req, addr);
        let shared = self.lock().entry(addr).or_default().h2.clone();
        let waiting_since = Instant::now();
        let mut conn = {
            let mut slot = shared.lock().await;
            match (&slot.conn, &slot.failed) {
                (Some(c), _) if !c.is_closed() => c.clone(),
                (_, Some((at, why))) if *at >= waiting_since => {
                    return Err(SendError::Connect(why.clone().into()));
                }
                _ => match self.connect_h2(addr).await {
                    Ok(c) => {
                        *slot = H2Slot {
                            conn: Some(c.clone()),
                            failed: None,
                        };
                        c
                    }
                    Err(e) => {
                        slot.failed = Some((Instant::now(), e.to_string()));
                        return Err(e);
                    }
                },
            }
        };
        conn.ready()
            .await
            .map_err(|e| SendError::Request(e.into()))?;
        let resp = conn
            .send_request(req)
            .await
            .map_err(|e| SendError::Request(e.into()))?;
        Ok(PooledBody::wrap(resp, None))
    }

    /// The most recently used idle connection to `addr` that is still open.
    async fn checkout(&self, addr: SocketAddr) -> Option<http1::SendRequest<UpstreamBody>> {
        let idle_timeout = self.inner.settings.idle_timeout;
        loop {
            let mut idle = self.lock().get_mut(&addr)?.idle.pop_back()?;
            let expired = idle_timeout.is_some_and(|t| idle.since.elapsed() >= t);
            if expired || idle.conn.is_closed() {
                continue;
            }
            if idle.conn.is_ready() {
                return Some(idle.conn);
            }
            // Just after a response ended, the connection's task may still be finishing
            // it; one that does not get there soon is given up rather than waited on.
            if let Ok(Ok(())) = tokio::time::timeout(READY_WAIT, idle.conn.ready()).await {
                return Some(idle.conn);
            }
        }
    }

    /// The most recently used idle connection of our own to `addr` that is still open.
    fn checkout_inline(&self, addr: SocketAddr) -> Option<inline::Conn> {
        let idle_timeout = self.inner.settings.idle_timeout;
        let mut hosts = self.lock();
        let host = hosts.get_mut(&addr)?;
        while let Some(mut idle) = host.inline.pop_back() {
            let expired = idle_timeout.is_some_and(|t| idle.since.elapsed() >= t);
            if !expired && idle.conn.is_usable() {
                return Some(idle.conn);
            }
        }
        None
    }

    async fn connect_inline(&self, addr: SocketAddr) -> Result<inline::Conn, SendError> {
        Ok(inline::Conn::new(self.connect(addr).await?.into_inner()))
    }

    async fn connect(
        &self,
        addr: SocketAddr,
    ) -> Result<TokioIo<crate::upstream::connector::ClientIo>, SendError> {
        let timeout = self.inner.settings.connect_timeout;
        let tcp = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(e)) => return Err(SendError::Connect(e.into())),
            Err(_) => {
                return Err(SendError::Connect(
                    format!("connect timeout after {timeout:?}").into(),
                ));
            }
        };
        let _ = tcp.set_nodelay(true);
        let io = self
            .inner
            .connector
            .secure(tcp, &addr.ip().to_string())
            .await
            .map_err(SendError::Connect)?;
        Ok(TokioIo::new(io))
    }

    async fn connect_h1(
        &self,
        addr: SocketAddr,
    ) -> Result<http1::SendRequest<UpstreamBody>, SendError> {
        let io = self.connect(addr).await?;
        let (conn, driver) = http1::handshake(io)
            .await
            .map_err(|e| SendError::Connect(e.into()))?;
        tokio::spawn(drive(driver));
        Ok(conn)
    }

    async fn connect_h2(
        &self,
        addr: SocketAddr,
    ) -> Result<http2::SendRequest<UpstreamBody>, SendError> {
        let io = self.connect(addr).await?;
        let (conn, driver) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| SendError::Connect(e.into()))?;
        tokio::spawn(drive(driver));
        Ok(conn)
    }

    fn lock(&self) -> MutexGuard<'_, FastMap<SocketAddr, Host>> {
        self.inner.lock()
    }
}

/// All of a small body that [`inline::fits`]. It is one frame nearly always (a buffered
/// request), taken as it is: no list of chunks to collect into and flatten.
async fn whole(mut body: UpstreamBody) -> Result<Bytes, BoxError> {
    let mut first = Bytes::new();
    let mut joined: Option<bytes::BytesMut> = None;
    while let Some(frame) = body.frame().await {
        // Trailers have no place in a sized HTTP/1.1 body.
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        match &mut joined {
            Some(all) => all.extend_from_slice(&data),
            None if first.is_empty() => first = data,
            None => {
                let mut all = bytes::BytesMut::with_capacity(first.len() + data.len());
                all.extend_from_slice(&first);
                all.extend_from_slice(&data);
                joined = Some(all);
            }
        }
    }
    Ok(joined.map_or(first, bytes::BytesMut::freeze))
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, FastMap<SocketAddr, Host>> {
        // The map stays consistent even if a holder panicked: every change is one call.
        self.hosts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts a connection whose response has ended back for reuse, and lets go of the
    /// connections that have waited longer than the idle timeout.
    fn checkin(&self, addr: SocketAddr, conn: http1::SendRequest<UpstreamBody>) {
        if conn.is_closed() {
            return;
        }
        let mut hosts = self.lock();
        let host = hosts.entry(addr).or_default();
        park(&mut host.idle, conn, self.settings.idle_timeout);
    }

    /// [`Inner::checkin`] for our own connections.
    fn checkin_inline(&self, addr: SocketAddr, conn: inline::Conn) {
        let mut hosts = self.lock();
        let host = hosts.entry(addr).or_default();
        park(&mut host.inline, conn, self.settings.idle_timeout);
    }
}

/// The pool and endpoint a connection of our own goes back to when its response ends.
struct Home {
    pool: Arc<Inner>,
    addr: SocketAddr,
}

impl Home {
    fn take_back(self, conn: inline::Conn) {
        self.pool.checkin_inline(self.addr, conn);
    }
}

/// Queues an idle connection, first dropping those that waited past `idle_timeout`.
fn park<C>(idle: &mut VecDeque<Idle<C>>, conn: C, idle_timeout: Option<Duration>) {
    let now = Instant::now();
    if let Some(t) = idle_timeout {
        while idle.front().is_some_and(|i| now - i.since >= t) {
            idle.pop_front();
        }
    }
    idle.push_back(Idle { conn, since: now });
}

/// Runs a connection's I/O until it closes (the task every hyper connection needs).
async fn drive(connection: impl std::future::Future<Output = Result<(), hyper::Error>>) {
    if let Err(error) = connection.await {
        tracing::debug!(%error, "Upstream connection ended with an error.");
    }
}

/// The request as an HTTP/1.1 connection sends it: origin-form target, `Host` header.
fn for_http1(mut req: Request<UpstreamBody>) -> Request<UpstreamBody> {
    if !req.headers().contains_key(header::HOST)
        && let Some(a) = req.uri().authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        req.headers_mut().insert(header::HOST, v);
    }
    if req.uri().scheme().is_some() || req.uri().authority().is_some() {
        let pq = req
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        *req.uri_mut() = Uri::from(pq);
    }
    *req.version_mut() = Version::HTTP_11;
    req
}

/// The request as an HTTP/2 connection sends it: `:authority` from the `Host` header
/// (which HTTP/2 does not carry), absolute target.
fn for_http2(mut req: Request<UpstreamBody>, addr: SocketAddr) -> Request<UpstreamBody> {
    let host = req
        .headers_mut()
        .remove(header::HOST)
        .and_then(|h| Authority::try_from(h.as_bytes()).ok());
    let authority = host
        .or_else(|| req.uri().authority().cloned())
        .or_else(|| Authority::try_from(addr.to_string()).ok());
    let mut parts = std::mem::take(req.uri_mut()).into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = authority;
    if parts.path_and_query.is_none() {
        parts.path_and_query = Some(PathAndQuery::from_static("/"));
    }
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    *req.version_mut() = Version::HTTP_2;
    req
}

/// Gives a hyper HTTP/1.1 connection back to its pool.
struct Checkin {
    pool: Arc<Inner>,
    addr: SocketAddr,
    conn: http1::SendRequest<UpstreamBody>,
}

/// A response body from a pooled connection: when it has been read to its end, the
/// connection goes back to the pool; dropped before that, the connection closes.
pub struct PooledBody(Source);

enum Source {
    /// From a hyper connection; `checkin` says where the connection goes when the body
    /// ends (`None`: not reused).
    Hyper {
        inner: Incoming,
        checkin: Option<Checkin>,
    },
    /// From one of our own connections, which the body owns until it ends.
    Inline(inline::ResponseBody),
}

impl PooledBody {
    fn wrap(resp: Response<Incoming>, checkin: Option<Checkin>) -> Response<Self> {
        let (parts, inner) = resp.into_parts();
        let mut body = Self(Source::Hyper { inner, checkin });
        // An empty body (204, HEAD, `content-length: 0`) may never be polled.
        if body.is_end_stream() {
            body.give_back();
        }
        Response::from_parts(parts, body)
    }

    fn give_back(&mut self) {
        if let Source::Hyper { checkin, .. } = &mut self.0
            && let Some(c) = checkin.take()
        {
            c.pool.checkin(c.addr, c.conn);
        }
    }
}

impl Body for PooledBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let (inner, checkin) = match &mut this.0 {
            Source::Inline(body) => return Pin::new(body).poll_frame(cx),
            Source::Hyper { inner, checkin } => (inner, checkin),
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        let ended = inner.is_end_stream();
        match &polled {
            Poll::Ready(Some(Err(_))) => *checkin = None,
            Poll::Ready(None) => this.give_back(),
            Poll::Ready(Some(Ok(_))) if ended => this.give_back(),
            _ => {}
        }
        polled.map(|frame| frame.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Source::Hyper { inner, .. } => inner.is_end_stream(),
            Source::Inline(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Source::Hyper { inner, .. } => inner.size_hint(),
            Source::Inline(body) => body.size_hint(),
        }
    }
}

impl std::fmt::Debug for PooledBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PooledBody").finish_non_exhaustive()
    }
}
