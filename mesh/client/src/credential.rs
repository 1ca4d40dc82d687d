//! The bearer token a client presents: the admin token for `meshctl` and the chaos runner,
//! a workload's own token for a proxy.
//!
//! A token file is read again for every request: Kubernetes rotates projected
//! service-account tokens in place, and a proxy must present the current one.

use std::path::PathBuf;
use std::sync::Arc;

use crate::ClientError;

/// Where the token comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// This token.
    Token(Arc<str>),
    /// The content of this file (surrounding whitespace ignored), read per request.
    File(PathBuf),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // Never the token itself: clients end up in debug logs.
            Self::Token(_) => f.write_str("Token(..)"),
            Self::File(path) => f.debug_tuple("File").field(path).finish(),
        }
    }
}

impl Credential {
    /// A fixed token.
    pub fn token(token: &str) -> Self {
        Self::Token(Arc::from(token.trim()))
    }

    /// The token from the environment: `token_var` holds one, `file_var` names a file
    /// holding one (at most one of them may be set). `Ok(None)` when neither is set.
    pub fn from_env(token_var: &str, file_var: &str) -> Result<Option<Self>, String> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match (get(token_var), get(file_var)) {
            (Some(_), Some(_)) => Err(format!("set {token_var} or {file_var}, not both")),
            (Some(token), None) => Ok(Some(Self::token(&token))),
            (None, Some(file)) => Ok(Some(Self::File(PathBuf::from(file.trim())))),
            (None, None) => Ok(None),
        }
    }

    /// The token to send now.
    pub async fn current(&self) -> Result<Arc<str>, ClientError> {
        match self {
            Self::Token(token) => Ok(Arc::clone(token)),
            Self::File(path) => {
                let unusable = |reason: String| ClientError::Credential {
                    from: path.display().to_string(),
                    reason,
                };
                let text = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| unusable(e.to_string()))?;
                let token = text.trim();
                if token.is_empty() {
                    return Err(unusable("the file is empty".to_owned()));
                }
                Ok(Arc::from(token))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_file_is_read_on_each_use() {
        let path = std::env::temp_dir().join(format!("mesh-client-token-{}", std::process::id()));
        std::fs::write(&path, "first\n").unwrap();
        let credential = Credential::File(path.clone());
        assert_eq!(&*credential.current().await.unwrap(), "first");
        std::fs::write(&path, "second").unwrap();
        assert_eq!(&*credential.current().await.unwrap(), "second");
        std::fs::write(&path, "  \n").unwrap();
        let err = credential.current().await.unwrap_err().to_string();
        assert!(
            err.contains("the file is empty") && err.contains(&*path.to_string_lossy()),
            "{err}"
        );
        std::fs::remove_file(&path).unwrap();
        assert!(credential.current().await.is_err());
        assert_eq!(format!("{:?}", Credential::token("secret")), "Token(..)");
    }
}
