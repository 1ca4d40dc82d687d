//! Reading one proxy's metrics: a plain HTTP/1.0 GET of `/stats/prometheus` on its admin
//! listener, bounded in time and size (a proxy that hangs or floods cannot stall the
//! control plane or fill its memory).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest metrics page read (a Bookinfo proxy serves about 300 KB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;

/// Why a proxy's metrics could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ScrapeError {
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The connection failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer was not a 200 with a UTF-8 body.
    #[error("unexpected answer: {0}")]
    Answer(String),
    /// The page is larger than [`MAX_BODY`].
    #[error("metrics page larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// GETs `http://{admin}/stats/prometheus` within `timeout`; the body as text.
pub async fn fetch(admin: SocketAddr, timeout: Duration) -> Result<String, ScrapeError> {
    tokio::time::timeout(timeout, get(admin))
        .await
        .map_err(|_| ScrapeError::Timeout(timeout))?
}

async fn get(admin: SocketAddr) -> Result<String, ScrapeError> {
    let mut stream = TcpStream::connect(admin).await?;
    // HTTP/1.0: the proxy answers with a length or closes, never chunks.
    let request = format!(
        "GET /stats/prometheus HTTP/1.0\r\nHost: {admin}\r\nUser-Agent: mesh-control\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::with_capacity(64 * 1024);
    let mut limited = (&mut stream).take(MAX_BODY as u64 + 64 * 1024);
    limited.read_to_end(&mut raw).await?;
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| ScrapeError::Answer("no end of headers".to_owned()))?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let status = head.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) != Some("200") {
        return Err(ScrapeError::Answer(status.chars().take(80).collect()));
    }
    let body = &raw[head_end + 4..];
    if body.len() > MAX_BODY {
        return Err(ScrapeError::TooLarge);
    }
    String::from_utf8(body.to_vec())
        .map_err(|_| ScrapeError::Answer("body is not UTF-8".to_owned()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use tokio::net::TcpListener;

    use super::*;

    async fn serve_once(answer: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"GET /stats/prometheus HTTP/1.0\r\n"));
            conn.write_all(answer).await.unwrap();
        });
        addr
    }

    #[tokio::test]
    async fn reads_the_body_of_a_200() {
        let addr = serve_once(b"HTTP/1.0 200 OK\r\ncontent-length: 7\r\n\r\nup 1\nx").await;
        let body = fetch(addr, Duration::from_secs(5)).await.unwrap();
        assert_eq!(body, "up 1\nx");
    }

    #[tokio::test]
    async fn another_status_is_an_error_naming_it() {
        let addr = serve_once(b"HTTP/1.0 503 Service Unavailable\r\n\r\n").await;
        let err = fetch(addr, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.to_string().contains("503"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_proxy_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // Accepted by the kernel's backlog, never answered.
        let err = fetch(addr, Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, ScrapeError::Timeout(_)), "{err}");
        drop(listener);
    }
}
