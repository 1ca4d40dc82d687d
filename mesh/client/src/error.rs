//! Why a control plane call failed, in words a user can act on.

use mesh_api::wire::ApiError;

/// Why a call to the control plane failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The base URL is not an `http://host:port[/prefix]` URL.
    #[error(
        "invalid control plane URL {url:?}: expected something like {}",
        crate::DEFAULT_URL
    )]
    BadUrl {
        /// What was given.
        url: String,
    },
    /// Nothing answered (refused, timed out, connection lost).
    #[error("cannot reach the control plane at {url} ({reason}){hint}")]
    Unreachable {
        /// The base URL.
        url: String,
        /// The innermost transport error ("Connection refused (os error 111)").
        reason: String,
        /// What the user of this tool can do about it (may be empty), starting with `; `.
        hint: &'static str,
    },
    /// The control plane answered with an error.
    #[error("{message}{}", details(.errors))]
    Api {
        /// HTTP status.
        status: u16,
        /// The `error` field (or the status and body when there is none).
        message: String,
        /// The `errors` field: precise validation errors, one per entry.
        errors: Vec<String>,
    },
    /// The client's token cannot be used (its file is unreadable or empty, or it holds
    /// characters a header cannot carry).
    #[error("cannot use the control plane token from {from}: {reason}")]
    Credential {
        /// The token file, or where a fixed token came from.
        from: String,
        /// What went wrong.
        reason: String,
    },
    /// The answer is not what the contract says.
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

impl ClientError {
    /// The control plane answered 404: an unknown workload, fault or service.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api { status: 404, .. })
    }

    /// The control plane refused the credential (401: none, unknown or expired) or the
    /// identity it proves (403).
    pub fn is_refused(&self) -> bool {
        matches!(
            self,
            Self::Api {
                status: 401 | 403,
                ..
            }
        )
    }

    /// The error of a non-2xx answer: the control plane's `{"error", "errors"}` body
    /// when it sent one, else the status and a short body.
    pub(crate) fn from_answer(status: http::StatusCode, body: &[u8], url: &str) -> Self {
        if let Ok(ApiError { error, errors }) = serde_json::from_slice::<ApiError>(body) {
            return Self::Api {
                status: status.as_u16(),
                message: error,
                errors,
            };
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let message = if text.is_empty() || text.len() > 200 {
            format!("{status} from {url}")
        } else {
            format!("{status} from {url}: {text}")
        };
        Self::Api {
            status: status.as_u16(),
            message,
            errors: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_the_precise_lines() {
        let body = br#"{"error": "invalid configuration", "errors": ["a.yaml: document 1: VirtualService default/x: spec.http[0]: bad"]}"#;
        let e = ClientError::from_answer(http::StatusCode::BAD_REQUEST, body, "http://h/api");
        assert_eq!(
            e.to_string(),
            "invalid configuration: a.yaml: document 1: VirtualService default/x: spec.http[0]: bad"
        );
        let e = ClientError::from_answer(http::StatusCode::NOT_FOUND, b"nope", "http://h/api");
        assert_eq!(e.to_string(), "404 Not Found from http://h/api: nope");
        assert!(e.is_not_found());
    }
}
