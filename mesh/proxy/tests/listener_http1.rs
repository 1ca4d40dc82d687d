//! The listeners' HTTP/1.1 fast lane, spoken to byte by byte over real sockets: what it
//! serves itself, what it hands to hyper (and that nothing is lost in the hand-over), and
//! the connection rules (keep-alive, pipelining, close, cancellation, shutdown).
//!
//! The handler says which lane a request came through (`x-lane`), so every test knows
//! which code answered it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt;
use mesh_proxy::http::body::{self, ProxyBody};
use mesh_proxy::http::http1::DownstreamBody;
use mesh_proxy::http::server::{self, ConnInfo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Set when a handler's future was dropped before it finished.
struct Cancelled(Arc<AtomicBool>);

impl Drop for Cancelled {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Echoes the request: method, target and body; `/slow` never answers, `/stream`
/// answers with a body of unknown length.
async fn handler(req: Request<DownstreamBody>, cancelled: Arc<AtomicBool>) -> Response<ProxyBody> {
    let lane = match req.body() {
        DownstreamBody::Complete(_) => "fast",
        DownstreamBody::Hyper(_) => "hyper",
    };
    let (parts, body) = req.into_parts();
    if parts.uri.path() == "/slow" {
        let guard = Cancelled(cancelled);
        tokio::time::sleep(Duration::from_secs(3600)).await;
        std::mem::forget(guard);
    }
    let body = body.collect().await.unwrap().to_bytes();
    let out = if parts.uri.path() == "/stream" {
        body::boxed(Chunks(
            vec![Bytes::from_static(b"hello "), Bytes::from_static(b"world")].into_iter(),
        ))
    } else {
        body::full(body.clone())
    };
    Response::builder()
        .header("x-lane", lane)
        .header("x-method", parts.method.as_str())
        .header("x-target", parts.uri.to_string())
        .header("x-body-len", body.len())
        .body(out)
        .unwrap()
}

/// A body of two frames and no size hint, like a response relayed as it arrives.
struct Chunks(std::vec::IntoIter<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        std::task::Poll::Ready(
            self.get_mut()
                .0
                .next()
                .map(|b| Ok(hyper::body::Frame::data(b))),
        )
    }
}

struct Server {
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    cancelled: Arc<AtomicBool>,
}

async fn server() -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (shutdown, rx) = watch::channel(false);
    let cancelled = Arc::new(AtomicBool::new(false));
    let flag = cancelled.clone();
    let handle = move |req, _conn: ConnInfo| handler(req, flag.clone());
    tokio::spawn(server::serve(
        listener,
        server::plain(),
        server::PeerHeaders::Keep,
        handle,
        rx,
        Duration::from_millis(200),
    ));
    Server {
        addr,
        shutdown,
        cancelled,
    }
}

/// One response read off the wire: status line, headers (lower-case names) and body.
#[derive(Debug)]
struct Reply {
    status_line: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one response from `conn`, keeping any bytes after it in `rest`.
async fn read_reply(conn: &mut TcpStream, rest: &mut Vec<u8>, head_request: bool) -> Reply {
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut resp = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(n) = resp.parse(rest).unwrap() {
            let status_line = format!(
                "HTTP/1.{} {} {}",
                resp.version.unwrap(),
                resp.code.unwrap(),
                resp.reason.unwrap()
            );
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_ascii_lowercase(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            rest.drain(..n);
            let mut reply = Reply {
                status_line,
                headers,
                body: Vec::new(),
            };
            if head_request {
                return reply;
            }
            if let Some(len) = reply.header("content-length") {
                let len: usize = len.parse().unwrap();
                fill(conn, rest, len).await;
                reply.body = rest.drain(..len).collect();
            } else if reply.header("transfer-encoding") == Some("chunked") {
                loop {
                    let line_end = loop {
                        if let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
                            break i;
                        }
                        fill(conn, rest, rest.len() + 1).await;
                    };
                    let size =
                        usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap(), 16)
                            .unwrap();
                    rest.drain(..line_end + 2);
                    fill(conn, rest, size + 2).await;
                    reply.body.extend(rest.drain(..size));
                    rest.drain(..2);
                    if size == 0 {
                        break;
                    }
                }
            }
            return reply;
        }
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed before a whole response");
        rest.extend_from_slice(&chunk[..n]);
    }
}

async fn fill(conn: &mut TcpStream, rest: &mut Vec<u8>, len: usize) {
    while rest.len() < len {
        let mut chunk = [0u8; 4096];
        let n = conn.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed inside a body");
        rest.extend_from_slice(&chunk[..n]);
    }
}

/// Whether the server closes `conn` (reads EOF) within a second.
async fn closes(conn: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(1), conn.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

#[tokio::test]
async fn keep_alive_requests_are_served_by_the_fast_lane_on_one_connection() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let mut rest = Vec::new();
    for i in 0..3 {
        let body = format!("request {i}");
        conn.write_all(
            format!(
                "POST /echo?i={i} HTTP/1.1\r\nhost: svc\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
        let reply = read_reply(&mut conn, &mut rest, false).await;
        assert_eq!(reply.status_line, "HTTP/1.1 200 OK");
        assert_eq!(reply.header("x-lane"), Some("fast"));
        assert_eq!(
            reply.header("x-target"),
            Some(format!("/echo?i={i}").as_str())
        );
        assert_eq!(reply.body, body.as_bytes());
        assert!(
            reply.header("date").is_some_and(|d| d.ends_with(" GMT")),
            "{reply:?}"
        );
        assert_eq!(reply.header("connection"), None);
    }
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /a HTTP/1.1\r\nhost: svc\r\n\r\nPOST /b HTTP/1.1\r\nhost: svc\r\ncontent-length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    for (target, body) in [("/a", ""), ("/b", "xyz"), ("/c", "")] {
        let reply = read_reply(&mut conn, &mut rest, false).await;
        assert_eq!(reply.header("x-target"), Some(target));
        assert_eq!(reply.body, body.as_bytes());
        assert_eq!(reply.header("x-lane"), Some("fast"));
    }
}

#[tokio::test]
async fn absolute_form_targets_reach_the_handler_whole() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET http://reviews:9080/reviews/0 HTTP/1.1\r\nhost: reviews:9080\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut conn, &mut Vec::new(), false).await;
    assert_eq!(
        reply.header("x-target"),
        Some("http://reviews:9080/reviews/0")
    );
    assert_eq!(reply.header("x-lane"), Some("fast"));
}

#[tokio::test]
async fn a_chunked_request_goes_to_hyper_with_nothing_lost_and_the_connection_goes_on() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let mut rest = Vec::new();
    conn.write_all(b"GET /first HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(
        read_reply(&mut conn, &mut rest, false)
            .await
            .header("x-lane"),
        Some("fast")
    );
    // The chunked request and the one after it arrive together: both reach hyper.
    conn.write_all(b"POST /chunked HTTP/1.1\r\nhost: svc\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET /after HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    let chunked = read_reply(&mut conn, &mut rest, false).await;
    assert_eq!(chunked.header("x-lane"), Some("hyper"));
    assert_eq!(chunked.body, b"hello world");
    let after = read_reply(&mut conn, &mut rest, false).await;
    assert_eq!(after.header("x-target"), Some("/after"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_streamed_by_hyper() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let body = vec![b'x'; mesh_proxy::http::http1::BODY_LIMIT + 1];
    let head = format!(
        "PUT /big HTTP/1.1\r\nhost: svc\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&body).await.unwrap();
    let reply = read_reply(&mut conn, &mut Vec::new(), false).await;
    assert_eq!(reply.header("x-lane"), Some("hyper"));
    assert_eq!(reply.body.len(), body.len());
}

#[tokio::test]
async fn http_1_0_and_garbage_get_hyper_answers() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /old HTTP/1.0\r\n\r\n").await.unwrap();
    let reply = read_reply(&mut conn, &mut Vec::new(), false).await;
    assert_eq!(reply.header("x-lane"), Some("hyper"));
    assert_eq!(reply.status_line, "HTTP/1.0 200 OK");

    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"\x16\x03\x01 not http at all\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut conn, &mut Vec::new(), false).await;
    assert_eq!(reply.status_line, "HTTP/1.1 400 Bad Request");
}

#[tokio::test]
async fn head_responses_have_no_body_and_keep_the_connection() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    let mut rest = Vec::new();
    conn.write_all(b"HEAD /h HTTP/1.1\r\nhost: svc\r\n\r\nGET /g HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    let head = read_reply(&mut conn, &mut rest, true).await;
    assert_eq!(head.header("x-method"), Some("HEAD"));
    let get = read_reply(&mut conn, &mut rest, false).await;
    assert_eq!(
        get.header("x-target"),
        Some("/g"),
        "the HEAD response carried no body bytes"
    );
}

#[tokio::test]
async fn a_body_of_unknown_length_is_sent_chunked() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /stream HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut conn, &mut Vec::new(), false).await;
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(reply.body, b"hello world");
}

#[tokio::test]
async fn connection_close_is_honoured() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /bye HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let reply = read_reply(&mut conn, &mut rest, false).await;
    assert_eq!(reply.header("connection"), Some("close"));
    assert!(rest.is_empty());
    assert!(closes(&mut conn).await);
}

#[tokio::test]
async fn a_client_that_hangs_up_cancels_its_request() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /slow HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!s.cancelled.load(Ordering::SeqCst));
    drop(conn);
    for _ in 0..100 {
        if s.cancelled.load(Ordering::SeqCst) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the handler kept running after its client left");
}

#[tokio::test]
async fn shutdown_closes_idle_connections() {
    let s = server().await;
    let mut conn = TcpStream::connect(s.addr).await.unwrap();
    conn.write_all(b"GET /x HTTP/1.1\r\nhost: svc\r\n\r\n")
        .await
        .unwrap();
    read_reply(&mut conn, &mut Vec::new(), false).await;
    assert!(
        !closes(&mut conn).await,
        "an idle keep-alive connection stays open"
    );
    s.shutdown.send(true).unwrap();
    assert!(closes(&mut conn).await);
}
