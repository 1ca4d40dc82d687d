//! The control plane's HTTP API as meshctl uses it (see docs/control-plane-api.md):
//! JSON in and out, errors as `{"error", "errors"}` turned into one-line messages.

use std::time::Duration;

use bookinfo_common::client::{self, ClientOptions, Proxy};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;

/// The default control plane address.
pub const DEFAULT_URL: &str = "http://127.0.0.1:15010";

/// Why a control plane call failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The URL given with `--control` / `MESHCTL_CONTROL` is not a URL.
    #[error("invalid control plane URL {url:?}: expected something like {DEFAULT_URL}")]
    BadUrl {
        /// What was given.
        url: String,
    },
    /// Nothing answered.
    #[error(
        "cannot reach the control plane at {url} ({reason}); is `meshctl up` running? (or pass --control / set MESHCTL_CONTROL)"
    )]
    Unreachable {
        /// The base URL.
        url: String,
        /// The transport error, short.
        reason: String,
    },
    /// The control plane answered with an error.
    #[error("{message}{}", details(.errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// The `error` field (or the status when absent).
        message: String,
        /// The `errors` field: precise validation errors, one per line.
        errors: Vec<String>,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from the control plane at {url}: {reason}")]
    BadAnswer {
        /// The request URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

fn details(errors: &[String]) -> String {
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}

/// A client for one control plane.
#[derive(Debug, Clone)]
pub struct Control {
    base: Url,
    http: reqwest::Client,
}

impl Control {
    /// A client for the control plane at `base` (e.g. `http://127.0.0.1:15010`).
    pub fn new(base: &str) -> Result<Self, ControlError> {
        let bad = || ControlError::BadUrl {
            url: base.to_owned(),
        };
        let mut url = Url::parse(base).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
            return Err(bad());
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        // The control plane is local: a machine-wide HTTP_PROXY must not capture these calls.
        let http = client::build(ClientOptions {
            keep_alive: true,
            proxy: Proxy::Direct,
        })
        .map_err(|e| ControlError::Unreachable {
            url: base.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Self { base: url, http })
    }

    /// The base URL, without the trailing slash.
    pub fn base(&self) -> String {
        self.base.as_str().trim_end_matches('/').to_owned()
    }

    /// The URL of `path` (no leading slash) with query pairs.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, ControlError> {
        let mut url = self.base.join(path).map_err(|_| ControlError::BadUrl {
            url: format!("{}{path}", self.base),
        })?;
        if !query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in query {
                pairs.append_pair(k, v);
            }
        }
        Ok(url)
    }

    /// `GET path` → JSON.
    pub async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, ControlError> {
        self.call(Method::GET, self.url(path, query)?, None).await
    }

    /// `POST path` with a YAML body → JSON.
    pub async fn post_yaml(
        &self,
        path: &str,
        query: &[(&str, &str)],
        yaml: String,
    ) -> Result<Value, ControlError> {
        self.call(
            Method::POST,
            self.url(path, query)?,
            Some((yaml, "application/yaml")),
        )
        .await
    }

    /// `POST path` with a JSON body → JSON.
    pub async fn post_json(&self, path: &str, json: &Value) -> Result<Value, ControlError> {
        let body = (json.to_string(), "application/json");
        self.call(Method::POST, self.url(path, &[])?, Some(body))
            .await
    }

    /// `DELETE path` → JSON.
    pub async fn delete(&self, path: &str) -> Result<Value, ControlError> {
        self.call(Method::DELETE, self.url(path, &[])?, None).await
    }

    /// Sends one request (with an optional body and its content type) and decodes the
    /// JSON answer, or turns the error answer into a [`ControlError`].
    async fn call(
        &self,
        method: Method,
        url: Url,
        body: Option<(String, &'static str)>,
    ) -> Result<Value, ControlError> {
        let mut req = self
            .http
            .request(method, url.clone())
            .timeout(Duration::from_secs(15));
        if let Some((text, content_type)) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(text);
        }
        let resp = req.send().await.map_err(|e| ControlError::Unreachable {
            url: self.base(),
            reason: short_reason(&e),
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| ControlError::Unreachable {
            url: self.base(),
            reason: short_reason(&e),
        })?;
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return json.ok_or_else(|| ControlError::BadAnswer {
                url: url.to_string(),
                reason: format!("status {status} with a body that is not JSON"),
            });
        }
        Err(api_error(status, json.as_ref(), &text, &url))
    }
}

fn api_error(status: StatusCode, json: Option<&Value>, text: &str, url: &Url) -> ControlError {
    let message = json
        .and_then(|j| j.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            let body = text.trim();
            if body.is_empty() || body.len() > 200 {
                format!("{status} from {url}")
            } else {
                format!("{status} from {url}: {body}")
            }
        });
    let errors = json
        .and_then(|j| j.get("errors"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|e| e.as_str().map_or_else(|| e.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ControlError::Api {
        status: status.as_u16(),
        message,
        errors,
    }
}

/// The innermost cause of a transport error ("Connection refused (os error 111)"),
/// which says more than reqwest's "error sending request for url".
fn short_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".to_owned();
    }
    let mut source: &dyn std::error::Error = e;
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
        let c = Control::new("http://127.0.0.1:15010").unwrap();
        assert_eq!(c.base(), "http://127.0.0.1:15010");
        let u = c
            .url("api/v1/apply", &[("file", "my file&x.yaml")])
            .unwrap();
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:15010/api/v1/apply?file=my+file%26x.yaml"
        );
        let c = Control::new("http://10.0.0.1:9/prefix").unwrap();
        assert_eq!(
            c.url("api/v1/faults", &[]).unwrap().as_str(),
            "http://10.0.0.1:9/prefix/api/v1/faults"
        );
    }

    #[test]
    fn bad_urls_are_refused() {
        for bad in ["127.0.0.1:15010", "ftp://x", "not a url"] {
            let e = Control::new(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[tokio::test]
    async fn unreachable_names_the_url_and_meshctl_up() {
        // Bind then drop: the port is (almost certainly) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Control::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let e = c.get("api/v1/faults", &[]).await.unwrap_err().to_string();
        assert!(e.contains(&format!("http://127.0.0.1:{port}")), "{e}");
        assert!(e.contains("meshctl up"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn api_errors_keep_the_precise_lines() {
        let json = serde_json::json!({"error": "invalid configuration", "errors": ["a.yaml: document 1: VirtualService default/x: spec.http[0]: bad"]});
        let url = Url::parse("http://h/api").unwrap();
        let e = api_error(StatusCode::BAD_REQUEST, Some(&json), "", &url);
        assert_eq!(
            e.to_string(),
            "invalid configuration: a.yaml: document 1: VirtualService default/x: spec.http[0]: bad"
        );
        let e = api_error(StatusCode::NOT_FOUND, None, "nope", &url);
        assert_eq!(e.to_string(), "404 Not Found from http://h/api: nope");
    }
}
