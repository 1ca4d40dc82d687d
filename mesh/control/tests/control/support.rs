//! A control plane on 127.0.0.1:0 and a small JSON client that checks every answer's
//! Content-Type.

use std::sync::Arc;

use mesh_control::auth::Auth;
use mesh_control::{Control, Settings};
use reqwest::StatusCode;
use serde_json::Value;

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) control: Arc<Control>,
    client: reqwest::Client,
}

/// A shipped routing file from mesh/config.
pub(crate) fn shipped(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub(crate) async fn start() -> Server {
    start_with(Settings::default()).await
}

pub(crate) async fn start_with(settings: Settings) -> Server {
    serve(settings, Auth::open()).await
}

/// A control plane authenticating its callers with `auth`.
pub(crate) async fn start_secured(auth: Auth) -> Server {
    serve(Settings::default(), auth).await
}

async fn serve(settings: Settings, auth: Auth) -> Server {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let control = Control::new(settings).unwrap();
    control.start_background();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = mesh_control::api::secured(Arc::clone(&control), Arc::new(auth));
    tokio::spawn(async move { axum::serve(listener, router).await });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    Server {
        base,
        control,
        client,
    }
}

impl Server {
    async fn finish(&self, response: reqwest::Response) -> (StatusCode, Value) {
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        assert_eq!(
            content_type.as_deref(),
            Some("application/json"),
            "{status} {body}"
        );
        let value: Value = serde_json::from_str(&body).unwrap();
        if !status.is_success() {
            assert!(value["error"].is_string(), "error field missing: {body}");
        }
        (status, value)
    }

    pub(crate) async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub(crate) async fn get_text(&self, path: &str) -> (StatusCode, String, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, content_type, response.text().await.unwrap())
    }

    pub(crate) async fn post(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .body(body)
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        self.post(path, body.to_string()).await
    }

    pub(crate) async fn delete(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .delete(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        self.finish(response).await
    }

    pub(crate) async fn apply(&self, file: &str) -> Value {
        let (status, body) = self
            .post(&format!("/api/v1/apply?file={file}"), shipped(file))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub(crate) async fn register(&self, name: &str, service: &str, version: &str, port: u16) {
        let (status, body) = self
            .post_json(
                "/api/v1/workloads",
                &serde_json::json!({
                    "name": name, "namespace": "default", "service": service,
                    "serviceAccount": format!("bookinfo-{service}"),
                    "labels": {"app": service, "version": version},
                    "address": format!("127.0.0.1:{port}"), "sidecar": true, "mode": "sidecar",
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["registered"], name);
    }

    /// `method path` with `body` (JSON or YAML text), presenting `token` as a bearer token.
    pub(crate) async fn call_as(
        &self,
        token: Option<&str>,
        method: reqwest::Method,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        if response.status() == StatusCode::UNAUTHORIZED {
            assert_eq!(
                response.headers().get("www-authenticate").unwrap(),
                "Bearer",
                "a 401 says how to authenticate"
            );
        }
        self.finish(response).await
    }

    pub(crate) fn version(&self) -> u64 {
        self.control.version()
    }
}

/// The URI SANs of a PEM certificate (`uri:spiffe://...`).
pub(crate) fn uri_sans(pem: &str) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
    let cert = pem.parse_x509().unwrap();
    cert.subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::URI(uri) => format!("uri:{uri}"),
            other => format!("{other:?}"),
        })
        .collect()
}
