//! One request to the control plane: build the URL, send JSON or YAML, decode the JSON
//! answer or turn an error answer into a [`ClientError`].
//!
//! Plain HTTP/1.1 with keep-alive on hyper's pooled client: the control plane serves
//! plain HTTP, and the proxy already carries hyper, so the client adds next to nothing to
//! a sidecar's binary.

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ClientError;

/// Default limit for one call, connection included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// A control plane that does not accept a connection within this is treated as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of one control plane.
#[derive(Debug, Clone)]
pub struct ControlClient {
    /// `http://host:port` plus an optional path prefix, without a trailing slash.
    base: String,
    http: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
    hint: &'static str,
}

/// A request body and its content type.
pub(crate) struct Body {
    bytes: Bytes,
    content_type: &'static str,
}

impl Body {
    /// `value` as JSON.
    pub(crate) fn json(value: &impl Serialize) -> Result<Self, ClientError> {
        let bytes = serde_json::to_vec(value).map_err(|e| ClientError::BadAnswer {
            url: String::new(),
            reason: format!("request not encodable as JSON: {e}"),
        })?;
        Ok(Self {
            bytes: bytes.into(),
            content_type: "application/json",
        })
    }

    /// Istio resources as YAML text.
    pub(crate) fn yaml(text: String) -> Self {
        Self {
            bytes: text.into(),
            content_type: "application/yaml",
        }
    }
}

impl ControlClient {
    /// A client for the control plane at `base`, e.g. `http://127.0.0.1:15010` (a path
    /// prefix is kept: `http://gateway/mesh` calls `http://gateway/mesh/api/v1/...`).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let bad = || ClientError::BadUrl {
            url: base.to_owned(),
        };
        let trimmed = base.trim().trim_end_matches('/');
        let uri: Uri = trimmed.parse().map_err(|_| bad())?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() || uri.query().is_some() {
            return Err(bad());
        }
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let http = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Self {
            base: trimmed.to_owned(),
            http,
            timeout: DEFAULT_TIMEOUT,
            hint: "",
        })
    }

    /// The same client with another limit per call (default 15 s). Long polls add their
    /// wait to it.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The same client, telling the user `hint` when the control plane cannot be reached
    /// (e.g. "; is `meshctl up` running?").
    pub fn with_hint(mut self, hint: &'static str) -> Self {
        self.hint = hint;
        self
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `path` (no leading slash) with the query pairs form-encoded.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/{path}", self.base);
        if !query.is_empty() {
            let mut pairs = form_urlencoded::Serializer::new(String::new());
            pairs.extend_pairs(query);
            url.push('?');
            url.push_str(&pairs.finish());
        }
        url
    }

    /// Sends one request and decodes the JSON answer as `T`; `extra` is added to the
    /// per-call limit (a long poll's wait).
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        body: Option<Body>,
        extra: Duration,
    ) -> Result<T, ClientError> {
        let timeout = self.timeout + extra;
        let unreachable = |reason: String| ClientError::Unreachable {
            url: self.base.clone(),
            reason,
            hint: self.hint,
        };
        let mut request = Request::builder().method(method).uri(&url);
        let body = match body {
            Some(Body {
                bytes,
                content_type,
            }) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                Full::new(bytes)
            }
            None => Full::new(Bytes::new()),
        };
        let request = request
            .body(body)
            .map_err(|_| ClientError::BadUrl { url: url.clone() })?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| unreachable(innermost(&e)))?;
            let status = response.status();
            let bytes = response
                .into_body()
                .collect()
                .await
                .map_err(|e| unreachable(innermost(&e)))?
                .to_bytes();
            Ok((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| unreachable("timed out".to_owned()))??;
        if !status.is_success() {
            return Err(ClientError::from_answer(status, &bytes, &url));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer {
            url,
            reason: format!("status {status} with a body that is not the expected JSON: {e}"),
        })
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"), which
/// says more than the outer "client error (Connect)".
fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = error;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_and_encode() {
        let c = ControlClient::new("http://127.0.0.1:15010").unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:15010");
        assert_eq!(
            c.url("api/v1/apply", &[("file", "my file&x.yaml")]),
            "http://127.0.0.1:15010/api/v1/apply?file=my+file%26x.yaml"
        );
        let c = ControlClient::new("http://10.0.0.1:9/prefix/").unwrap();
        assert_eq!(
            c.url("api/v1/faults", &[]),
            "http://10.0.0.1:9/prefix/api/v1/faults"
        );
    }

    #[test]
    fn bad_urls_are_refused_by_name() {
        for bad in [
            "127.0.0.1:15010",
            "ftp://x",
            "not a url",
            "https://h:1",
            "http://h/?a=b",
        ] {
            let e = ControlClient::new(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
            assert!(e.contains(crate::DEFAULT_URL), "{e}");
        }
    }

    #[tokio::test]
    async fn unreachable_names_the_url_and_the_hint() {
        // Bind then drop: the port is (almost certainly) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = ControlClient::new(&format!("http://127.0.0.1:{port}"))
            .unwrap()
            .with_hint("; is it running?");
        let e = c.faults().await.unwrap_err();
        assert!(matches!(e, ClientError::Unreachable { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(&format!("http://127.0.0.1:{port}")), "{text}");
        assert!(text.ends_with("; is it running?"), "{text}");
        assert!(!text.contains('\n'));
    }
}
