//! The peer metadata exchange between two sidecars joined to the real control plane (so
//! they talk mTLS with certificates of its CA): the server's `reporter="destination"`
//! metrics name the calling workload when its certificate vouches for the metadata,
//! and nothing else (plaintext, forged or mismatched metadata) gets named; the app
//! never sees the exchange's headers.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use mesh_control::Control;
use mesh_proxy::config::{Env, Source, WorkloadSpec};
use mesh_proxy::run::{Running, start};
use mesh_proxy::telemetry::peer::NodeMetadata;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[expect(dead_code, reason = "each test binary uses part of the shared helpers")]
mod control_plane;

use control_plane::control_plane;

const CLIENT_ID: &str = "spiffe://cluster.local/ns/default/sa/client";

/// The header names each request reached the app with.
type Seen = Arc<Mutex<Vec<Vec<String>>>>;

struct Pair {
    _control: Arc<Control>,
    client: Running,
    server: Running,
    seen: Seen,
}

/// The server's app: answers `ok` and remembers the header names of each request.
async fn app(seen: Seen) -> SocketAddr {
    let router = Router::new().fallback(move |headers: HeaderMap| {
        let seen = seen.clone();
        async move {
            let names = headers.keys().map(|k| k.as_str().to_owned()).collect();
            seen.lock().unwrap().push(names);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

fn sidecar_env(control: SocketAddr, name: &str, app_label: &str, app: SocketAddr) -> Env {
    let lo = SocketAddr::from(([127, 0, 0, 1], 0));
    Env {
        source: Source::Control {
            url: format!("http://{control}"),
            token: None,
            workload: WorkloadSpec {
                name: name.into(),
                namespace: "default".into(),
                service_account: Some(app_label.into()),
                labels: [
                    ("app".to_owned(), app_label.to_owned()),
                    ("version".to_owned(), "v1".to_owned()),
                ]
                .into(),
                service: None,
            },
        },
        outbound: lo,
        inbound: lo,
        app,
        admin: lo,
        access_log: false,
        drain: Duration::from_millis(50),
        ..Env::with_file("unused".into())
    }
}

/// A client sidecar (`client-v1`) and a server sidecar (`server-v1` in front of
/// [`app`]), both with certificates, the client's registry knowing the server.
async fn pair() -> Pair {
    bookinfo_common::client::install_crypto_provider();
    let (control, addr) = control_plane().await;
    let seen = Seen::default();
    let app = app(seen.clone()).await;
    let server = start(&sidecar_env(addr, "server-v1", "server", app))
        .await
        .unwrap();
    let unused = SocketAddr::from(([127, 0, 0, 1], 9));
    let client = start(&sidecar_env(addr, "client-v1", "client", unused))
        .await
        .unwrap();
    assert!(client.state.mtls().is_some() && server.state.mtls().is_some());
    // Until the client's registry has the server (a push away), calls get 503.
    let pair = Pair {
        _control: control,
        client,
        server,
        seen,
    };
    for _ in 0..200 {
        if pair.call(&[]).await == 200 {
            pair.seen.lock().unwrap().clear();
            return pair;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the client sidecar never reached the server");
}

impl Pair {
    /// `GET http://server/` from the client's app through its sidecar, with `headers`.
    async fn call(&self, headers: &[(&str, &str)]) -> u16 {
        let http = reqwest::Client::builder()
            .no_proxy()
            .proxy(
                reqwest::Proxy::http(format!("http://{}", self.client.outbound.unwrap())).unwrap(),
            )
            .build()
            .unwrap();
        let mut req = http.get("http://server/");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().await.unwrap().status().as_u16()
    }

    /// The server's `reporter="destination"` request counts whose labels contain all
    /// of `labels`, summed.
    async fn destination_requests(&self, labels: &[&str]) -> u64 {
        let url = format!("http://{}/stats/prometheus", self.server.admin);
        let text = reqwest::get(url).await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with("istio_requests_total{"))
            .filter(|l| l.contains(r#"reporter="destination""#))
            .filter(|l| labels.iter().all(|want| l.contains(want)))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum()
    }

    /// Whether the app ever saw a peer metadata header.
    fn app_saw_exchange_headers(&self) -> bool {
        let seen = self.seen.lock().unwrap();
        assert!(!seen.is_empty(), "the app was reached");
        seen.iter()
            .flatten()
            .any(|n| n.starts_with("x-envoy-peer-metadata"))
    }
}

/// Metadata claiming to be `workload` in `namespace` with service account `sa`.
fn claim(workload: &str, namespace: &str, sa: &str) -> String {
    let labels = [
        ("app".to_owned(), "forged".to_owned()),
        ("version".to_owned(), "v9".to_owned()),
    ]
    .into();
    NodeMetadata::of_workload(workload, namespace, sa, &labels).encode()
}

#[tokio::test]
async fn over_mtls_the_destination_reporter_names_the_calling_workload() {
    let pair = pair().await;
    // What the client's app puts in these headers is replaced by its sidecar's.
    let forged = claim("evil-v1", "default", "client");
    let caller = [
        r#"source_workload="client-v1""#,
        r#"source_workload_namespace="default""#,
        &format!(r#"source_principal="{CLIENT_ID}""#),
        r#"source_app="client""#,
        r#"source_version="v1""#,
        r#"source_canonical_service="client""#,
        r#"source_canonical_revision="v1""#,
        r#"source_cluster="Kubernetes""#,
        r#"destination_workload="server-v1""#,
        r#"destination_canonical_service="server""#,
        r#"destination_canonical_revision="v1""#,
        r#"destination_cluster="Kubernetes""#,
        r#"grpc_response_status="""#,
        r#"connection_security_policy="mutual_tls""#,
    ];
    // The calls that found the server while the pair started count too: the delta.
    let before = pair.destination_requests(&caller).await;
    for _ in 0..3 {
        assert_eq!(pair.call(&[("x-envoy-peer-metadata", &forged)]).await, 200);
    }
    assert_eq!(pair.destination_requests(&caller).await, before + 3);
    assert_eq!(
        pair.destination_requests(&[r#"source_workload="evil-v1""#])
            .await,
        0
    );
    assert!(!pair.app_saw_exchange_headers(), "stripped before the app");
    // The client's own (source) report knows the destination from the registry.
    let url = format!("http://{}/stats/prometheus", pair.client.admin);
    let text = reqwest::get(url).await.unwrap().text().await.unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("istio_requests_total{")
            && l.contains(r#"reporter="source""#)
            && l.contains(r#"destination_workload="server-v1""#)
            && l.contains(r#"destination_canonical_service="server""#)
            && l.contains(
                r#"destination_principal="spiffe://cluster.local/ns/default/sa/server""#
            )),
        "{text}"
    );
}

#[tokio::test]
async fn a_plaintext_caller_is_unknown_even_with_forged_metadata() {
    let pair = pair().await;
    let forged = claim("client-v1", "default", "client");
    let named = [r#"source_workload="client-v1""#];
    let before = pair.destination_requests(&named).await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for _ in 0..2 {
        let resp = http
            .get(format!("http://{}/", pair.server.inbound.unwrap()))
            .header("host", "server")
            .header(
                "x-envoy-peer-metadata-id",
                "sidecar~127.0.0.1~client-v1.default~default.svc.cluster.local",
            )
            .header("x-envoy-peer-metadata", &forged)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "PERMISSIVE serves plaintext");
    }
    let unknown = [
        r#"source_workload="unknown""#,
        r#"source_principal="unknown""#,
        r#"source_app="unknown""#,
        r#"source_canonical_service="unknown""#,
        r#"source_canonical_revision="latest""#,
        r#"connection_security_policy="none""#,
    ];
    assert_eq!(pair.destination_requests(&unknown).await, 2);
    assert_eq!(pair.destination_requests(&named).await, before);
    assert!(!pair.app_saw_exchange_headers(), "stripped before the app");
}

#[tokio::test]
async fn over_mtls_metadata_the_certificate_does_not_vouch_for_is_ignored() {
    let pair = pair().await;
    // The client's own certificate (ns default, sa client), used by hand.
    let config = pair.client.state.mtls().unwrap().client_for(None);
    let claims = [
        claim("client-v1", "other", "client"),     // another namespace
        claim("client-v1", "default", "reviewer"), // another service account
    ];
    for (n, metadata) in claims.iter().enumerate() {
        let tcp = TcpStream::connect(pair.server.inbound.unwrap())
            .await
            .unwrap();
        let (mut tls, server_id) =
            mesh_proxy::tls::connect(tcp, config.clone(), "server.default.svc.cluster.local")
                .await
                .unwrap();
        assert_eq!(
            server_id.as_deref(),
            Some("spiffe://cluster.local/ns/default/sa/server")
        );
        let req = format!(
            "GET / HTTP/1.1\r\nhost: server\r\nx-envoy-peer-metadata-id: sidecar~127.0.0.1~fake-{n}.default~default.svc.cluster.local\r\nx-envoy-peer-metadata: {metadata}\r\nconnection: close\r\n\r\n"
        );
        tls.write_all(req.as_bytes()).await.unwrap();
        // The proxy closes without a TLS close_notify: read what came until then.
        let mut resp = Vec::new();
        let _ = tls.read_to_end(&mut resp).await;
        let resp = String::from_utf8_lossy(&resp);
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    // Counted as the certificate says (principal, namespace), nothing of the claims.
    let cert_only = [
        r#"source_workload="unknown""#,
        &format!(r#"source_principal="{CLIENT_ID}""#),
        r#"source_workload_namespace="default""#,
        r#"source_app="unknown""#,
        r#"source_canonical_revision="latest""#,
        r#"connection_security_policy="mutual_tls""#,
    ];
    assert_eq!(pair.destination_requests(&cert_only).await, 2);
    assert_eq!(
        pair.destination_requests(&[r#"source_app="forged""#]).await,
        0
    );
    assert!(!pair.app_saw_exchange_headers(), "stripped before the app");
}

impl Pair {
    /// Sends `request` as written straight to the server sidecar's inbound port, over
    /// mTLS with the client's certificate or in plaintext, and gives the response.
    async fn raw(&self, mtls: bool, request: &str) -> String {
        let tcp = TcpStream::connect(self.server.inbound.unwrap())
            .await
            .unwrap();
        let mut resp = Vec::new();
        if mtls {
            let config = self.client.state.mtls().unwrap().client_for(None);
            let (mut tls, _) =
                mesh_proxy::tls::connect(tcp, config, "server.default.svc.cluster.local")
                    .await
                    .unwrap();
            tls.write_all(request.as_bytes()).await.unwrap();
            // The proxy closes without a TLS close_notify: read what came until then.
            let _ = tls.read_to_end(&mut resp).await;
        } else {
            let mut tcp = tcp;
            tcp.write_all(request.as_bytes()).await.unwrap();
            let _ = tcp.read_to_end(&mut resp).await;
        }
        String::from_utf8_lossy(&resp).into_owned()
    }
}

/// A request with the exchange's headers in `case` (any letter case, each sent twice:
/// the first of each is the one read). `chunked` sends the body chunked, which the
/// listener's fast lane leaves to hyper.
fn with_metadata(id: &str, metadata: &str, chunked: bool, upper: bool) -> String {
    let (id_name, md_name) = if upper {
        ("X-Envoy-Peer-Metadata-Id", "X-ENVOY-PEER-METADATA")
    } else {
        ("x-envoy-peer-metadata-id", "x-envoy-peer-metadata")
    };
    let body = if chunked {
        "transfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
    } else {
        "content-length: 2\r\n\r\nhi"
    };
    format!(
        "POST / HTTP/1.1\r\nhost: server\r\n{id_name}: {id}\r\n{md_name}: {metadata}\r\n\
         {id_name}: second\r\n{md_name}: second\r\nconnection: close\r\n{body}"
    )
}

#[tokio::test]
async fn requests_hyper_reads_have_the_headers_taken_out_and_believed_over_mtls_only() {
    let pair = pair().await;
    let id = "sidecar~127.0.0.1~client-v1.default~default.svc.cluster.local";
    let vouched = claim("client-v1", "default", "client");
    let named = [
        r#"source_workload="client-v1""#,
        &format!(r#"source_principal="{CLIENT_ID}""#),
        r#"source_app="forged""#, // the claim's labels: what the metadata said
        r#"connection_security_policy="mutual_tls""#,
    ];
    let before = pair.destination_requests(&named).await;
    // Over mTLS, chunked (hyper's path), then with the same bytes sized (the fast lane):
    // both name the caller the certificate vouches for.
    for chunked in [true, false] {
        let resp = pair
            .raw(true, &with_metadata(id, &vouched, chunked, false))
            .await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    assert_eq!(pair.destination_requests(&named).await, before + 2);
    // In plaintext the same claim, on either path, names nobody.
    let plain_named = [
        r#"source_workload="client-v1""#,
        r#"connection_security_policy="none""#,
    ];
    for chunked in [true, false] {
        let resp = pair
            .raw(false, &with_metadata(id, &vouched, chunked, true))
            .await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    }
    assert_eq!(pair.destination_requests(&plain_named).await, 0);
    let unknown = [
        r#"source_workload="unknown""#,
        r#"source_principal="unknown""#,
        r#"connection_security_policy="none""#,
    ];
    assert_eq!(pair.destination_requests(&unknown).await, 2);
    // Whatever the path, the letter case or the number of copies, the app saw none.
    assert_eq!(
        pair.seen.lock().unwrap().len(),
        4,
        "every request reached the app"
    );
    assert!(!pair.app_saw_exchange_headers(), "stripped before the app");
}

#[tokio::test]
async fn the_outbound_listener_forwards_an_apps_headers_to_hosts_outside_the_mesh() {
    // Only the inbound listener takes the pair out: on the outbound one the client's
    // sidecar replaces the app's pair for a mesh peer (the first test), and passes it
    // through as sent to a host nobody declared (passthrough).
    let pair = pair().await;
    let seen = Seen::default();
    let plain_host = app(seen.clone()).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .proxy(reqwest::Proxy::http(format!("http://{}", pair.client.outbound.unwrap())).unwrap())
        .build()
        .unwrap();
    let resp = http
        .get(format!("http://{plain_host}/"))
        .header("x-envoy-peer-metadata-id", "app-chosen")
        .header("x-envoy-peer-metadata", "app-chosen")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let names = seen.lock().unwrap().concat();
    assert!(
        names.iter().any(|n| n == "x-envoy-peer-metadata-id")
            && names.iter().any(|n| n == "x-envoy-peer-metadata"),
        "{names:?}"
    );
}
