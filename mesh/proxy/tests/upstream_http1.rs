//! The sidecar's own HTTP/1.1 client connection, byte by byte: how it frames requests,
//! how it reads every kind of response body (sized, chunked with extensions and
//! trailers, delimited by close, none at all), interim `100 Continue` responses, when it
//! reuses a connection and when it must not, and what a broken upstream costs (only the
//! request in flight).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::{Ep, client_via, file_sidecar, stats};

const UNUSED_APP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

/// One scripted answer: the raw bytes, and whether to close the connection after them.
struct Answer(&'static [u8], bool);

/// An upstream that answers each request with the next scripted answer and records
/// each request (head and body) as text.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Answer>>,
    requests: Mutex<Vec<String>>,
    connections: AtomicU32,
}

async fn scripted(answers: Vec<Answer>) -> (SocketAddr, Arc<Scripted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = Arc::new(Scripted {
        answers: Mutex::new(answers.into()),
        ..Scripted::default()
    });
    let s = state.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            s.connections.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(tcp, s.clone()));
        }
    });
    (addr, state)
}

async fn serve(mut tcp: TcpStream, s: Arc<Scripted>) {
    let mut buf = Vec::new();
    loop {
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .map_or(0, |v| v.trim().parse().unwrap());
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            match tcp.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = String::from_utf8_lossy(&buf[head_end..head_end + length]).to_string();
        buf.drain(..head_end + length);
        s.requests.lock().unwrap().push(format!("{head}{body}"));
        let Some(Answer(bytes, close)) = s.answers.lock().unwrap().pop_front() else {
            return;
        };
        if tcp.write_all(bytes).await.is_err() || close {
            return;
        }
    }
}

async fn proxy_to(addr: SocketAddr, rules: &str) -> mesh_proxy::run::Running {
    file_sidecar(&[Ep(addr, "v1", false)], rules, UNUSED_APP).await
}

#[tokio::test]
async fn chunked_bodies_with_extensions_and_trailers_arrive_whole_and_keep_the_connection() {
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\nx-trailer: t\r\n\r\n";
    let (addr, seen) = scripted(vec![Answer(chunked, false), Answer(chunked, false)]).await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    for _ in 0..2 {
        let resp = client.get("http://svc/c").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "hello world");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 1, "reused");
}

#[tokio::test]
async fn a_body_delimited_by_close_is_read_to_the_end_and_the_connection_is_not_reused() {
    let until_close: &[u8] = b"HTTP/1.1 200 OK\r\n\r\nall of it";
    let (addr, seen) = scripted(vec![Answer(until_close, true), Answer(until_close, true)]).await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    for _ in 0..2 {
        assert_eq!(text_of(&client, "http://svc/c").await, "all of it");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn interim_100_continue_is_skipped() {
    let (addr, _) = scripted(vec![Answer(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone",
        false,
    )])
    .await;
    let proxy = proxy_to(addr, "").await;
    let resp = client_via(&proxy)
        .post("http://svc/p")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(resp.text().await.unwrap(), "done");
}

#[tokio::test]
async fn head_204_and_304_have_no_body_whatever_the_headers_say() {
    let (addr, seen) = scripted(vec![
        Answer(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n", false),
        Answer(b"HTTP/1.1 204 No Content\r\n\r\n", false),
        Answer(
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 7\r\n\r\n",
            false,
        ),
        Answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false),
    ])
    .await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    let head = client.head("http://svc/h").send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        client.get("http://svc/n").send().await.unwrap().status(),
        204
    );
    assert_eq!(
        client.get("http://svc/m").send().await.unwrap().status(),
        304
    );
    let last = client.get("http://svc/ok").send().await.unwrap();
    assert_eq!(last.text().await.unwrap(), "ok");
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "one connection throughout"
    );
}

#[tokio::test]
async fn requests_are_framed_by_content_length_with_the_service_as_host_and_the_try_number() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let (addr, seen) = scripted(vec![Answer(ok, false), Answer(ok, false)]).await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    client
        .post("http://svc/a?q=1")
        .body("payload")
        .send()
        .await
        .unwrap();
    client
        .get("http://svc/b")
        .header("x-envoy-attempt-count", "7")
        .send()
        .await
        .unwrap();
    let requests = seen.requests.lock().unwrap().clone();
    assert!(
        requests[0].starts_with("POST /a?q=1 HTTP/1.1\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[0].contains("\r\nhost: svc\r\n"), "{}", requests[0]);
    assert!(
        requests[0].contains("\r\ncontent-length: 7\r\n"),
        "{}",
        requests[0]
    );
    assert!(requests[0].ends_with("\r\n\r\npayload"), "{}", requests[0]);
    assert!(
        !requests[0].contains("transfer-encoding"),
        "{}",
        requests[0]
    );
    assert!(
        requests[1].starts_with("GET /b HTTP/1.1\r\n"),
        "{}",
        requests[1]
    );
    assert!(!requests[1].contains("content-length"), "{}", requests[1]);
    // The sidecar counts the tries itself: a count sent by the app is replaced.
    for request in &requests {
        assert_eq!(
            request.matches("x-envoy-attempt-count").count(),
            1,
            "{request}"
        );
        assert!(
            request.contains("\r\nx-envoy-attempt-count: 1\r\n"),
            "{request}"
        );
    }
}

#[tokio::test]
async fn max_requests_per_connection_1_asks_the_upstream_to_close() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (addr, seen) = scripted(vec![Answer(ok, false), Answer(ok, false)]).await;
    let rule = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: svc}\nspec:\n  host: svc\n  trafficPolicy:\n    connectionPool:\n      http: {maxRequestsPerConnection: 1}\n";
    let proxy = proxy_to(addr, rule).await;
    let client = client_via(&proxy);
    for _ in 0..2 {
        assert_eq!(text_of(&client, "http://svc/x").await, "ok");
    }
    let requests = seen.requests.lock().unwrap().clone();
    assert!(
        requests
            .iter()
            .all(|r| r.contains("\r\nconnection: close\r\n")),
        "{requests:?}"
    );
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_connection_that_says_close_is_not_reused() {
    let closing: &[u8] = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok";
    let (addr, seen) = scripted(vec![Answer(closing, false), Answer(closing, false)]).await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    for _ in 0..2 {
        assert_eq!(text_of(&client, "http://svc/x").await, "ok");
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn broken_responses_fail_only_their_own_request() {
    let (addr, seen) = scripted(vec![
        // Garbage instead of a status line: 503 before anything was relayed.
        Answer(b"SSH-2.0-OpenSSH\r\n\r\n", true),
        // Two content-lengths that disagree.
        Answer(
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\nok",
            true,
        ),
        // A body cut short: the head was relayed, so the client sees the body fail.
        Answer(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort", true),
        // A bad chunk size.
        Answer(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            true,
        ),
        Answer(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false),
    ])
    .await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    assert_eq!(
        client.get("http://svc/1").send().await.unwrap().status(),
        503
    );
    assert_eq!(
        client.get("http://svc/2").send().await.unwrap().status(),
        503
    );
    // The head may or may not have gone downstream before the body broke; either way
    // the client must not see a complete response.
    assert!(
        incomplete(client.get("http://svc/3").send().await).await,
        "a truncated body must not look complete"
    );
    assert!(
        incomplete(client.get("http://svc/4").send().await).await,
        "a broken chunked body must not look complete"
    );
    let ok = client.get("http://svc/5").send().await.unwrap();
    assert_eq!(ok.text().await.unwrap(), "ok");
    assert_eq!(seen.requests.lock().unwrap().len(), 5);
    let metrics = stats(&proxy).await;
    assert!(
        metrics.contains("response_code=\"503\""),
        "the failures are counted: {metrics}"
    );
}

#[tokio::test]
async fn large_uploads_stream_over_the_other_connection_kind() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
    let (addr, seen) = scripted(vec![Answer(ok, false), Answer(ok, false)]).await;
    let proxy = proxy_to(addr, "").await;
    let client = client_via(&proxy);
    let big = "b".repeat(200 * 1024);
    let resp = client
        .post("http://svc/big")
        .body(big.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    let resp = client
        .post("http://svc/small")
        .body("s")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.text().await.unwrap(), "ok");
    let requests = seen.requests.lock().unwrap().clone();
    assert!(requests[0].ends_with(&big), "the whole upload arrived");
    assert!(requests[1].ends_with("\r\n\r\ns"));
}

async fn incomplete(sent: reqwest::Result<reqwest::Response>) -> bool {
    match sent {
        Ok(resp) => resp.text().await.is_err(),
        Err(_) => true,
    }
}

/// The body of a GET through the sidecar.
async fn text_of(client: &reqwest::Client, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}
