//! Upstream connections: HTTP/1.1 reuse, upstreams that close idle connections, and
//! HTTP/2 to the endpoints (`h2UpgradePolicy: UPGRADE`, `useClientProtocol`), also
//! between two sidecars.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, Version};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use mesh_proxy::run::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

mod support;

use support::{Ep, client_via, file_sidecar, stats};

/// What an upstream saw.
#[derive(Default)]
struct Seen {
    connections: AtomicU32,
    versions: Mutex<Vec<Version>>,
    hosts: Mutex<Vec<String>>,
}

/// An upstream speaking HTTP/1.1 and h2c on one port (as our inbound listener does),
/// answering after `delay` with the protocol version it saw.
async fn upstream(delay: Duration) -> (SocketAddr, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Seen::default());
    let s = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            s.connections.fetch_add(1, Ordering::SeqCst);
            let s = s.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let s = s.clone();
                    async move {
                        s.versions.lock().unwrap().push(req.version());
                        let host = req
                            .headers()
                            .get(http::header::HOST)
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or("-")
                            .to_owned();
                        s.hosts.lock().unwrap().push(host);
                        tokio::time::sleep(delay).await;
                        let body = format!("{:?}", req.version());
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
                    }
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (addr, seen)
}

/// A sidecar whose registry has one service `svc` at `endpoint` (behind a sidecar of
/// ours when `sidecar`), with `rules` (YAML), forwarding inbound traffic to `app`.
async fn sidecar(endpoint: SocketAddr, sidecar: bool, rules: &str, app: SocketAddr) -> Running {
    file_sidecar(&[Ep(endpoint, "v1", sidecar)], rules, app).await
}

fn rule(connection_pool_http: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy:\n    connectionPool:\n      http: {{{connection_pool_http}}}\n"
    )
}

const UNUSED_APP: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 9);

#[tokio::test]
async fn http1_connections_are_reused() {
    let (addr, seen) = upstream(Duration::ZERO).await;
    let proxy = sidecar(addr, false, "", UNUSED_APP).await;
    let client = client_via(&proxy);
    for _ in 0..20 {
        let resp = client.get("http://svc/x").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "HTTP/1.1");
    }
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "one kept-alive connection"
    );
    assert!(
        seen.hosts.lock().unwrap().iter().all(|h| h == "svc"),
        "Host is the service"
    );
}

#[tokio::test]
async fn max_requests_per_connection_1_opens_a_connection_per_request() {
    let (addr, seen) = upstream(Duration::ZERO).await;
    let proxy = sidecar(
        addr,
        false,
        &rule("maxRequestsPerConnection: 1"),
        UNUSED_APP,
    )
    .await;
    let client = client_via(&proxy);
    for _ in 0..5 {
        assert_eq!(
            client.get("http://svc/x").send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(seen.connections.load(Ordering::SeqCst), 5);
}

/// An HTTP/1.1 upstream that closes each connection after one response without saying
/// so (no `Connection: close`), as servers with short keep-alive timeouts do.
async fn closing_upstream() -> (SocketAddr, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicU32::new(0));
    let a = accepted.clone();
    tokio::spawn(async move {
        loop {
            let (mut tcp, _) = listener.accept().await.unwrap();
            a.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn connections_the_upstream_closed_are_not_reused() {
    let (addr, accepted) = closing_upstream().await;
    let proxy = sidecar(addr, false, "", UNUSED_APP).await;
    let client = client_via(&proxy);
    for i in 0..5 {
        let resp = client.get("http://svc/x").send().await.unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.text().await.unwrap(), "ok");
        // Give the closed connection's FIN time to arrive, as between real requests.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        5,
        "a fresh connection each time"
    );
}

#[tokio::test]
async fn h2_upgrade_multiplexes_requests_over_one_connection() {
    let (addr, seen) = upstream(Duration::from_millis(200)).await;
    let proxy = sidecar(addr, false, &rule("h2UpgradePolicy: UPGRADE"), UNUSED_APP).await;
    let client = client_via(&proxy);
    let calls = (0..10).map(|_| {
        let client = client.clone();
        tokio::spawn(async move {
            let resp = client.get("http://svc/x").send().await.unwrap();
            (resp.status(), resp.text().await.unwrap())
        })
    });
    for call in calls.collect::<Vec<_>>() {
        let (status, body) = call.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, "HTTP/2.0", "the upstream was spoken to over HTTP/2");
    }
    assert_eq!(
        seen.connections.load(Ordering::SeqCst),
        1,
        "10 overlapping requests share one HTTP/2 connection"
    );
}

/// Sends one HTTP/2 (prior knowledge) request for `http://svc/x` to the outbound
/// listener, as an h2c client of the sidecar would.
async fn h2_request(outbound: SocketAddr) -> String {
    let tcp = TcpStream::connect(outbound).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = Request::get("http://svc/x")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn use_client_protocol_follows_the_client() {
    let (addr, _seen) = upstream(Duration::ZERO).await;
    let proxy = sidecar(addr, false, &rule("useClientProtocol: true"), UNUSED_APP).await;
    let h1 = client_via(&proxy).get("http://svc/x").send().await.unwrap();
    assert_eq!(h1.text().await.unwrap(), "HTTP/1.1");
    assert_eq!(h2_request(proxy.outbound.unwrap()).await, "HTTP/2.0");

    // Without the setting, an h2 client's request goes upstream as HTTP/1.1.
    let (addr, _seen) = upstream(Duration::ZERO).await;
    let plain = sidecar(addr, false, "", UNUSED_APP).await;
    assert_eq!(h2_request(plain.outbound.unwrap()).await, "HTTP/1.1");
}

#[tokio::test]
async fn h2_between_sidecars_reaches_an_http1_app_with_its_host() {
    let (app, seen) = upstream(Duration::ZERO).await;
    // The server sidecar forwards its inbound traffic to the app.
    let server = sidecar(UNUSED_APP, false, "", app).await;
    let client = sidecar(
        server.inbound.unwrap(),
        true,
        &rule("h2UpgradePolicy: UPGRADE"),
        UNUSED_APP,
    )
    .await;
    let http = client_via(&client);
    for _ in 0..3 {
        let resp = http.get("http://svc/x").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.text().await.unwrap(),
            "HTTP/1.1",
            "the app speaks HTTP/1.1"
        );
    }
    assert!(
        seen.hosts.lock().unwrap().iter().all(|h| h == "svc"),
        "the app sees the service in Host, restored from :authority: {:?}",
        seen.hosts.lock().unwrap()
    );
    let stats = stats(&server).await;
    assert!(
        stats.contains(r#"istio_requests_total{reporter="destination""#)
            && stats.contains(r#"response_code="200""#),
        "the server sidecar counted the requests: {stats}"
    );
}

#[tokio::test]
async fn h2_to_an_endpoint_that_refuses_is_503_uf_for_every_waiting_request() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let proxy = sidecar(addr, false, &rule("h2UpgradePolicy: UPGRADE"), UNUSED_APP).await;
    let client = client_via(&proxy);
    let calls: Vec<_> = (0..5)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move {
                let resp = client.get("http://svc/x").send().await.unwrap();
                let flags = resp.headers().get("x-mesh-error").cloned();
                (resp.status(), flags)
            })
        })
        .collect();
    for call in calls {
        let (status, flags) = call.await.unwrap();
        assert_eq!(status, 503);
        let flags = flags.unwrap();
        assert!(flags.to_str().unwrap().starts_with("UF"), "{flags:?}");
    }
}
