//! Workload identities and sidecar mTLS over real sockets: handshakes, STRICT /
//! PERMISSIVE / DISABLE, identity pinning, rotation and renewal time.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use mesh_proxy::tls::{
    self, ALPN_ISTIO_HTTP11, CertStore, ClientAuth, LocalCa, MtlsMode, Sniffed, SpiffeId,
    SpiffeServerVerifier, TlsError,
};
use rustls::ClientConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

const DAY: Duration = Duration::from_secs(24 * 3600);

fn sa(name: &str) -> SpiffeId {
    SpiffeId::new("cluster.local", "default", name).unwrap()
}

/// What the server side learnt about one accepted connection.
#[derive(Debug)]
struct Meta {
    peer: Option<String>,
    alpn: Option<Vec<u8>>,
    tls: bool,
}

/// A server applying `mode` to every connection, then echoing what it reads. Each accept
/// outcome is reported on the channel.
async fn spawn_server(
    acceptor: TlsAcceptor,
    mode: MtlsMode,
) -> (SocketAddr, mpsc::UnboundedReceiver<Result<Meta, String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                match tls::accept(stream, mode, &acceptor).await {
                    Ok(accepted) => {
                        let meta = Meta {
                            tls: accepted.is_tls(),
                            peer: accepted.peer.clone(),
                            alpn: accepted.alpn.clone(),
                        };
                        let _ = tx.send(Ok(meta));
                        let mut stream = accepted.stream;
                        let mut buf = [0u8; 1024];
                        loop {
                            match stream.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    if stream.write_all(&buf[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn acceptor(store: &Arc<CertStore>, auth: ClientAuth) -> TlsAcceptor {
    let root = store.identity().root().clone();
    TlsAcceptor::from(Arc::new(
        tls::server_config(store.clone(), &root, auth).unwrap(),
    ))
}

fn client(store: &Arc<CertStore>, expected: Option<SpiffeId>) -> Arc<ClientConfig> {
    let root = store.identity().root().clone();
    Arc::new(tls::client_config(store.clone(), &root, expected).unwrap())
}

/// Writes `message` and reads the same number of bytes back.
async fn echo(stream: &mut (impl AsyncRead + AsyncWrite + Unpin), message: &[u8]) -> Vec<u8> {
    stream.write_all(message).await.unwrap();
    stream.flush().await.unwrap();
    let mut back = vec![0u8; message.len()];
    stream.read_exact(&mut back).await.unwrap();
    back
}

async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> Result<(tokio_rustls::client::TlsStream<TcpStream>, Option<String>), TlsError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    tls::connect(tcp, config, "reviews.default.svc.cluster.local").await
}

/// Connects with `config` to a server that must refuse the client certificate. With TLS 1.3
/// the client finishes its side before the server has judged the client certificate, so
/// the failure may show on connect or on first use: either way no data may flow.
async fn no_data_flows(addr: SocketAddr, config: Arc<ClientConfig>) {
    if let Ok((mut stream, _)) = connect(addr, config).await {
        let _ = stream.write_all(b"ping").await;
        let mut buf = [0u8; 4];
        assert!(
            !matches!(stream.read(&mut buf).await, Ok(n) if n > 0),
            "no data may flow"
        );
    }
}

/// A mesh with one CA and two workloads: productpage (client) and reviews (server).
struct Pair {
    ca: LocalCa,
    client: Arc<CertStore>,
    server: Arc<CertStore>,
}

fn pair() -> Pair {
    let ca = LocalCa::new("cluster.local").unwrap();
    let client = CertStore::new(ca.issue(&sa("bookinfo-productpage"), DAY).unwrap()).unwrap();
    let server = CertStore::new(ca.issue(&sa("bookinfo-reviews"), DAY).unwrap()).unwrap();
    Pair { ca, client, server }
}

#[tokio::test]
async fn mutual_tls_both_sides_read_the_peer_identity() {
    let mesh = pair();
    let (addr, mut accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    let config = client(&mesh.client, Some(sa("bookinfo-reviews")));
    let (mut stream, server_id) = connect(addr, config).await.unwrap();
    assert_eq!(
        server_id.as_deref(),
        Some("spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
    );
    assert_eq!(echo(&mut stream, b"hello mesh").await, b"hello mesh");
    let meta = accepted.recv().await.unwrap().unwrap();
    assert!(meta.tls);
    assert_eq!(
        meta.peer.as_deref(),
        Some("spiffe://cluster.local/ns/default/sa/bookinfo-productpage")
    );
    assert_eq!(meta.alpn.as_deref(), Some(ALPN_ISTIO_HTTP11));
    assert_eq!(
        stream.get_ref().1.alpn_protocol(),
        Some(ALPN_ISTIO_HTTP11),
        "client negotiated the sidecar ALPN"
    );
}

#[tokio::test]
async fn strict_rejects_a_client_certificate_from_a_foreign_ca() {
    let mesh = pair();
    let (addr, mut accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    // The intruder trusts our root (so it would accept our server) but its own
    // certificate comes from another CA.
    let foreign = LocalCa::new("cluster.local").unwrap();
    let intruder =
        CertStore::new(foreign.issue(&sa("bookinfo-productpage"), DAY).unwrap()).unwrap();
    let config = Arc::new(
        tls::client_config(intruder, mesh.ca.root(), Some(sa("bookinfo-reviews"))).unwrap(),
    );
    no_data_flows(addr, config).await;
    let outcome = accepted.recv().await.unwrap();
    let error = outcome.unwrap_err();
    assert!(error.contains("TLS") || error.contains("I/O"), "{error}");
}

#[tokio::test]
async fn strict_rejects_an_expired_client_certificate() {
    let mesh = pair();
    let (addr, mut accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    // Our own CA, the right identity, but a day past its end: a stolen certificate stays
    // useless once it expires.
    let now = SystemTime::now();
    let stale = mesh
        .ca
        .issue_between(&sa("bookinfo-productpage"), now - 2 * DAY, now - DAY)
        .unwrap();
    let config = Arc::new(
        tls::client_config(
            CertStore::new(stale).unwrap(),
            mesh.ca.root(),
            Some(sa("bookinfo-reviews")),
        )
        .unwrap(),
    );
    no_data_flows(addr, config).await;
    let error = accepted.recv().await.unwrap().unwrap_err();
    assert!(error.to_lowercase().contains("expired"), "{error}");
}

#[tokio::test]
async fn strict_closes_plaintext_and_permissive_serves_it() {
    let mesh = pair();
    let request = b"GET /reviews/0 HTTP/1.1\r\nhost: reviews\r\n\r\n";

    let (strict, mut strict_accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    let mut plain = TcpStream::connect(strict).await.unwrap();
    plain.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    // Closed without an answer (EOF or reset).
    let read = plain.read_to_end(&mut buf).await;
    assert!(read.is_err() || buf.is_empty(), "got {buf:?}");
    assert_eq!(
        strict_accepted.recv().await.unwrap().unwrap_err(),
        TlsError::PlaintextRejected.to_string()
    );

    let (permissive, mut permissive_accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Permissive,
    )
    .await;
    let mut plain = TcpStream::connect(permissive).await.unwrap();
    // The sniffer only peeked: the server application sees every byte.
    assert_eq!(echo(&mut plain, request).await, request);
    let meta = permissive_accepted.recv().await.unwrap().unwrap();
    assert!(!meta.tls);
    assert_eq!(meta.peer, None);

    // ...and PERMISSIVE still takes mTLS on the same port.
    let config = client(&mesh.client, Some(sa("bookinfo-reviews")));
    let (mut stream, _) = connect(permissive, config).await.unwrap();
    assert_eq!(echo(&mut stream, b"secure").await, b"secure");
    let meta = permissive_accepted.recv().await.unwrap().unwrap();
    assert!(meta.tls);
    assert_eq!(
        meta.peer.as_deref(),
        Some("spiffe://cluster.local/ns/default/sa/bookinfo-productpage")
    );
}

#[tokio::test]
async fn disable_passes_tls_bytes_through_as_plaintext() {
    let mesh = pair();
    let (addr, mut accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Disable,
    )
    .await;
    let mut raw = TcpStream::connect(addr).await.unwrap();
    // The start of a TLS record, echoed back untouched: nobody terminated TLS.
    let record = [0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];
    assert_eq!(echo(&mut raw, &record).await, record);
    let meta = accepted.recv().await.unwrap().unwrap();
    assert!(!meta.tls);
    assert_eq!(meta.peer, None);
}

#[tokio::test]
async fn strict_requires_a_client_certificate_even_with_optional_client_auth() {
    let mesh = pair();
    let store = mesh.server.clone();
    let (addr, mut accepted) =
        spawn_server(acceptor(&store, ClientAuth::Optional), MtlsMode::Strict).await;
    let verifier = SpiffeServerVerifier::new(mesh.ca.root(), Some(sa("bookinfo-reviews"))).unwrap();
    let mut no_cert = ClientConfig::builder_with_provider(tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    no_cert.alpn_protocols = vec![ALPN_ISTIO_HTTP11.to_vec()];
    let no_cert = Arc::new(no_cert);
    let _ = connect(addr, no_cert.clone()).await;
    assert_eq!(
        accepted.recv().await.unwrap().unwrap_err(),
        TlsError::NoPeerCertificate.to_string()
    );

    // The same certificate-less client is fine for PERMISSIVE (TLS without a peer ID).
    let (addr, mut accepted) =
        spawn_server(acceptor(&store, ClientAuth::Optional), MtlsMode::Permissive).await;
    let (mut stream, _) = connect(addr, no_cert).await.unwrap();
    assert_eq!(echo(&mut stream, b"anon").await, b"anon");
    let meta = accepted.recv().await.unwrap().unwrap();
    assert!(meta.tls);
    assert_eq!(meta.peer, None);
}

#[tokio::test]
async fn client_rejects_a_server_with_another_identity() {
    let mesh = pair();
    let (addr, _accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    // We wanted ratings; reviews answered.
    let config = client(&mesh.client, Some(sa("bookinfo-ratings")));
    let error = connect(addr, config).await.unwrap_err().to_string();
    assert!(error.contains("not the expected"), "{error}");
    assert!(error.contains("bookinfo-reviews"), "{error}");

    // Without an expected identity any server of the mesh is fine.
    let config = client(&mesh.client, None);
    let (_, server) = connect(addr, config).await.unwrap();
    assert_eq!(
        server.as_deref(),
        Some("spiffe://cluster.local/ns/default/sa/bookinfo-reviews")
    );
}

#[tokio::test]
async fn client_rejects_a_server_from_a_foreign_ca_and_an_expired_server() {
    let mesh = pair();
    let foreign = LocalCa::new("cluster.local").unwrap();
    let impostor = CertStore::new(foreign.issue(&sa("bookinfo-reviews"), DAY).unwrap()).unwrap();
    let (addr, _a) =
        spawn_server(acceptor(&impostor, ClientAuth::Required), MtlsMode::Strict).await;
    let config = client(&mesh.client, Some(sa("bookinfo-reviews")));
    let error = connect(addr, config.clone()).await.unwrap_err().to_string();
    // Same issuer name, other key: WebPKI reports the signature.
    assert!(error.contains("invalid peer certificate"), "{error}");

    let now = SystemTime::now();
    let stale = mesh
        .ca
        .issue_between(&sa("bookinfo-reviews"), now - 2 * DAY, now - DAY)
        .unwrap();
    let expired = CertStore::new(stale).unwrap();
    let (addr, _b) = spawn_server(acceptor(&expired, ClientAuth::Required), MtlsMode::Strict).await;
    let error = connect(addr, config).await.unwrap_err().to_string();
    assert!(error.to_lowercase().contains("expired"), "{error}");
}

#[tokio::test]
async fn rotation_serves_new_handshakes_and_keeps_open_connections() {
    let mesh = pair();
    let (addr, mut accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    let config = client(&mesh.client, Some(sa("bookinfo-reviews")));
    let first_serial = mesh.server.identity().serial().to_vec();

    let (mut first, _) = connect(addr, config).await.unwrap();
    assert_eq!(echo(&mut first, b"one").await, b"one");
    accepted.recv().await.unwrap().unwrap();
    let presented = leaf_serial(&first);
    assert_eq!(presented, first_serial);

    let renewed = mesh.ca.issue(&sa("bookinfo-reviews"), DAY).unwrap();
    let second_serial = renewed.serial().to_vec();
    assert_ne!(first_serial, second_serial);
    mesh.server.rotate(renewed).unwrap();

    // A fresh client: one reusing `config` would resume its TLS session, and a resumed
    // session carries the certificate of the original handshake.
    let fresh = client(&mesh.client, Some(sa("bookinfo-reviews")));
    let (mut second, _) = connect(addr, fresh).await.unwrap();
    assert_eq!(echo(&mut second, b"two").await, b"two");
    accepted.recv().await.unwrap().unwrap();
    assert_eq!(leaf_serial(&second), second_serial);

    // The connection made before the rotation still carries traffic.
    assert_eq!(echo(&mut first, b"still here").await, b"still here");
}

/// Serial number of the certificate the server presented on this connection.
fn leaf_serial(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> Vec<u8> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let certs = stream.get_ref().1.peer_certificates().unwrap();
    let (_, cert) = X509Certificate::from_der(&certs[0]).unwrap();
    cert.raw_serial().to_vec()
}

#[test]
fn the_store_is_due_for_renewal_at_its_certificates_half_life() {
    let ca = LocalCa::new("cluster.local").unwrap();
    // Whole seconds: certificates carry second precision.
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let identity = ca
        .issue_between(&sa("bookinfo-ratings"), start, start + DAY)
        .unwrap();
    let store = CertStore::new(identity).unwrap();
    assert!(!store.needs_renewal(start + Duration::from_secs(3600)));
    assert!(store.needs_renewal(start + DAY / 2 + Duration::from_secs(60)));
}

#[tokio::test]
async fn sniff_tells_tls_from_plaintext_without_consuming() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    for (bytes, expected) in [
        (&b"GET / HTTP/1.1\r\n"[..], Sniffed::Plaintext),
        (&[0x16, 0x03, 0x01, 0x02, 0x00][..], Sniffed::Tls),
        (&[0x16, 0x99][..], Sniffed::Plaintext),
        (&b"PRI * HTTP/2.0\r\n"[..], Sniffed::Plaintext),
    ] {
        let mut client = TcpStream::connect(addr).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        client.write_all(bytes).await.unwrap();
        assert_eq!(tls::sniff(&server).await.unwrap(), expected, "{bytes:?}");
        // Nothing was consumed.
        let mut server = server;
        let mut back = vec![0u8; bytes.len()];
        server.read_exact(&mut back).await.unwrap();
        assert_eq!(back, bytes);
    }

    // A client that closes without a byte.
    let client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    drop(client);
    let error = tls::sniff(&server).await.unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[tokio::test(start_paused = true)]
async fn sniff_waits_for_a_silent_client_until_the_callers_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = TcpStream::connect(addr).await.unwrap();
    let (server, _) = listener.accept().await.unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(5), tls::sniff(&server)).await;
    assert!(
        waited.is_err(),
        "sniff must not decide before the first byte"
    );
}

#[tokio::test]
async fn rotation_under_load_fails_no_connection() {
    let mesh = pair();
    let (addr, _accepted) = spawn_server(
        acceptor(&mesh.server, ClientAuth::Required),
        MtlsMode::Strict,
    )
    .await;
    let configs = Arc::new(tls::ClientConfigs::new(
        mesh.client.clone(),
        mesh.ca.root().clone(),
    ));
    let expected = sa("bookinfo-reviews");
    let config = configs.get(Some(&expected)).unwrap();
    assert!(
        Arc::ptr_eq(&config, &configs.get(Some(&expected)).unwrap()),
        "one config per destination identity"
    );
    assert!(!Arc::ptr_eq(&config, &configs.get(None).unwrap()));

    let mut clients = Vec::new();
    for worker in 0..4 {
        let config = config.clone();
        clients.push(tokio::spawn(async move {
            // A long-lived connection used across every rotation, plus new ones.
            let (mut long, _) = connect(addr, config.clone()).await.unwrap();
            for round in 0..15 {
                let message = format!("w{worker} r{round}");
                let (mut stream, peer) = connect(addr, config.clone()).await.unwrap();
                assert!(peer.unwrap().ends_with("/sa/bookinfo-reviews"));
                assert_eq!(
                    echo(&mut stream, message.as_bytes()).await,
                    message.as_bytes()
                );
                assert_eq!(
                    echo(&mut long, message.as_bytes()).await,
                    message.as_bytes()
                );
                tokio::task::yield_now().await;
            }
        }));
    }
    // Both sides renew their certificates while the clients work.
    for _ in 0..6 {
        mesh.server
            .rotate(mesh.ca.issue(&sa("bookinfo-reviews"), DAY).unwrap())
            .unwrap();
        mesh.client
            .rotate(mesh.ca.issue(&sa("bookinfo-productpage"), DAY).unwrap())
            .unwrap();
        tokio::task::yield_now().await;
    }
    for client in clients {
        client.await.unwrap();
    }
}
