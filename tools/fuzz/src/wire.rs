//! One exchange on a fresh connection: send the bytes, close our sending side, read
//! until the server closes. Blocking std sockets: the fuzzer drives one input at a time.

use std::io::{ErrorKind, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// What came back.
#[derive(Debug)]
pub struct Answer {
    /// Every byte the server sent before closing.
    pub bytes: Vec<u8>,
}

impl Answer {
    /// The status code of the first response, if it is HTTP/1.x.
    pub fn status(&self) -> Option<u16> {
        let line = self.bytes.split(|b| *b == b'\n').next()?;
        let line = std::str::from_utf8(line).ok()?;
        let mut words = line.split_whitespace();
        if !words.next()?.starts_with("HTTP/1.") {
            return None;
        }
        words.next()?.parse().ok()
    }
}

/// How the request ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Our sending side is closed after the request: the only way to end a request whose
    /// bytes are garbage. Servers may then close without answering (hyper does unless
    /// told to support half-closed connections), which is a fine outcome.
    HalfClose,
    /// The connection stays open both ways; the request says `Connection: close`.
    Open,
}

/// Sends `request`, ends it as `end` says, and reads the answer. `limit` bounds the whole
/// exchange: a server that neither answers nor closes by then is a hang.
pub fn exchange(
    addr: SocketAddr,
    request: &[u8],
    end: End,
    limit: Duration,
) -> Result<Answer, String> {
    let deadline = Instant::now() + limit;
    let mut stream = TcpStream::connect_timeout(&addr, limit)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let left = |deadline: Instant| {
        deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer and no close within {} ms", limit.as_millis()))
    };
    stream
        .set_write_timeout(Some(left(deadline)?))
        .map_err(|e| e.to_string())?;
    // A server may answer and close before it read everything (a 431 for a huge head):
    // a refused write is fine, what it answered is read below.
    let _ = stream.write_all(request);
    if end == End::HalfClose {
        let _ = stream.shutdown(Shutdown::Write);
    }
    let mut bytes = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        stream
            .set_read_timeout(Some(left(deadline)?))
            .map_err(|e| e.to_string())?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(Answer { bytes }),
            Ok(n) => bytes.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "no close within {} ms ({} bytes answered)",
                    limit.as_millis(),
                    bytes.len()
                ));
            }
            // Reset by the server: it refused the input, which is an answer.
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return Ok(Answer { bytes });
            }
            Err(e) => return Err(format!("reading the answer: {e}")),
        }
    }
}

/// A well-formed HTTP/1.1 request with `body`, closing after the response.
pub fn request(method: &str, target: &str, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: fuzz\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}
