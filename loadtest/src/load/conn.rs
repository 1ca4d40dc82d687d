//! One load connection: TCP (with TCP_NODELAY) plus a hyper 1 HTTP/1.1 or h2c client
//! handshake, optional Bookinfo login, and sending one request at a time (reading the
//! body of a 200 answer into memory when the mix checks it for degraded texts).

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

use super::mix::Mix;
use super::stats::ErrorKind;
use super::target::Target;

type Body = Full<Bytes>;

enum Sender {
    H1(http1::SendRequest<Body>),
    H2(http2::SendRequest<Body>),
}

/// An established connection with its session cookies (one per logged-in user).
pub struct Conn {
    sender: Sender,
    http2: bool,
    authority: HeaderValue,
    cookies: HashMap<String, HeaderValue>,
    /// Request URI of each mix entry, by index.
    uris: Vec<Uri>,
}

/// Connects and performs the HTTP handshake, bounded by `timeout`.
pub async fn connect(target: &Target, http2: bool, timeout: Duration) -> Result<Conn, ErrorKind> {
    let attempt = async {
        // Try each resolved address in turn (e.g. ::1 then 127.0.0.1 for "localhost").
        for addr in &target.addrs {
            if let Ok(stream) = TcpStream::connect(addr).await {
                // Small requests must not wait for Nagle's algorithm.
                stream.set_nodelay(true).map_err(|_| ErrorKind::Connect)?;
                return handshake(stream, http2).await;
            }
        }
        Err(ErrorKind::Connect)
    };
    let sender = tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ErrorKind::Connect)??;
    let authority = HeaderValue::from_str(&target.authority).map_err(|_| ErrorKind::Protocol)?;
    Ok(Conn {
        sender,
        http2,
        authority,
        cookies: HashMap::new(),
        uris: Vec::new(),
    })
}

async fn handshake(stream: TcpStream, http2: bool) -> Result<Sender, ErrorKind> {
    let io = TokioIo::new(stream);
    if http2 {
        let (sender, conn) = http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|_| ErrorKind::Connect)?;
        tokio::spawn(conn);
        Ok(Sender::H2(sender))
    } else {
        let (sender, conn) = http1::handshake(io).await.map_err(|_| ErrorKind::Connect)?;
        tokio::spawn(conn);
        Ok(Sender::H1(sender))
    }
}

/// Maps a hyper error to the kind reported in the summary.
fn classify(e: &hyper::Error) -> ErrorKind {
    if e.is_parse() || e.is_parse_status() || e.is_user() {
        return ErrorKind::Protocol;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(e);
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return ErrorKind::Io;
        }
        source = s.source();
    }
    if e.is_closed() || e.is_incomplete_message() || e.is_canceled() {
        ErrorKind::Io
    } else {
        ErrorKind::Protocol
    }
}

impl Conn {
    /// True when the connection can take another request.
    pub fn is_usable(&self) -> bool {
        match &self.sender {
            Sender::H1(s) => !s.is_closed(),
            Sender::H2(s) => !s.is_closed(),
        }
    }

    /// The request URI for `path`: origin form for HTTP/1.1; absolute for h2, which carries
    /// scheme and authority as pseudo-headers taken from the URI.
    fn uri(&self, path: &str) -> Result<Uri, ErrorKind> {
        let uri = if self.http2 {
            let authority = self.authority.to_str().map_err(|_| ErrorKind::Protocol)?;
            format!("http://{authority}{path}")
        } else {
            path.to_string()
        };
        uri.parse().map_err(|_| ErrorKind::Protocol)
    }

    fn request(
        &self,
        method: Method,
        uri: Uri,
        headers: &http::HeaderMap,
        body: Bytes,
    ) -> Result<Request<Body>, ErrorKind> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = method;
        *req.uri_mut() = uri;
        let map = req.headers_mut();
        if !self.http2 {
            map.insert(HOST, self.authority.clone());
        }
        for (name, value) in headers {
            // A user-given Host replaces ours (as with curl and wrk): that is how a run
            // addresses a virtual host, e.g. a service name through a sidecar.
            if name == HOST {
                map.insert(HOST, value.clone());
            } else {
                map.append(name, value.clone());
            }
        }
        Ok(req)
    }

    /// Sends one request and reads the whole body (needed to reuse an HTTP/1.1 connection);
    /// with `keep_ok_body`, the body of a 200 answer is returned too.
    async fn exchange(
        &mut self,
        req: Request<Body>,
        keep_ok_body: bool,
    ) -> Result<(http::response::Parts, Vec<u8>), ErrorKind> {
        let response = match &mut self.sender {
            Sender::H1(s) => {
                s.ready().await.map_err(|e| classify(&e))?;
                s.send_request(req).await
            }
            Sender::H2(s) => {
                s.ready().await.map_err(|e| classify(&e))?;
                s.send_request(req).await
            }
        }
        .map_err(|e| classify(&e))?;
        let (parts, mut body) = response.into_parts();
        let keep = keep_ok_body && parts.status == http::StatusCode::OK;
        let mut kept = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| classify(&e))?;
            if keep && let Some(data) = frame.data_ref() {
                kept.extend_from_slice(data);
            }
        }
        Ok((parts, kept))
    }

    /// Logs in as `user` with Bookinfo's form `POST /login` and keeps the `session` cookie.
    pub async fn login(&mut self, base_path: &str, user: &str) -> Result<(), ErrorKind> {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let body = Bytes::from(format!("username={user}&passwd=password"));
        let uri = self.uri(&format!("{base_path}/login"))?;
        let req = self.request(Method::POST, uri, &headers, body)?;
        let (parts, _) = self.exchange(req, false).await?;
        let cookie = parts
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.trim_start().starts_with("session="))
            .ok_or(ErrorKind::Login)?;
        let value = HeaderValue::from_str(cookie.trim()).map_err(|_| ErrorKind::Login)?;
        self.cookies.insert(user.to_string(), value);
        Ok(())
    }

    /// Sends one request of the mix (logging in first if this connection has no session for
    /// the entry's user yet), bounded by `timeout`; returns the status code and which of
    /// the mix's degraded texts a 200 answer contains (a bit set, 0 for none).
    pub async fn send(
        &mut self,
        mix: &Mix,
        index: usize,
        base_path: &str,
        timeout: Duration,
    ) -> Result<(u16, u32), ErrorKind> {
        if self.uris.is_empty() {
            // Parsed once per connection, not once per request.
            self.uris = mix
                .entries()
                .iter()
                .map(|e| self.uri(&e.path))
                .collect::<Result<_, _>>()?;
        }
        let entry = mix.entries().get(index).ok_or(ErrorKind::Protocol)?;
        let uri = self.uris.get(index).cloned().ok_or(ErrorKind::Protocol)?;
        let work = async {
            let session = match &entry.login {
                Some(user) => {
                    if !self.cookies.contains_key(user) {
                        self.login(base_path, user).await?;
                    }
                    self.cookies.get(user).cloned()
                }
                None => None,
            };
            let mut req = self.request(
                entry.method.clone(),
                uri,
                &entry.headers,
                entry.body.clone(),
            )?;
            if let Some(session) = session {
                // Keep any cookie the mix entry sets itself, and add the session to it.
                let value = match req.headers().get(COOKIE).and_then(|v| v.to_str().ok()) {
                    Some(existing) => {
                        let session = session.to_str().map_err(|_| ErrorKind::Login)?;
                        HeaderValue::from_str(&format!("{existing}; {session}"))
                            .map_err(|_| ErrorKind::Protocol)?
                    }
                    None => session,
                };
                req.headers_mut().insert(COOKIE, value);
            }
            let (parts, body) = self.exchange(req, mix.checks_bodies()).await?;
            Ok((parts.status.as_u16(), mix.degraded_in(&body)))
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ErrorKind::Timeout)?
    }
}
