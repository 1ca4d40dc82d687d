//! The inbound side of mTLS: tell TLS from plaintext, apply the PeerAuthentication mode,
//! and hand the listener one stream type either way. Also the outbound [`connect`].
//!
//! PERMISSIVE works like Istio's TLS inspector: the first bytes of a connection decide.
//! A TLS handshake record starts with content type 0x16 and major version 0x03; no
//! plaintext HTTP request can start with 0x16 (a control character), so peeking one or
//! two bytes, without consuming them, is enough.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::{TlsAcceptor, TlsConnector, client, server};

use super::{TlsError, peer_spiffe_id_of};

/// TLS record type of a handshake message.
const TLS_HANDSHAKE: u8 = 0x16;
/// Major version byte of every TLS (and SSL 3.0) record.
const TLS_MAJOR: u8 = 0x03;

/// What the first bytes of a connection look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// A TLS ClientHello is arriving.
    Tls,
    /// Anything else (HTTP/1.x, h2c, raw TCP).
    Plaintext,
}

/// The mTLS mode of an inbound port (PeerAuthentication, after inheritance).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MtlsMode {
    /// Only mTLS with a verified client certificate; plaintext is closed.
    Strict,
    /// mTLS and plaintext (the default).
    Permissive,
    /// Plaintext only: bytes are passed on without looking at them.
    Disable,
}

impl MtlsMode {
    /// Istio's spelling (`STRICT`, ...), for logs and config dumps.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Strict => "STRICT",
            Self::Permissive => "PERMISSIVE",
            Self::Disable => "DISABLE",
        }
    }
}

/// Peeks at the first bytes without consuming them. Waits as long as the client sends
/// nothing: wrap it in `tokio::time::timeout` for a detection timeout. A client that
/// closes before sending a byte gives `UnexpectedEof`.
pub async fn sniff(stream: &TcpStream) -> io::Result<Sniffed> {
    let mut first = [0u8; 2];
    let n = stream.peek(&mut first).await?;
    Ok(match &first[..n] {
        [] => {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed before the first byte",
            ));
        }
        // Only the first byte has arrived: 0x16 alone already rules out plaintext HTTP, and
        // peeking again would spin until the next segment.
        [TLS_HANDSHAKE] | [TLS_HANDSHAKE, TLS_MAJOR] => Sniffed::Tls,
        _ => Sniffed::Plaintext,
    })
}

/// An accepted inbound connection.
#[derive(Debug)]
pub struct Accepted {
    /// The bytes of the application protocol (decrypted if TLS).
    pub stream: MeshStream,
    /// The client's SPIFFE ID (with `spiffe://`), when it presented a verified certificate.
    pub peer: Option<String>,
    /// The negotiated ALPN, e.g. `istio-http/1.1` from another sidecar.
    pub alpn: Option<Vec<u8>>,
}

impl Accepted {
    /// True when the connection is TLS (mTLS if `peer` is set).
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, MeshStream::Tls(_))
    }
}

/// Applies `mode` to a fresh inbound connection: STRICT demands a completed mTLS handshake
/// with a client certificate (plaintext is closed), PERMISSIVE serves TLS or plaintext by
/// sniffing, DISABLE passes everything through as plaintext. A failed handshake drops
/// (closes) the connection and returns the reason. Neither sniffing nor the handshake has
/// a deadline of its own: wrap the call in `tokio::time::timeout` so silent or slow clients
/// cannot hold a task forever.
pub async fn accept(
    stream: TcpStream,
    mode: MtlsMode,
    acceptor: &TlsAcceptor,
) -> Result<Accepted, TlsError> {
    let sniffed = match mode {
        MtlsMode::Disable => Sniffed::Plaintext,
        MtlsMode::Strict | MtlsMode::Permissive => sniff(&stream).await?,
    };
    match (sniffed, mode) {
        (Sniffed::Plaintext, MtlsMode::Strict) => Err(TlsError::PlaintextRejected),
        (Sniffed::Plaintext, _) => Ok(Accepted {
            stream: MeshStream::Plain(stream),
            peer: None,
            alpn: None,
        }),
        (Sniffed::Tls, _) => {
            let tls = acceptor
                .accept(stream)
                .await
                .map_err(TlsError::from_handshake)?;
            let (_, connection) = tls.get_ref();
            let peer = peer_spiffe_id_of(connection);
            let alpn = connection.alpn_protocol().map(<[u8]>::to_vec);
            // A server config with optional client auth lets certificate-less TLS through;
            // STRICT still means mutual.
            if mode == MtlsMode::Strict && peer.is_none() {
                return Err(TlsError::NoPeerCertificate);
            }
            Ok(Accepted {
                stream: MeshStream::Tls(Box::new(tls)),
                peer,
                alpn,
            })
        }
    }
}

/// Opens mTLS over an established connection to another sidecar. `config` comes from
/// [`super::client_config`] (which pins the expected SPIFFE ID); `server_name` is only
/// sent as SNI (use the destination host; an IP literal sends no SNI). Returns the
/// stream and the server's SPIFFE ID.
pub async fn connect<S>(
    stream: S,
    config: Arc<ClientConfig>,
    server_name: &str,
) -> Result<(client::TlsStream<S>, Option<String>), TlsError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let name = ServerName::try_from(server_name.to_owned())
        .map_err(|e| TlsError::ServerName(e.to_string()))?;
    let tls = TlsConnector::from(config)
        .connect(name, stream)
        .await
        .map_err(TlsError::from_handshake)?;
    let peer = peer_spiffe_id_of(tls.get_ref().1);
    Ok((tls, peer))
}

/// An inbound stream, plaintext or TLS, readable and writable the same way.
/// Used for both directions: the default `T` is the inbound (server) TLS stream, and
/// the outbound connector uses the client TLS stream.
#[derive(Debug)]
pub enum MeshStream<T = server::TlsStream<TcpStream>> {
    /// Plaintext (PERMISSIVE or DISABLE).
    Plain(TcpStream),
    /// TLS (terminated inbound, originated outbound).
    Tls(Box<T>),
}

impl MeshStream {
    /// The underlying socket (addresses, TCP_NODELAY).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for MeshStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for MeshStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(s) => s.is_write_vectored(),
            Self::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Self::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
