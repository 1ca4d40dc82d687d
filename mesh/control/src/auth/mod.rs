//! Who is calling: a workload proves its identity with a credential before it may register
//! or get a certificate, and an admin token guards the calls that change the mesh.
//!
//! Like Istio's CA, the identity in a certificate never comes from what a caller claims
//! but from what its credential proves:
//!
//! * [`tokens`]: a file mapping each token to a namespace and service account (and
//!   optionally one workload name); `meshctl up` and docker compose use it.
//! * [`token_review`]: Kubernetes decides, through the TokenReview API, which service
//!   account a pod's projected token belongs to.
//! * open: no credential is checked. Allowed only on a loopback address with no source
//!   configured (the local demo), and announced at start.
//!
//! [`admin`] holds the token of the mutating API (apply, delete, faults, workload
//! changes), required off loopback.

pub mod admin;
pub mod bearer;
pub mod token_review;
pub mod tokens;

use std::net::SocketAddr;

use axum::http::HeaderMap;

pub use admin::AdminToken;
pub use token_review::TokenReviewer;
pub use tokens::{TokensFile, WorkloadTokens};

use crate::error::AppError;

/// What a credential proves about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadIdentity {
    /// Kubernetes namespace.
    pub namespace: String,
    /// Service account: the identity in the certificate.
    pub service_account: String,
    /// The one workload name the credential may register as, when it says so (tokens file).
    pub workload: Option<String>,
}

impl std::fmt::Display for WorkloadIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.service_account)?;
        if let Some(workload) = &self.workload {
            write!(f, " (workload {workload})")?;
        }
        Ok(())
    }
}

/// Why a credential was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    /// No `Authorization: Bearer` header.
    #[error("no credential (expected Authorization: Bearer <token>)")]
    Missing,
    /// A token that proves nothing (unknown, expired, wrong audience, ...).
    #[error("{0}")]
    Invalid(String),
    /// The authority that checks tokens could not answer.
    #[error("{0}")]
    Unavailable(String),
}

/// Workload tokens: fixed (tests, embedding) or from a file that may change.
#[derive(Debug)]
enum Tokens {
    Fixed(WorkloadTokens),
    File(TokensFile),
}

impl Tokens {
    fn identify(&self, token: &str) -> Option<WorkloadIdentity> {
        match self {
            Self::Fixed(tokens) => tokens.identify(token),
            Self::File(file) => file.identify(token),
        }
    }
}

/// How the control plane authenticates its callers.
#[derive(Debug, Default)]
pub struct Auth {
    tokens: Option<Tokens>,
    review: Option<TokenReviewer>,
    admin: Option<AdminToken>,
}

/// Why a set of credential sources cannot serve an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthConfigError {
    /// Off loopback without any workload credential source.
    #[error(
        "listening on {0} (not loopback) needs a workload credential source (--workload-tokens or --token-review): any host could otherwise get any workload's certificate"
    )]
    OpenOffLoopback(SocketAddr),
    /// Off loopback without an admin token.
    #[error(
        "listening on {0} (not loopback) needs an admin token for the mutating API (--api-token-file)"
    )]
    NoAdminOffLoopback(SocketAddr),
}

impl Auth {
    /// No credential checked anywhere (the local demo; also what tests of routing use).
    pub fn open() -> Self {
        Self::default()
    }

    /// These workload tokens.
    pub fn with_tokens(mut self, tokens: WorkloadTokens) -> Self {
        self.tokens = Some(Tokens::Fixed(tokens));
        self
    }

    /// The workload tokens of a file, reloaded when it changes.
    pub fn with_tokens_file(mut self, file: TokensFile) -> Self {
        self.tokens = Some(Tokens::File(file));
        self
    }

    /// Tokens checked by Kubernetes' TokenReview API.
    pub fn with_token_review(mut self, review: TokenReviewer) -> Self {
        self.review = Some(review);
        self
    }

    /// The admin token of the mutating API.
    pub fn with_admin(mut self, admin: AdminToken) -> Self {
        self.admin = Some(admin);
        self
    }

    /// Whether workload identities go unchecked.
    pub fn is_open(&self) -> bool {
        self.tokens.is_none() && self.review.is_none()
    }

    /// Checks that this configuration may serve `listen`: off loopback both workload
    /// credentials and the admin token are required.
    pub fn check_listen(&self, listen: SocketAddr) -> Result<(), AuthConfigError> {
        if listen.ip().is_loopback() {
            return Ok(());
        }
        if self.is_open() {
            return Err(AuthConfigError::OpenOffLoopback(listen));
        }
        if self.admin.is_none() {
            return Err(AuthConfigError::NoAdminOffLoopback(listen));
        }
        Ok(())
    }

    /// The identity the caller's credential proves; `None` in open mode, where nothing is
    /// checked. A refusal is logged with its reason (never the token).
    pub async fn workload(
        &self,
        headers: &HeaderMap,
        action: &str,
    ) -> Result<Option<WorkloadIdentity>, AppError> {
        if self.is_open() {
            return Ok(None);
        }
        match self.identify(headers).await {
            Ok(identity) => Ok(Some(identity)),
            Err(error) => Err(refuse_credential(action, &error)),
        }
    }

    async fn identify(&self, headers: &HeaderMap) -> Result<WorkloadIdentity, CredentialError> {
        let token = bearer::token(headers)?;
        if let Some(identity) = self.tokens.as_ref().and_then(|t| t.identify(token)) {
            return Ok(identity);
        }
        match &self.review {
            Some(review) => review.identify(token).await,
            None => Err(CredentialError::Invalid(
                "unknown workload token".to_owned(),
            )),
        }
    }

    /// Whether the caller holds the admin token, or none is needed (loopback without one).
    pub fn is_admin(&self, headers: &HeaderMap) -> bool {
        match &self.admin {
            None => true,
            Some(admin) => bearer::token(headers).is_ok_and(|t| admin.matches(t)),
        }
    }

    /// Admits a call of the mutating API, or refuses it (401, logged).
    pub fn admin(&self, headers: &HeaderMap, action: &str) -> Result<(), AppError> {
        if self.is_admin(headers) {
            return Ok(());
        }
        let error = match bearer::token(headers) {
            Err(missing) => missing,
            Ok(_) => CredentialError::Invalid("wrong admin token".to_owned()),
        };
        Err(refuse_credential(action, &error))
    }
}

/// The 401 (or 503) for a credential that proves nothing, logged with its reason.
fn refuse_credential(action: &str, error: &CredentialError) -> AppError {
    match error {
        CredentialError::Unavailable(reason) => {
            tracing::warn!(%action, %reason, "request refused: the credential cannot be checked");
            AppError::Unavailable(format!("cannot check the credential: {reason}"))
        }
        other => {
            tracing::warn!(%action, reason = %other, "request refused: not authenticated");
            AppError::Unauthorized(other.to_string())
        }
    }
}

/// Checks that `identity` may act as the workload `name` of `namespace`/`service_account`
/// (what a registration or a registered workload says); 403 and one log line if not.
pub fn authorize(
    identity: &WorkloadIdentity,
    action: &str,
    name: &str,
    namespace: &str,
    service_account: &str,
) -> Result<(), AppError> {
    let reason = if identity.namespace != namespace || identity.service_account != service_account {
        Some(format!(
            "the credential is for {}/{}, not {namespace}/{service_account}",
            identity.namespace, identity.service_account
        ))
    } else {
        match &identity.workload {
            Some(own) if own != name => Some(format!(
                "the credential is for workload {own:?}, not {name:?}"
            )),
            _ => None,
        }
    };
    match reason {
        None => Ok(()),
        Some(reason) => {
            tracing::warn!(%action, workload = %name, %reason, "request refused: identity mismatch");
            Err(AppError::Forbidden(format!("{action} {name:?}: {reason}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(workload: Option<&str>) -> WorkloadIdentity {
        WorkloadIdentity {
            namespace: "default".into(),
            service_account: "bookinfo-reviews".into(),
            workload: workload.map(Into::into),
        }
    }

    #[test]
    fn an_identity_acts_only_as_itself() {
        let any = identity(None);
        assert!(
            authorize(
                &any,
                "register",
                "reviews-v2",
                "default",
                "bookinfo-reviews"
            )
            .is_ok()
        );
        let err = authorize(
            &any,
            "register",
            "productpage-v1",
            "default",
            "bookinfo-productpage",
        )
        .unwrap_err();
        assert!(
            matches!(&err, AppError::Forbidden(m) if m.contains("not default/bookinfo-productpage")),
            "{err}"
        );
        assert!(authorize(&any, "register", "reviews-v1", "other", "bookinfo-reviews").is_err());
        let pinned = identity(Some("reviews-v1"));
        assert!(
            authorize(
                &pinned,
                "certificate",
                "reviews-v1",
                "default",
                "bookinfo-reviews"
            )
            .is_ok()
        );
        let err = authorize(
            &pinned,
            "certificate",
            "reviews-v2",
            "default",
            "bookinfo-reviews",
        )
        .unwrap_err();
        assert!(err.to_string().contains("workload \"reviews-v1\""), "{err}");
    }

    #[test]
    fn off_loopback_needs_credentials_and_an_admin_token() {
        let public: SocketAddr = "0.0.0.0:15010".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:15010".parse().unwrap();
        assert!(Auth::open().check_listen(local).is_ok());
        assert_eq!(
            Auth::open().check_listen(public),
            Err(AuthConfigError::OpenOffLoopback(public))
        );
        let tokens =
            WorkloadTokens::parse("- token: tttttttttttttttttttt\n  serviceAccount: sa\n").unwrap();
        let with_tokens = Auth::open().with_tokens(tokens);
        assert_eq!(
            with_tokens.check_listen(public),
            Err(AuthConfigError::NoAdminOffLoopback(public))
        );
        let full =
            with_tokens.with_admin(AdminToken::new("an-admin-token-of-some-length").unwrap());
        assert!(full.check_listen(public).is_ok());
    }
}
