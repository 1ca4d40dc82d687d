//! How a cluster connects to its endpoints: plain TCP, or mesh mTLS (our certificate,
//! the server's verified against the mesh root) when the endpoints have sidecars (auto
//! mTLS) or the DestinationRule says `ISTIO_MUTUAL`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::Uri;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use tokio::net::TcpStream;
use tower::Service;

use crate::http::body::BoxError;
use crate::tls::{self, MeshStream};

/// Connects to endpoints, with mTLS when configured.
#[derive(Debug, Clone)]
pub struct MeshConnector {
    http: HttpConnector,
    tls: Option<Arc<ClientConfig>>,
    /// TLS server name (SNI) when it is not the address connected to: originated TLS
    /// to a server outside the mesh is checked against its DNS name.
    server_name: Option<String>,
}

impl MeshConnector {
    /// A connector; `tls` set means every connection is mesh mTLS.
    pub fn new(http: HttpConnector, tls: Option<Arc<ClientConfig>>) -> Self {
        Self {
            http,
            tls,
            server_name: None,
        }
    }

    /// The same connector presenting `name` as the TLS server name.
    pub fn with_server_name(mut self, name: Option<String>) -> Self {
        self.server_name = name;
        self
    }

    /// Whether connections are mTLS.
    pub fn is_mtls(&self) -> bool {
        self.tls.is_some()
    }
}

/// An upstream connection: plain TCP or mesh mTLS.
pub type ClientIo = MeshStream<tokio_rustls::client::TlsStream<TcpStream>>;

/// An upstream connection as hyper sees it.
#[derive(Debug)]
pub struct MeshConn(TokioIo<ClientIo>);

impl Read for MeshConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_read(cx, buf)
    }
}

impl Write for MeshConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().0).poll_shutdown(cx)
    }
}

impl Connection for MeshConn {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl Service<Uri> for MeshConnector {
    type Response = MeshConn;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<MeshConn, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.http.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let host = uri
            .host()
            .unwrap_or("mesh.local")
            .trim_matches(['[', ']'])
            .to_owned();
        let connecting = self.http.call(uri);
        let this = self.clone();
        Box::pin(async move {
            let tcp = connecting.await?.into_inner();
            Ok(MeshConn(TokioIo::new(this.secure(tcp, &host).await?)))
        })
    }
}

impl MeshConnector {
    /// Secures a connected socket as the cluster says: as is, mesh mTLS, or originated
    /// TLS. `host` is the TLS server name unless the connector names one; mesh mTLS
    /// verifies the server by its SPIFFE identity, not by this name.
    pub async fn secure(&self, tcp: TcpStream, host: &str) -> Result<ClientIo, BoxError> {
        match &self.tls {
            None => Ok(ClientIo::Plain(tcp)),
            Some(config) => {
                let name = self.server_name.as_deref().unwrap_or(host);
                let (stream, _peer) = tls::connect(tcp, config.clone(), name).await?;
                Ok(ClientIo::Tls(Box::new(stream)))
            }
        }
    }
}
