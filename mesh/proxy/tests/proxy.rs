//! One sidecar in front of small fake upstreams: retries, circuit breaking, outlier
//! detection, and bad input on both sides.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use mesh_proxy::run::Running;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod support;

use support::{Ep, client_via, file_sidecar, stats};

/// A sidecar whose registry has one service `svc` with `endpoints`, and `rules` (YAML).
async fn sidecar(endpoints: &[(SocketAddr, &str)], rules: &str) -> (Running, reqwest::Client) {
    let eps: Vec<Ep<'_>> = endpoints.iter().map(|(a, v)| Ep(*a, v, false)).collect();
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = file_sidecar(&eps, rules, lo).await;
    let client = client_via(&running);
    (running, client)
}

/// A fake upstream answering with `answer(n)` for its n-th request (0-based).
async fn upstream(
    answer: impl Fn(u32) -> (StatusCode, Duration) + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicU32>) {
    let count = Arc::new(AtomicU32::new(0));
    let c = count.clone();
    let answer = Arc::new(answer);
    let router = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let (c, answer) = (c.clone(), answer.clone());
        async move {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let (status, delay) = answer(n);
            tokio::time::sleep(delay).await;
            let attempt = headers
                .get("x-envoy-attempt-count")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_owned();
            (status, attempt)
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (addr, count)
}

const ROUTE_ALL: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc}\nspec:\n  hosts: [svc]\n  http:\n  - route:\n    - destination: {host: svc}\n";

#[tokio::test]
async fn default_retries_recover_from_a_503() {
    let (addr, count) = upstream(|n| {
        (
            if n == 0 {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::OK
            },
            Duration::ZERO,
        )
    })
    .await;
    let (_proxy, client) = sidecar(&[(addr, "v1")], ROUTE_ALL).await;
    let resp = client.get("http://svc/x").send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.text().await.unwrap(),
        "2",
        "the second attempt carries x-envoy-attempt-count: 2"
    );
    assert_eq!(count.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_retry_goes_to_a_host_not_tried_yet() {
    // One endpoint always fails, the other never does. With random picks and no memory of
    // earlier tries, a quarter of the requests would land on the failing one twice and
    // need a third try; Istio's default (previous hosts avoided) answers every request by
    // the second try.
    let (bad, _) = upstream(|_| (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)).await;
    let (good, _) = upstream(|_| (StatusCode::OK, Duration::ZERO)).await;
    let rules = format!(
        "{ROUTE_ALL}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy:\n    loadBalancer: {{simple: RANDOM}}\n"
    );
    let (_proxy, client) = sidecar(&[(bad, "v1"), (good, "v1")], &rules).await;
    for _ in 0..40 {
        let resp = client.get("http://svc/").send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let attempt = resp.text().await.unwrap();
        assert!(
            attempt == "1" || attempt == "2",
            "answered on try {attempt}"
        );
    }
}

#[tokio::test]
async fn a_500_is_not_retried_by_default_but_is_with_5xx() {
    let (addr, count) = upstream(|_| (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)).await;
    let (_proxy, client) = sidecar(&[(addr, "v1")], ROUTE_ALL).await;
    assert_eq!(
        client.get("http://svc/").send().await.unwrap().status(),
        500
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let (addr, count) = upstream(|_| (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)).await;
    let rules = format!("{ROUTE_ALL}    retries: {{attempts: 3, retryOn: 5xx}}\n");
    let (proxy, client) = sidecar(&[(addr, "v1")], &rules).await;
    assert_eq!(
        client.get("http://svc/").send().await.unwrap().status(),
        500
    );
    assert_eq!(count.load(Ordering::SeqCst), 4, "1 try + 3 retries");
    let stats = stats(&proxy).await;
    assert!(
        stats.contains(r#"response_code="500",response_flags="URX""#),
        "{stats}"
    );
}

#[tokio::test]
async fn connect_failures_are_503_uf_urx() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (_proxy, client) = sidecar(&[(closed, "v1")], ROUTE_ALL).await;
    let resp = client.get("http://svc/").send().await.unwrap();
    assert_eq!(resp.status(), 503);
    let diag = resp.headers()["x-mesh-error"].to_str().unwrap().to_owned();
    assert!(diag.starts_with("UF "), "{diag}");
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("reset reason: connection failure")
    );
}

#[tokio::test]
async fn circuit_breaker_overflows_with_503_uo() {
    let (addr, _) = upstream(|_| (StatusCode::OK, Duration::from_millis(200))).await;
    let rules = format!(
        "{ROUTE_ALL}---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy:\n    connectionPool:\n      tcp: {{maxConnections: 1}}\n      http: {{http1MaxPendingRequests: 1, maxRequestsPerConnection: 1}}\n"
    );
    let (_proxy, client) = sidecar(&[(addr, "v1")], &rules).await;
    let calls = (0..6).map(|_| {
        let c = client.clone();
        tokio::spawn(async move {
            let r = c.get("http://svc/").send().await.unwrap();
            (
                r.status().as_u16(),
                r.headers()
                    .get("x-mesh-error")
                    .map(|v| v.to_str().unwrap().to_owned()),
            )
        })
    });
    let mut ok = 0;
    let mut overflow = 0;
    // Spawn all calls before awaiting any, so they really are concurrent.
    let calls: Vec<_> = calls.collect();
    for c in calls {
        match c.await.unwrap() {
            (200, _) => ok += 1,
            (503, Some(d)) if d.starts_with("UO ") => overflow += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(ok >= 2 && overflow >= 1, "{ok} ok, {overflow} overflowed");
}

#[tokio::test(start_paused = true)]
async fn outlier_detection_ejects_a_failing_endpoint_and_readmits_it() {
    let (bad, bad_count) = upstream(|_| (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)).await;
    let (good, _) = upstream(|_| (StatusCode::OK, Duration::ZERO)).await;
    let rules = format!(
        "{ROUTE_ALL}    retries: {{attempts: 0}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: svc}}\nspec:\n  host: svc\n  trafficPolicy:\n    loadBalancer: {{simple: ROUND_ROBIN}}\n    outlierDetection: {{consecutive5xxErrors: 1, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100}}\n"
    );
    let (_proxy, client) = sidecar(&[(bad, "v1"), (good, "v2")], &rules).await;
    for _ in 0..4 {
        client.get("http://svc/").send().await.unwrap();
    }
    let after_ejection = bad_count.load(Ordering::SeqCst);
    assert_eq!(after_ejection, 1, "one 500 ejects the bad endpoint");
    for _ in 0..10 {
        assert_eq!(
            client.get("http://svc/").send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(
        bad_count.load(Ordering::SeqCst),
        1,
        "no traffic while ejected"
    );
    tokio::time::sleep(Duration::from_secs(31)).await;
    for _ in 0..4 {
        client.get("http://svc/").send().await.unwrap();
    }
    assert!(
        bad_count.load(Ordering::SeqCst) > 1,
        "readmitted after the ejection time"
    );
}

#[tokio::test]
async fn no_route_is_404_nr_and_unknown_subset_is_503() {
    let (addr, _) = upstream(|_| (StatusCode::OK, Duration::ZERO)).await;
    let rules = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: svc}\nspec:\n  hosts: [svc]\n  http:\n  - match: [{uri: {prefix: /api}}]\n    route:\n    - destination: {host: svc, subset: v9}\n";
    let (_proxy, client) = sidecar(&[(addr, "v1")], rules).await;
    let r = client.get("http://svc/other").send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(
        r.headers()["x-mesh-error"]
            .to_str()
            .unwrap()
            .starts_with("NR ")
    );
    let r = client.get("http://svc/api").send().await.unwrap();
    assert_eq!(
        r.status(),
        503,
        "deleting the DestinationRule breaks subset routes, as in Istio"
    );
}

#[tokio::test]
async fn garbage_from_clients_and_upstreams_never_stops_the_proxy() {
    // An upstream that answers every connection with garbage.
    let garbage = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let garbage_addr = garbage.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = garbage.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"\x00\x01garbage\r\n\r\n").await;
            });
        }
    });
    let (proxy, client) = sidecar(&[(garbage_addr, "v1")], ROUTE_ALL).await;
    let r = client.get("http://svc/").send().await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());

    // Clients sending garbage get an error or a closed connection, nothing more.
    for junk in [
        &b"\x16\x03\x01\x00\xff garbage"[..],
        b"GET / HTTP/9.9\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"GET http://svc/ HTTP/1.1\r\nHost: svc\r\nContent-Length: x\r\n\r\n",
    ] {
        let mut s = tokio::net::TcpStream::connect(proxy.outbound.unwrap())
            .await
            .unwrap();
        s.write_all(junk).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut out)).await;
    }
    let health = reqwest::get(format!("http://{}/ready", proxy.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let r = client.get("http://svc/").send().await.unwrap();
    assert!(r.status().is_server_error(), "still serving after the junk");
}

#[tokio::test]
async fn connect_tunnels_tcp_to_a_service_and_counts_it() {
    // A raw TCP echo server registered as the service `svc`.
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_addr = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let (proxy, _) = sidecar(&[(echo_addr, "v1")], ROUTE_ALL).await;
    let mut s = tokio::net::TcpStream::connect(proxy.outbound.unwrap())
        .await
        .unwrap();
    s.write_all(b"CONNECT svc:80 HTTP/1.1\r\nHost: svc:80\r\n\r\n")
        .await
        .unwrap();
    let mut head = [0u8; 64];
    let n = s.read(&mut head).await.unwrap();
    assert!(
        String::from_utf8_lossy(&head[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&head[..n])
    );
    s.write_all(b"ping over the tunnel").await.unwrap();
    let mut back = [0u8; 20];
    s.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping over the tunnel");
    drop(s);

    let stats_url = format!("http://{}/stats/prometheus", proxy.admin);
    let mut stats = String::new();
    for _ in 0..50 {
        stats = reqwest::get(&stats_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if stats.contains("istio_tcp_connections_closed_total{") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let value = |name: &str| {
        stats
            .lines()
            .find(|l| {
                l.starts_with(&format!("{name}{{"))
                    && l.contains(r#"destination_service="svc.default.svc.cluster.local""#)
            })
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
    };
    assert_eq!(
        value("istio_tcp_connections_opened_total"),
        Some(1),
        "{stats}"
    );
    assert_eq!(
        value("istio_tcp_connections_closed_total"),
        Some(1),
        "{stats}"
    );
    assert_eq!(value("istio_tcp_sent_bytes_total"), Some(20));
    assert_eq!(value("istio_tcp_received_bytes_total"), Some(20));
}

/// A TLS server outside the mesh.
struct TlsServer {
    addr: SocketAddr,
    /// The PEM of the CA that signed its certificate.
    ca_pem: String,
    /// With client authentication: a client certificate and key (PEM) it accepts.
    client: Option<(String, String)>,
}

/// An HTTPS server for `name` answering `answer`, with its own CA; with `client_auth`, it
/// accepts only clients that present a certificate from that CA.
async fn tls_server(name: &str, answer: &'static str, client_auth: bool) -> TlsServer {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let builder = rustls::ServerConfig::builder_with_provider(mesh_proxy::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let (builder, client) = if client_auth {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            mesh_proxy::tls::provider(),
        )
        .build()
        .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["client.example.com".to_owned()]).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&client_key, &issuer).unwrap();
        (
            builder.with_client_cert_verifier(verifier),
            Some((cert.pem(), client_key.serialize_pem())),
        )
    } else {
        (builder.with_no_client_auth(), None)
    };
    let config = builder
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivatePkcs8KeyDer::from(leaf_key.serialize_der()).into(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper::service::service_fn(move |_req| async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(bytes::Bytes::from_static(answer.as_bytes())),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    TlsServer {
        addr,
        ca_pem: ca.pem(),
        client,
    }
}

/// The egress lab's shape: the app calls http://books.example.com (port 80), the route
/// moves it to the TLS `port`, and the DestinationRule originates TLS there with `tls`.
fn egress_rules(port: u16, tls: &str) -> String {
    format!(
        "apiVersion: networking.istio.io/v1\nkind: ServiceEntry\nmetadata: {{name: books}}\nspec:\n  hosts: [books.example.com]\n  ports:\n  - {{number: 80, name: http, protocol: HTTP}}\n  - {{number: {port}, name: https, protocol: HTTPS}}\n  resolution: STATIC\n  endpoints:\n  - address: 127.0.0.1\n---\napiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {{name: books}}\nspec:\n  hosts: [books.example.com]\n  http:\n  - match: [{{port: 80}}]\n    route:\n    - destination: {{host: books.example.com, port: {{number: {port}}}}}\n---\napiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: books}}\nspec:\n  host: books.example.com\n  trafficPolicy:\n    portLevelSettings:\n    - port: {{number: {port}}}\n      tls: {tls}\n"
    )
}

/// A file in this test's scratch folder.
fn egress_file(test: &str, name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("mesh-proxy-egress-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// The status and body of a GET of the egress host through a sidecar with `rules`.
async fn egress_get(rules: &str) -> (reqwest::StatusCode, String) {
    let (_proxy, client) = sidecar(&[], rules).await;
    let resp = client
        .get("http://books.example.com/books/v1/volumes")
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let why = resp
        .headers()
        .get("x-mesh-error")
        .map(|v| format!(" ({v:?})"))
        .unwrap_or_default();
    (status, format!("{}{why}", resp.text().await.unwrap()))
}

#[tokio::test]
async fn simple_tls_origination_reaches_a_service_entry_host() {
    bookinfo_common::client::install_crypto_provider();
    let server = tls_server("books.example.com", "a secure answer", false).await;
    let ca = egress_file("simple", "ca.pem", &server.ca_pem);
    let port = server.addr.port();
    let (status, body) = egress_get(&egress_rules(
        port,
        &format!("{{mode: SIMPLE, caCertificates: {}}}", ca.display()),
    ))
    .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "a secure answer"));

    // Without the CA the server's certificate is not trusted: no answer from it.
    let (status, _) = egress_get(&egress_rules(port, "{mode: SIMPLE}")).await;
    assert!(
        status.is_server_error(),
        "an untrusted server must not answer: {status}"
    );
}

#[tokio::test]
async fn tls_origination_that_cannot_be_set_up_fails_closed() {
    bookinfo_common::client::install_crypto_provider();
    // A plain HTTP server on the port the rule wants TLS to: it would answer a request
    // sent in plaintext, so any answer from it means the request went out unprotected.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(AtomicU32::new(0));
    let seen = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            let _ = tcp
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nplaintext")
                .await;
        }
    });
    for (tls, why) in [
        (
            "{mode: SIMPLE, caCertificates: /nonexistent/ca.pem}",
            "caCertificates /nonexistent/ca.pem",
        ),
        (
            "{mode: MUTUAL, credentialName: books-creds}",
            "credentialName books-creds is a Kubernetes secret",
        ),
    ] {
        let (status, body) = egress_get(&egress_rules(port, tls)).await;
        assert_eq!(status.as_u16(), 503, "{tls}: {body}");
        assert!(body.contains("\"UF upstream_reset_before_response_started{connection_failure}: TLS origination for outbound|"), "{tls}: {body}");
        assert!(body.contains(why), "{tls}: {body}");
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "nothing may reach the server without the TLS the rule asks for"
    );
}

#[tokio::test]
async fn mutual_tls_origination_presents_the_client_certificate() {
    bookinfo_common::client::install_crypto_provider();
    let server = tls_server("books.example.com", "for known clients", true).await;
    let (cert_pem, key_pem) = server.client.clone().unwrap();
    let ca = egress_file("mutual", "ca.pem", &server.ca_pem);
    let cert = egress_file("mutual", "client.pem", &cert_pem);
    let key = egress_file("mutual", "client-key.pem", &key_pem);
    let port = server.addr.port();
    let (status, body) = egress_get(&egress_rules(
        port,
        &format!(
            "{{mode: MUTUAL, caCertificates: {}, clientCertificate: {}, privateKey: {}}}",
            ca.display(),
            cert.display(),
            key.display()
        ),
    ))
    .await;
    assert_eq!((status.as_u16(), body.as_str()), (200, "for known clients"));

    // The same server refuses a client that shows no certificate (SIMPLE).
    let (status, _) = egress_get(&egress_rules(
        port,
        &format!("{{mode: SIMPLE, caCertificates: {}}}", ca.display()),
    ))
    .await;
    assert!(
        status.is_server_error(),
        "a server that wants a client certificate must not answer without one: {status}"
    );
}
