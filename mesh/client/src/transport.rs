//! One request to the control plane: build the URL, send JSON or YAML, decode the JSON
//! answer or turn an error answer into a [`ClientError`].
//!
//! What carries the bytes is a [`Transport`]: by default [`HyperTransport`], plain
//! HTTP/1.1 with keep-alive on hyper's pooled client (the control plane serves plain
//! HTTP). The proxy passes the pooled client it already has instead: a second hyper client
//! type would be compiled into every sidecar (its HTTP/1 and HTTP/2 machinery is generic
//! over the connector and body), and a sidecar's code pages are most of its memory.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{ClientError, Credential};

/// Default limit for one call, connection included.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// A control plane that does not accept a connection within this is treated as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A transport failure (refused, reset, ...), as the transport reports it.
pub type TransportError = Box<dyn std::error::Error + Send + Sync>;

/// What carries one request to the control plane and brings back the whole answer.
pub trait Transport: Clone + Send + Sync + 'static {
    /// Sends `request`; the status and the complete body of the answer.
    fn send(
        &self,
        request: Request<Bytes>,
    ) -> impl Future<Output = Result<(StatusCode, Bytes), TransportError>> + Send;
}

/// The default transport: hyper's pooled HTTP/1.1 client with keep-alive.
#[derive(Debug, Clone)]
pub struct HyperTransport(Client<HttpConnector, Full<Bytes>>);

impl Default for HyperTransport {
    fn default() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        Self(
            Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(60))
                .build(connector),
        )
    }
}

impl Transport for HyperTransport {
    async fn send(&self, request: Request<Bytes>) -> Result<(StatusCode, Bytes), TransportError> {
        let response = self.0.request(request.map(Full::new)).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// A client of one control plane.
#[derive(Debug, Clone)]
pub struct ControlClient<X = HyperTransport> {
    /// `http://host:port` plus an optional path prefix, without a trailing slash.
    base: String,
    transport: X,
    timeout: Duration,
    hint: &'static str,
    credential: Option<Credential>,
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
        Self::with_transport(base, HyperTransport::default())
    }
}

impl<X: Transport> ControlClient<X> {
    /// A client for the control plane at `base` whose requests `transport` carries.
    pub fn with_transport(base: &str, transport: X) -> Result<Self, ClientError> {
        Ok(Self {
            base: base_url(base)?,
            transport,
            timeout: DEFAULT_TIMEOUT,
            hint: "",
            credential: None,
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

    /// The same client, sending `credential` as `Authorization: Bearer` with every call.
    pub fn with_credential(mut self, credential: Option<Credential>) -> Self {
        self.credential = credential;
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

    /// Sends one request and decodes the JSON answer as `A`; `extra` is added to the
    /// per-call limit (a long poll's wait).
    pub(crate) async fn call<A: DeserializeOwned>(
        &self,
        method: Method,
        url: String,
        body: Option<Body>,
        extra: Duration,
    ) -> Result<A, ClientError> {
        let timeout = self.timeout + extra;
        let unreachable = |reason: String| ClientError::Unreachable {
            url: self.base.clone(),
            reason,
            hint: self.hint,
        };
        let mut request = Request::builder().method(method).uri(&url);
        if let Some(credential) = &self.credential {
            let token = credential.current().await?;
            let value = http::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| {
                ClientError::Credential {
                    from: format!("{credential:?}"),
                    reason: "it holds characters an HTTP header cannot carry".to_owned(),
                }
            })?;
            request = request.header(header::AUTHORIZATION, value);
        }
        let body = match body {
            Some(Body {
                bytes,
                content_type,
            }) => {
                request = request.header(header::CONTENT_TYPE, content_type);
                bytes
            }
            None => Bytes::new(),
        };
        let request = request
            .body(body)
            .map_err(|_| ClientError::BadUrl { url: url.clone() })?;
        let (status, bytes) = tokio::time::timeout(timeout, self.transport.send(request))
            .await
            .map_err(|_| unreachable("timed out".to_owned()))?
            .map_err(|e| unreachable(innermost(e.as_ref())))?;
        if !status.is_success() {
            return Err(ClientError::from_answer(status, &bytes, &url));
        }
        serde_json::from_slice(&bytes).map_err(|e| ClientError::BadAnswer {
            url,
            reason: format!("status {status} with a body that is not the expected JSON: {e}"),
        })
    }
}

/// `base` as the client uses it: an `http://host:port[/prefix]` URL without a trailing
/// slash, or why it is not one. For checking a URL from the environment at start, before
/// any client exists.
pub fn base_url(base: &str) -> Result<String, ClientError> {
    let bad = || ClientError::BadUrl {
        url: base.to_owned(),
    };
    let trimmed = base.trim().trim_end_matches('/');
    let uri: Uri = trimmed.parse().map_err(|_| bad())?;
    if uri.scheme_str() != Some("http") || uri.authority().is_none() || uri.query().is_some() {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
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

    #[tokio::test]
    async fn the_credential_rides_every_call_as_a_bearer_token() {
        use axum::http::HeaderMap;
        let app = axum::Router::new().route(
            "/api/v1/faults",
            axum::routing::get(|headers: HeaderMap| async move {
                match headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    Some("Bearer abc") => (StatusCode::OK, "[]"),
                    _ => (StatusCode::UNAUTHORIZED, r#"{"error": "no credential"}"#),
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let plain = ControlClient::new(&url).unwrap();
        let refused = plain.faults().await.unwrap_err();
        assert!(refused.is_refused(), "{refused}");
        assert_eq!(refused.to_string(), "no credential");
        let with = plain.with_credential(Some(Credential::token(" abc\n")));
        assert!(with.faults().await.unwrap().is_empty());
        let bad = with.with_credential(Some(Credential::token("a\u{1}b")));
        let err = bad.faults().await.unwrap_err();
        assert!(matches!(err, ClientError::Credential { .. }), "{err}");
        assert!(!err.to_string().contains("a\u{1}b"), "{err}");
    }
}
