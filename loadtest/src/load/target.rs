//! The target: one HTTP authority (host:port) that every connection of a run talks to.

use std::net::SocketAddr;

use http::Uri;

/// Why a target URL was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum TargetError {
    #[error("invalid target URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("cannot resolve target host {host:?}: {reason}")]
    Resolve { host: String, reason: String },
}

/// A parsed, resolved target.
#[derive(Debug, Clone)]
pub struct Target {
    /// `host:port` as written, used for the Host header and h2 `:authority`.
    pub authority: String,
    /// Path of the URL (no trailing slash), prefixed to mix paths; `""` for the root.
    pub base_path: String,
    /// Path and query of the URL as given, for single-URL runs.
    pub path_and_query: String,
    /// Addresses to connect to (the first that answers wins).
    pub addrs: Vec<SocketAddr>,
}

/// Splits `http://host:port/path?q` into its parts; only plain `http` is accepted.
pub fn parse_url(url: &str) -> Result<(String, String, u16, String), TargetError> {
    let bad = |reason: &str| TargetError::Url {
        url: url.to_string(),
        reason: reason.to_string(),
    };
    let uri: Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| bad(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(bad(
                "https is not supported; loadgen speaks plain HTTP/1.1 and h2c",
            ));
        }
        Some(other) => return Err(bad(&format!("unsupported scheme {other:?} (use http://)"))),
        None => return Err(bad("missing scheme (write it as http://host:port/path)")),
    }
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| bad("missing host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri.authority().map_or(host, |a| a.as_str()).to_string();
    if authority.contains('@') {
        return Err(bad("user info in the URL is not supported"));
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    Ok((
        authority,
        host.trim_matches(['[', ']']).to_string(),
        port,
        path,
    ))
}

impl Target {
    /// Parses and resolves `url`. Resolution happens once, before the run starts.
    pub async fn resolve(url: &str) -> Result<Self, TargetError> {
        let (authority, host, port, path_and_query) = parse_url(url)?;
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| TargetError::Resolve {
                host: host.clone(),
                reason: e.to_string(),
            })?
            .collect();
        if addrs.is_empty() {
            return Err(TargetError::Resolve {
                host,
                reason: "no addresses".into(),
            });
        }
        let base_path = path_and_query
            .split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        Ok(Target {
            authority,
            base_path,
            path_and_query,
            addrs,
        })
    }

    /// A target for an already-known socket address (tests, embedding).
    pub fn from_addr(addr: SocketAddr, path_and_query: &str) -> Self {
        Target {
            authority: addr.to_string(),
            base_path: path_and_query
                .split('?')
                .next()
                .unwrap_or("")
                .trim_end_matches('/')
                .into(),
            path_and_query: path_and_query.to_string(),
            addrs: vec![addr],
        }
    }

    /// Base URL for reports.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path_and_query)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_http_urls() {
        let (authority, host, port, path) =
            parse_url("http://127.0.0.1:9080/productpage?u=1").unwrap();
        assert_eq!(authority, "127.0.0.1:9080");
        assert_eq!(host, "127.0.0.1");
        assert_eq!(port, 9080);
        assert_eq!(path, "/productpage?u=1");
        let (_, host, port, path) = parse_url("http://[::1]").unwrap();
        assert_eq!((host.as_str(), port, path.as_str()), ("::1", 80, "/"));
    }

    #[test]
    fn refuses_bad_urls_with_a_reason() {
        for (url, needle) in [
            ("https://example.com/", "https is not supported"),
            ("ftp://example.com/", "unsupported scheme"),
            ("localhost:9080/productpage", "invalid target URL"),
            ("/productpage", "missing scheme"),
            ("http://", "invalid target URL"),
            ("not a url", "invalid target URL"),
        ] {
            let err = parse_url(url).unwrap_err().to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }

    #[tokio::test]
    async fn resolves_ip_literals_and_base_path() {
        let t = Target::resolve("http://127.0.0.1:1234/app/").await.unwrap();
        assert_eq!(t.addrs, vec!["127.0.0.1:1234".parse().unwrap()]);
        assert_eq!(t.base_path, "/app");
        assert_eq!(t.url(), "http://127.0.0.1:1234/app/");
    }
}
