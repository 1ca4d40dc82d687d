//! Kubernetes decides: a pod's projected service-account token (audience e.g.
//! `mesh-control`) is checked with `POST /apis/authentication.k8s.io/v1/tokenreviews`, and
//! the identity is the `system:serviceaccount:<ns>:<sa>` user the API server names.
//!
//! Answers are cached briefly (a proxy presents the same token on every renewal and
//! re-registration), in a bounded table keyed by the token's digest. A review that does
//! not answer within [`REVIEW_TIMEOUT`] fails the request with 503 instead of holding it.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, TokenReviewStatus};
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use super::bearer::{self, Digest};
use super::{CredentialError, WorkloadIdentity};

/// Longest wait for the API server.
pub const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an accepted token's identity is reused without asking again.
const ACCEPTED_TTL: Duration = Duration::from_secs(30);
/// How long a refused token stays refused without asking again (short: a token may be
/// refused because its pod is still starting).
const REFUSED_TTL: Duration = Duration::from_secs(5);
/// Most answers kept; beyond it expired entries go, then everything (a flood of distinct
/// tokens must not grow memory).
const CACHE_ENTRIES: usize = 1024;

/// The prefix of a service account's user name.
const SERVICE_ACCOUNT_USER: &str = "system:serviceaccount:";

type Answer = Result<WorkloadIdentity, CredentialError>;

/// Checks tokens with the TokenReview API.
pub struct TokenReviewer {
    api: Api<TokenReview>,
    audience: String,
    cache: Mutex<HashMap<Digest, (Instant, Answer)>>,
}

impl std::fmt::Debug for TokenReviewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenReviewer")
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenReviewer {
    /// Reviews tokens through `client`, accepting those issued for `audience`.
    pub fn new(client: kube::Client, audience: &str) -> Self {
        Self {
            api: Api::all(client),
            audience: audience.to_owned(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The audience tokens must be issued for.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The identity `token` proves.
    pub async fn identify(&self, token: &str) -> Answer {
        let digest = bearer::digest(token);
        let now = Instant::now();
        if let Some(answer) = self.cached(&digest, now) {
            return answer;
        }
        let answer = self.review(token).await;
        let ttl = match &answer {
            Ok(_) => Some(ACCEPTED_TTL),
            Err(CredentialError::Invalid(_)) => Some(REFUSED_TTL),
            // The API server did not answer: ask again next time.
            Err(_) => None,
        };
        if let Some(ttl) = ttl {
            self.remember(digest, Instant::now() + ttl, answer.clone());
        }
        answer
    }

    fn cached(&self, digest: &Digest, now: Instant) -> Option<Answer> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(digest)
            .filter(|(until, _)| *until > now)
            .map(|(_, answer)| answer.clone())
    }

    fn remember(&self, digest: Digest, until: Instant, answer: Answer) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        cache.insert(digest, (until, answer));
    }

    async fn review(&self, token: &str) -> Answer {
        let review = TokenReview {
            spec: TokenReviewSpec {
                audiences: Some(vec![self.audience.clone()]),
                token: token.to_owned(),
            },
            ..TokenReview::default()
        };
        let answered = tokio::time::timeout(
            REVIEW_TIMEOUT,
            self.api.create(&PostParams::default(), &review),
        )
        .await
        .map_err(|_| {
            CredentialError::Unavailable(format!(
                "the Kubernetes API did not answer the TokenReview within {}s",
                REVIEW_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| CredentialError::Unavailable(format!("TokenReview failed: {e}")))?;
        identity(answered.status.as_ref(), &self.audience)
    }
}

/// The identity a review's status grants, or why it grants none.
fn identity(status: Option<&TokenReviewStatus>, audience: &str) -> Answer {
    let status = status.ok_or_else(|| {
        CredentialError::Invalid("the TokenReview came back without a status".to_owned())
    })?;
    if status.authenticated != Some(true) {
        let why = status.error.as_deref().unwrap_or("no reason given");
        return Err(CredentialError::Invalid(format!(
            "Kubernetes did not authenticate the token: {why}"
        )));
    }
    // An API server that ignores audiences would accept any service-account token (one
    // meant for another system too): the audience must come back explicitly.
    let audiences = status.audiences.as_deref().unwrap_or_default();
    if !audiences.iter().any(|a| a == audience) {
        return Err(CredentialError::Invalid(format!(
            "the token is not meant for audience {audience:?} (it is for {audiences:?})"
        )));
    }
    let username = status
        .user
        .as_ref()
        .and_then(|u| u.username.as_deref())
        .unwrap_or_default();
    let (namespace, service_account) = username
        .strip_prefix(SERVICE_ACCOUNT_USER)
        .and_then(|rest| rest.split_once(':'))
        .filter(|(ns, sa)| !ns.is_empty() && !sa.is_empty() && !sa.contains(':'))
        .ok_or_else(|| {
            CredentialError::Invalid(format!(
                "the token belongs to {username:?}, not to a service account"
            ))
        })?;
    Ok(WorkloadIdentity {
        namespace: namespace.to_owned(),
        service_account: service_account.to_owned(),
        workload: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::authentication::v1::UserInfo;

    fn status(authenticated: bool, user: &str, audiences: &[&str]) -> TokenReviewStatus {
        TokenReviewStatus {
            authenticated: Some(authenticated),
            audiences: Some(audiences.iter().map(|a| (*a).to_owned()).collect()),
            user: Some(UserInfo {
                username: Some(user.to_owned()),
                ..UserInfo::default()
            }),
            error: (!authenticated).then(|| "token expired".to_owned()),
        }
    }

    #[test]
    fn the_identity_is_the_service_account_user() {
        let ok = identity(
            Some(&status(
                true,
                "system:serviceaccount:default:bookinfo-reviews",
                &["mesh-control"],
            )),
            "mesh-control",
        )
        .unwrap();
        assert_eq!(
            (ok.namespace.as_str(), ok.service_account.as_str()),
            ("default", "bookinfo-reviews")
        );
        for (s, expected) in [
            (
                status(false, "", &[]),
                "did not authenticate the token: token expired",
            ),
            (
                status(true, "system:serviceaccount:default:x", &["api"]),
                "not meant for audience \"mesh-control\"",
            ),
            (
                status(true, "alice", &["mesh-control"]),
                "not to a service account",
            ),
            (
                status(true, "system:serviceaccount:default", &["mesh-control"]),
                "not to a service account",
            ),
        ] {
            let err = identity(Some(&s), "mesh-control").unwrap_err();
            assert!(
                matches!(&err, CredentialError::Invalid(m) if m.contains(expected)),
                "{err}"
            );
        }
        assert!(identity(None, "mesh-control").is_err());
    }
}
