//! Network faults of fault leases, end to end on real sockets: a lease created on the real
//! control plane reaches the caller's sidecar, which throttles, cuts, blackholes or holds
//! the exchange the way a user's client sees it.
//!
//! Time bounds here are lower bounds only (a throttled body cannot arrive sooner than its
//! size allows): a slow machine makes them easier to meet, never harder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use mesh_control::Control;
use mesh_proxy::run::{Running, start};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod control_plane;

use control_plane::{control_env, control_plane, svc_at};

/// Size of the upstream's answer.
const BODY: usize = 8000;

/// The control plane, a sidecar following it, and `svc` answering `BODY` bytes.
struct Mesh {
    control: Arc<Control>,
    proxy: Running,
    /// Requests the service received.
    hits: Arc<AtomicU32>,
}

impl Mesh {
    async fn start() -> Self {
        bookinfo_common::client::install_crypto_provider();
        let (control, addr) = control_plane().await;
        let hits = Arc::new(AtomicU32::new(0));
        let seen = hits.clone();
        let app = Router::new().fallback(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            async { "x".repeat(BODY) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        control.register(svc_at(upstream)).unwrap();
        let proxy = start(&control_env(format!("http://{addr}"))).await.unwrap();
        Self {
            control,
            proxy,
            hits,
        }
    }

    /// Creates the lease `fault` (fields of `POST /api/v1/faults`) on `svc` and waits until
    /// the sidecar runs the configuration that carries it.
    async fn fault(&self, fault: Value) {
        let mut body = json!({"service": "svc", "ttl_seconds": 30});
        for (k, v) in fault.as_object().unwrap() {
            body[k] = v.clone();
        }
        self.control
            .add_fault(serde_json::from_value(body).unwrap())
            .unwrap();
        self.synced().await;
    }

    /// Waits until the sidecar runs the control plane's current configuration.
    async fn synced(&self) {
        let want = self.control.version().to_string();
        for _ in 0..250 {
            if self.proxy.state.store.load().version == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the sidecar never received version {want}");
    }

    fn outbound(&self) -> SocketAddr {
        self.proxy.outbound.unwrap()
    }

    /// `GET /` to `svc` through the sidecar on a raw connection: everything that came
    /// back before the connection ended, and how long that took. `None` when nothing
    /// came back within `patience`.
    async fn raw_get(&self, patience: Duration) -> Option<(Vec<u8>, Duration)> {
        let started = Instant::now();
        let mut conn = TcpStream::connect(self.outbound()).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\nhost: svc\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut got = Vec::new();
        let read = tokio::time::timeout(patience, async {
            let mut buf = [0u8; 4096];
            loop {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        read.ok().map(|()| (got, started.elapsed()))
    }
}

/// The body of a complete HTTP/1.1 answer (`content-length` or chunked), if it is one.
fn complete_body(answer: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(answer);
    let (head, rest) = text.split_once("\r\n\r\n")?;
    let head = head.to_ascii_lowercase();
    if head.contains("transfer-encoding: chunked") {
        let mut body = Vec::new();
        let mut rest = rest;
        loop {
            let (size, after) = rest.split_once("\r\n")?;
            let size = usize::from_str_radix(size.trim(), 16).ok()?;
            if size == 0 {
                return Some(body);
            }
            body.extend_from_slice(after.get(..size)?.as_bytes());
            rest = after.get(size + 2..)?;
        }
    }
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))?
        .trim()
        .parse()
        .ok()?;
    (rest.len() == length).then(|| rest.as_bytes().to_vec())
}

#[tokio::test]
async fn a_throttled_response_takes_as_long_as_its_size_at_the_rate() {
    let mesh = Mesh::start().await;
    // Without the fault the page is whole.
    let (answer, _) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(complete_body(&answer).unwrap().len(), BODY);

    mesh.fault(json!({"bandwidth": {"bytes_per_second": 16000}}))
        .await;
    let (answer, took) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(complete_body(&answer).unwrap().len(), BODY, "all of it");
    // 8000 bytes at 16000 B/s: half a second at least.
    assert!(took >= Duration::from_millis(490), "took {took:?}");
    assert_eq!(mesh.hits.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_reset_cuts_the_response_after_the_bytes_given() {
    let mesh = Mesh::start().await;
    mesh.fault(json!({"reset": {"after_bytes": 100}})).await;
    let (answer, _) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").expect("the head arrives");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(complete_body(&answer).is_none(), "the body is cut short");
    assert!(
        body.contains(&"x".repeat(100)) && body.matches('x').count() < BODY,
        "100 bytes of the body, not all: {} bytes",
        body.len()
    );
}

#[tokio::test]
async fn a_reset_on_the_request_never_reaches_the_service() {
    let mesh = Mesh::start().await;
    mesh.fault(json!({"reset": {"direction": "request"}})).await;
    let (answer, _) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    assert!(answer.is_empty(), "the connection ends without a word");
    assert_eq!(mesh.hits.load(Ordering::SeqCst), 0);
    // A client library sees a failed request, not an answer.
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(format!("http://{}", mesh.outbound())).unwrap())
        .build()
        .unwrap();
    assert!(client.get("http://svc/").send().await.is_err());
}

/// The same reset seen by an HTTP/2 client (prior knowledge, as gRPC clients talk): its
/// stream is reset, with no answer, and the connection serves the next stream.
#[tokio::test]
async fn an_http2_client_sees_its_stream_reset() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let mesh = Mesh::start().await;
    let tcp = TcpStream::connect(mesh.outbound()).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let get = || {
        http::Request::get("http://svc/")
            .body(Empty::<bytes::Bytes>::new())
            .unwrap()
    };
    let before = send.send_request(get()).await.unwrap();
    assert_eq!(before.status(), 200);
    let whole = before.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(whole.len(), BODY);

    mesh.fault(json!({"reset": {"direction": "request"}})).await;
    let error = send.send_request(get()).await.unwrap_err();
    assert!(
        format!("{error:?}").contains("Reset(StreamId"),
        "a reset stream, not an answer: {error:?}"
    );
    assert_eq!(
        mesh.hits.load(Ordering::SeqCst),
        1,
        "only the first got through"
    );

    // Only that stream was cut: once the fault is gone, the same connection answers.
    mesh.control.clear_faults();
    mesh.synced().await;
    let after = send.send_request(get()).await.unwrap();
    assert_eq!(after.status(), 200);
}

#[tokio::test]
async fn a_blackhole_holds_the_caller_until_it_gives_up() {
    let mesh = Mesh::start().await;
    mesh.fault(json!({"blackhole": {}})).await;
    assert!(
        mesh.raw_get(Duration::from_millis(700)).await.is_none(),
        "nothing comes back"
    );
    assert_eq!(mesh.hits.load(Ordering::SeqCst), 0, "nothing went through");
    // Once the fault is gone, the service answers again.
    mesh.control.clear_faults();
    mesh.synced().await;
    let (answer, _) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(complete_body(&answer).unwrap().len(), BODY);
}

#[tokio::test]
async fn a_slow_close_relays_everything_and_ends_late() {
    let mesh = Mesh::start().await;
    mesh.fault(json!({"slow_close": {"delay": "600ms"}})).await;
    let (answer, took) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(complete_body(&answer).unwrap().len(), BODY);
    assert!(took >= Duration::from_millis(590), "took {took:?}");
}

#[tokio::test]
async fn a_delay_on_the_response_comes_after_the_service_did_the_work() {
    let mesh = Mesh::start().await;
    mesh.fault(json!({"delay": {"fixed_delay": "500ms", "jitter": "100ms",
        "direction": "response"}}))
        .await;
    let (answer, took) = mesh.raw_get(Duration::from_secs(10)).await.unwrap();
    assert_eq!(complete_body(&answer).unwrap().len(), BODY);
    assert!(took >= Duration::from_millis(390), "took {took:?}");
    assert_eq!(mesh.hits.load(Ordering::SeqCst), 1);
}
