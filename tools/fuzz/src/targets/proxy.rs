//! `proxy-http`: a real sidecar pair joined to a real control plane (the client sidecar
//! reaches the service `echo` over mTLS through the server sidecar, which fronts an echo
//! upstream), fed mutated
//! requests on both listeners: the client's outbound (forward-proxy and origin-form
//! requests, `CONNECT`) and the server's PERMISSIVE inbound (plaintext sniffed against a
//! real TLS ClientHello). Seeds cover the fast lane (keep-alive, `Content-Length`), its
//! hand-offs to hyper (chunked bodies, HTTP/1.0, `Expect`, `Upgrade`, the h2 preface),
//! pipelining and oversized heads.
//!
//! Promises: every connection is answered or closed within the limit after the request
//! ends; neither proxy panics or exits; both keep serving a good request; memory stays
//! flat.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;

use super::Env;
use crate::harness::{Target, rss_kb_of};
use crate::mutate::Mutator;
use crate::process::{Program, free_port};
use crate::wire::{End, exchange};

/// Requests both listeners understand, to mutate.
const HTTP_SEEDS: [&str; 10] = [
    "GET /echo HTTP/1.1\r\nHost: echo\r\nUser-Agent: fuzz\r\nAccept: */*\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: echo\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world",
    "POST /echo HTTP/1.1\r\nHost: echo\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    "GET /echo HTTP/1.1\r\nHost: echo\r\n\r\nGET /echo?a=1 HTTP/1.1\r\nHost: echo\r\nx-request-id: 1\r\n\r\nPOST /echo HTTP/1.1\r\nHost: echo\r\nContent-Length: 2\r\n\r\nok",
    "GET /echo HTTP/1.0\r\nHost: echo\r\nConnection: keep-alive\r\n\r\n",
    "POST /echo HTTP/1.1\r\nHost: echo\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
    "GET /echo HTTP/1.1\r\nHost: echo\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    "GET /echo HTTP/1.1\r\nHost: echo\r\nend-user: jason\r\ncookie: session=jason\r\nx-b3-traceid: 80f198ee56343ba864fe8b2a57d3eff7\r\nx-b3-spanid: e457b5a2e4d86bd1\r\nx-b3-sampled: 1\r\ntraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n\r\n",
    "CONNECT echo:80 HTTP/1.1\r\nHost: echo:80\r\n\r\nGET /echo HTTP/1.1\r\nHost: echo\r\n\r\n",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
];

/// The outbound listener also takes absolute-form requests (`HTTP_PROXY`).
const FORWARD_SEED: &str =
    "GET http://echo/echo HTTP/1.1\r\nHost: echo\r\nProxy-Connection: keep-alive\r\n\r\n";

/// The `proxy-http` target.
#[derive(Debug)]
pub struct ProxyHttp {
    // Dropped first: the proxies stop before the upstream does.
    client: Program,
    server: Program,
    control: Program,
    outbound: SocketAddr,
    inbound: SocketAddr,
    seeds: Vec<Vec<u8>>,
    mutator: Mutator,
    limit: Duration,
    _upstream: Upstream,
}

/// The echo upstream, on a runtime of its own.
#[derive(Debug)]
struct Upstream {
    _runtime: tokio::runtime::Runtime,
    addr: SocketAddr,
}

impl Upstream {
    fn start() -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .context("starting the upstream's runtime")?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|req: Request<Incoming>| async move {
                        let body = req.into_body().collect().await.map(|b| b.to_bytes());
                        Ok::<_, hyper::Error>(Response::new(Full::new(
                            body.unwrap_or_else(|_| Bytes::new()),
                        )))
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Ok(Self {
            _runtime: runtime,
            addr,
        })
    }
}

/// The first bytes a TLS client sends: a real ClientHello (with Istio's ALPN), for the
/// inbound listener's sniffing and handshake.
fn client_hello() -> anyhow::Result<Vec<u8>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    config.alpn_protocols = vec![b"istio-http/1.1".to_vec(), b"h2".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("echo.default.svc.cluster.local")?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name)?;
    let mut hello = Vec::new();
    conn.write_tls(&mut hello)?;
    Ok(hello)
}

impl ProxyHttp {
    /// Starts the upstream and the two sidecars.
    pub fn new(env: &Env) -> anyhow::Result<Self> {
        let upstream = Upstream::start()?;
        let port = |_| -> anyhow::Result<SocketAddr> { Ok(([127, 0, 0, 1], free_port()?).into()) };
        let (s_in, s_out, s_admin) = (port(())?, port(())?, port(())?);
        let (c_in, c_out, c_admin) = (port(())?, port(())?, port(())?);
        // A control plane, so the sidecars hold certificates: the server's PERMISSIVE
        // inbound then completes real TLS handshakes, and the pair talks mTLS.
        let control_addr = port(())?;
        let control = Program::start(
            "proxy-control",
            &env.bin_dir,
            "mesh-control",
            &[("MESH_CONTROL_LISTEN", control_addr.to_string())],
            &env.work,
            control_addr,
        )?;
        let sidecar =
            |workload: &str, inbound: SocketAddr, outbound: SocketAddr, admin: SocketAddr| {
                vec![
                    ("MESH_PROXY_CONTROL", format!("http://{control_addr}")),
                    ("MESH_PROXY_WORKLOAD", workload.to_owned()),
                    (
                        "MESH_PROXY_SERVICE",
                        workload.trim_end_matches("-v1").to_owned(),
                    ),
                    ("MESH_PROXY_SERVICE_ACCOUNT", workload.to_owned()),
                    (
                        "MESH_PROXY_LABELS",
                        format!("app={},version=v1", workload.trim_end_matches("-v1")),
                    ),
                    ("MESH_PROXY_INBOUND", inbound.to_string()),
                    ("MESH_PROXY_OUTBOUND", outbound.to_string()),
                    ("MESH_PROXY_ADMIN", admin.to_string()),
                    ("MESH_PROXY_APP", upstream.addr.to_string()),
                    ("MESH_PROXY_ACCESS_LOG", "false".to_owned()),
                ]
            };
        let start = |name: &str, workload: &str, ports: [SocketAddr; 3]| {
            let [inbound, outbound, admin] = ports;
            let env_vars = sidecar(workload, inbound, outbound, admin);
            Program::start(
                name,
                &env.bin_dir,
                "mesh-proxy",
                &env_vars,
                &env.work,
                admin,
            )
        };
        let server = start("proxy-server", "echo-v1", [s_in, s_out, s_admin])?;
        let client = start("proxy-client", "fuzz-v1", [c_in, c_out, c_admin])?;
        let mut seeds: Vec<Vec<u8>> = HTTP_SEEDS.iter().map(|s| s.as_bytes().to_vec()).collect();
        seeds.push(FORWARD_SEED.as_bytes().to_vec());
        seeds.push(client_hello()?);
        let mut target = Self {
            client,
            server,
            control,
            outbound: c_out,
            inbound: s_in,
            seeds,
            mutator: Mutator {
                dictionary: vec![
                    b"\r\n",
                    b": ",
                    b"\r\n\r\n",
                    b"Content-Length: ",
                    b"Transfer-Encoding: chunked\r\n",
                    b"0\r\n\r\n",
                    b"Connection: close\r\n",
                    b"Host: echo\r\n",
                    b"HTTP/1.1",
                    b"HTTP/1.0",
                    b"http://echo",
                    b"GET ",
                    b"POST ",
                    b"CONNECT ",
                    b"\x16\x03\x01",
                    b"ffffffff\r\n",
                ],
                max_len: 256 * 1024,
            },
            limit: Duration::from_secs(1),
            _upstream: upstream,
        };
        // The pair works before fuzzing starts: a finding must be the input's doing. The
        // client sidecar learns the server's endpoint from the control plane's push, which
        // can trail the processes' readiness on a busy machine (a 503 then): wait for it,
        // within a bound.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            match target.check() {
                Ok(()) => break,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => return Err(anyhow::anyhow!("the sidecar pair does not serve: {e}")),
            }
        }
        Ok(target)
    }

    fn good_request(&self, addr: SocketAddr) -> Result<(), String> {
        let request = b"GET /echo HTTP/1.1\r\nHost: echo\r\nConnection: close\r\n\r\n";
        let answer = exchange(addr, request, End::Open, Duration::from_secs(5))?;
        match answer.status() {
            Some(200) => Ok(()),
            other => Err(format!(
                "a good request to {addr} got {other:?}: {}",
                String::from_utf8_lossy(&answer.bytes)
                    .lines()
                    .next()
                    .unwrap_or("")
            )),
        }
    }
}

impl Target for ProxyHttp {
    fn name(&self) -> &'static str {
        "proxy-http"
    }

    fn input(&mut self, rng: &mut StdRng) -> Vec<u8> {
        let listener: u8 = rng.random_range(0..2);
        let seed = self.seeds.choose(rng).map_or(&[][..], Vec::as_slice);
        let mut input = vec![listener];
        input.extend(self.mutator.mutate(rng, seed, &self.seeds));
        input
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let Some((&listener, bytes)) = input.split_first() else {
            return Ok(());
        };
        let (addr, which) = if listener % 2 == 0 {
            (self.outbound, "the client sidecar's outbound listener")
        } else {
            (self.inbound, "the server sidecar's inbound listener")
        };
        exchange(addr, bytes, End::HalfClose, self.limit)
            .map(|_| ())
            .map_err(|e| format!("{which}: {e}"))
    }

    fn rss_kb(&self) -> u64 {
        rss_kb_of(&self.client.pid()) + rss_kb_of(&self.server.pid())
    }

    fn check(&mut self) -> Result<(), String> {
        self.client.alive().map_err(|e| e.to_string())?;
        self.server.alive().map_err(|e| e.to_string())?;
        self.control.alive().map_err(|e| e.to_string())?;
        self.good_request(self.outbound)?;
        self.good_request(self.inbound)
    }
}
