//! Readiness probes: poll until a process answers, within a deadline.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::plan::Probe;

/// How often probes retry. Short, because startup speed is a feature (under 3 s to the
/// first page) and a loopback probe costs next to nothing.
const INTERVAL: Duration = Duration::from_millis(50);

/// A probe HTTP client that never goes through a machine proxy.
pub(crate) fn client() -> Result<reqwest::Client, reqwest::Error> {
    bookinfo_common::client::install_crypto_provider();
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
}

/// Why a probe did not pass.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProbeFailed {
    /// Nothing listens on the port yet.
    #[error("nothing accepts connections on 127.0.0.1:{port} ({reason})")]
    NotListening {
        /// The probed port.
        port: u16,
        /// The connect error.
        reason: String,
    },
    /// Something answered, but not with a success.
    #[error("GET {url} answered {status}")]
    Status {
        /// The probed URL.
        url: String,
        /// Its status line (`503 Service Unavailable`).
        status: reqwest::StatusCode,
    },
    /// The request did not complete.
    #[error("GET {url} failed ({reason})")]
    Request {
        /// The probed URL.
        url: String,
        /// The innermost transport error.
        reason: String,
    },
}

/// Polls `probe` until it passes (Ok) or `deadline` (Err with the last failure).
pub(crate) async fn wait(
    http: &reqwest::Client,
    probe: &Probe,
    deadline: Instant,
) -> Result<(), ProbeFailed> {
    loop {
        let last = match check(http, probe).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        if Instant::now() + INTERVAL >= deadline {
            return Err(last);
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

/// One probe attempt.
pub(crate) async fn check(http: &reqwest::Client, probe: &Probe) -> Result<(), ProbeFailed> {
    match probe {
        Probe::Tcp(port) => TcpStream::connect(("127.0.0.1", *port))
            .await
            .map(drop)
            .map_err(|e| ProbeFailed::NotListening {
                port: *port,
                reason: e.to_string(),
            }),
        Probe::Http(url) => match http.get(url).send().await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(ProbeFailed::Status {
                url: url.clone(),
                status: r.status(),
            }),
            Err(e) => Err(ProbeFailed::Request {
                url: url.clone(),
                reason: innermost(&e),
            }),
        },
    }
}

fn innermost(e: &(dyn std::error::Error + 'static)) -> String {
    let mut source = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tcp_and_http_probes() {
        let http = client().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        check(&http, &Probe::Tcp(port)).await.unwrap();

        let app = axum::Router::new()
            .route("/ready", axum::routing::get(|| async { "ok" }))
            .route(
                "/busy",
                axum::routing::get(|| async {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "no")
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        check(
            &http,
            &Probe::Http(format!("http://127.0.0.1:{port}/ready")),
        )
        .await
        .unwrap();
        let e = check(&http, &Probe::Http(format!("http://127.0.0.1:{port}/busy")))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("503"), "{e}");
    }

    #[tokio::test]
    async fn gives_up_at_the_deadline_with_the_last_failure() {
        let http = client().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let deadline = Instant::now() + Duration::from_millis(200);
        let e = wait(&http, &Probe::Tcp(port), deadline).await.unwrap_err();
        assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
    }
}
