//! The workload tokens file (`--workload-tokens`): each token stands for one namespace and
//! service account, and optionally one workload name.
//!
//! ```yaml
//! - token: 3f9c...            # a long random string, one per workload
//!   namespace: default
//!   serviceAccount: bookinfo-productpage
//!   workload: productpage-v1  # optional: the only name this token may register as
//! ```
//!
//! `meshctl up` writes one for its run; docker compose ships one with demo values. The
//! file is checked for changes at most once a second ([`TokensFile`]): writing to it is how
//! whoever runs the mesh admits one more workload (as `kubectl apply` of a Deployment is in
//! Kubernetes). A change that does not parse is refused and the tokens in force stay.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Deserialize;

use super::WorkloadIdentity;
use super::bearer::{self, Digest};

/// Shortest token accepted: a guessable token would be a borrowed identity.
const MIN_TOKEN: usize = 16;

/// One entry of the file.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Entry {
    token: String,
    #[serde(default = "default_namespace")]
    namespace: String,
    #[serde(alias = "service_account")]
    service_account: String,
    #[serde(default)]
    workload: Option<String>,
}

fn default_namespace() -> String {
    "default".to_owned()
}

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// It could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// It is not a list of entries, or an entry is wrong.
    #[error("{0}")]
    Invalid(String),
}

/// The tokens of a file, by digest.
#[derive(Debug, Default)]
pub struct WorkloadTokens {
    by_digest: HashMap<Digest, WorkloadIdentity>,
}

impl WorkloadTokens {
    /// Reads the file at `path`.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let text = std::fs::read_to_string(path).map_err(|source| TokensError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            TokensError::Invalid(reason) => {
                TokensError::Invalid(format!("{}: {reason}", path.display()))
            }
            other => other,
        })
    }

    /// Parses the YAML text of a tokens file.
    pub fn parse(text: &str) -> Result<Self, TokensError> {
        let entries: Vec<Entry> = serde_norway::from_str(text).map_err(|e| {
            TokensError::Invalid(format!(
                "not a list of {{token, namespace, serviceAccount, workload}} entries: {e}"
            ))
        })?;
        let mut by_digest = HashMap::new();
        for (i, entry) in entries.into_iter().enumerate() {
            let at = |what: &str| TokensError::Invalid(format!("entry {i}: {what}"));
            if entry.token.trim().len() < MIN_TOKEN || entry.token.trim() != entry.token {
                return Err(at(&format!(
                    "token must be at least {MIN_TOKEN} characters without surrounding spaces"
                )));
            }
            if entry.namespace.is_empty() || entry.service_account.is_empty() {
                return Err(at("namespace and serviceAccount must not be empty"));
            }
            let identity = WorkloadIdentity {
                namespace: entry.namespace,
                service_account: entry.service_account,
                workload: entry.workload.filter(|w| !w.is_empty()),
            };
            if by_digest
                .insert(bearer::digest(&entry.token), identity)
                .is_some()
            {
                return Err(at("the same token appears twice"));
            }
        }
        Ok(Self { by_digest })
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// The identity `token` stands for, if it is one of ours.
    pub fn identify(&self, token: &str) -> Option<WorkloadIdentity> {
        self.by_digest.get(&bearer::digest(token)).cloned()
    }
}

/// How often, at most, the file's modification time is looked at.
const RECHECK: Duration = Duration::from_secs(1);

/// A tokens file in force, reloaded when it changes.
#[derive(Debug)]
pub struct TokensFile {
    path: PathBuf,
    state: Mutex<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    tokens: WorkloadTokens,
    modified: Option<SystemTime>,
    checked: tokio::time::Instant,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl TokensFile {
    /// Reads `path`; an unreadable or invalid file is an error at start.
    pub fn load(path: &Path) -> Result<Self, TokensError> {
        let stamp = modified(path);
        let tokens = WorkloadTokens::load(path)?;
        Ok(Self {
            path: path.to_owned(),
            state: Mutex::new(Loaded {
                tokens,
                modified: stamp,
                checked: tokio::time::Instant::now(),
            }),
        })
    }

    /// How many tokens are in force.
    pub fn len(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .tokens
            .len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The identity `token` stands for, after reloading the file if it changed. (A stat
    /// a second at most, and a small file read when it changed: not worth a thread.)
    pub fn identify(&self, token: &str) -> Option<WorkloadIdentity> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = tokio::time::Instant::now();
        if now.duration_since(state.checked) >= RECHECK {
            state.checked = now;
            let stamp = modified(&self.path);
            if stamp != state.modified {
                state.modified = stamp;
                match WorkloadTokens::load(&self.path) {
                    Ok(tokens) => {
                        tracing::info!(file = %self.path.display(), tokens = tokens.len(), "workload tokens reloaded");
                        state.tokens = tokens;
                    }
                    Err(error) => {
                        tracing::warn!(%error, "workload tokens file unusable; keeping the tokens in force");
                    }
                }
            }
        }
        state.tokens.identify(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_map_to_identities() {
        let tokens = WorkloadTokens::parse(
            "- token: aaaaaaaaaaaaaaaaaaaa\n  serviceAccount: bookinfo-productpage\n  workload: productpage-v1\n\
             - token: bbbbbbbbbbbbbbbbbbbb\n  namespace: shop\n  service_account: bookinfo-reviews\n",
        )
        .unwrap();
        assert_eq!(tokens.len(), 2);
        let pp = tokens.identify("aaaaaaaaaaaaaaaaaaaa").unwrap();
        assert_eq!(
            (
                pp.namespace.as_str(),
                pp.service_account.as_str(),
                pp.workload.as_deref()
            ),
            ("default", "bookinfo-productpage", Some("productpage-v1"))
        );
        let reviews = tokens.identify("bbbbbbbbbbbbbbbbbbbb").unwrap();
        assert_eq!(
            (reviews.namespace.as_str(), reviews.workload),
            ("shop", None)
        );
        assert!(tokens.identify("cccccccccccccccccccc").is_none());
    }

    #[test]
    fn bad_files_are_refused_by_entry() {
        for (text, expected) in [
            ("token: x", "not a list"),
            (
                "- token: short\n  serviceAccount: sa\n",
                "entry 0: token must be at least 16",
            ),
            ("- token: aaaaaaaaaaaaaaaaaaaa\n", "serviceAccount"),
            (
                "- token: aaaaaaaaaaaaaaaaaaaa\n  serviceAccount: sa\n  sa: x\n",
                "unknown field",
            ),
            (
                "- token: aaaaaaaaaaaaaaaaaaaa\n  serviceAccount: a\n- token: aaaaaaaaaaaaaaaaaaaa\n  serviceAccount: b\n",
                "entry 1: the same token appears twice",
            ),
        ] {
            let err = WorkloadTokens::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text:?}: {err}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_changed_file_admits_new_tokens_and_a_broken_one_changes_nothing() {
        let path = std::env::temp_dir().join(format!("mesh-control-tokens-{}", std::process::id()));
        let entry = |token: &str, sa: &str| format!("- token: {token}\n  serviceAccount: {sa}\n");
        std::fs::write(&path, entry("aaaaaaaaaaaaaaaaaaaa", "a")).unwrap();
        let file = TokensFile::load(&path).unwrap();
        assert!(file.identify("bbbbbbbbbbbbbbbbbbbb").is_none());
        let both = entry("aaaaaaaaaaaaaaaaaaaa", "a") + &entry("bbbbbbbbbbbbbbbbbbbb", "b");
        std::fs::write(&path, both).unwrap();
        // Some file systems keep whole-second times: make the change visible.
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        tokio::time::advance(RECHECK).await;
        assert_eq!(
            file.identify("bbbbbbbbbbbbbbbbbbbb")
                .unwrap()
                .service_account,
            "b"
        );
        std::fs::write(&path, "not: [a list").unwrap();
        let later = later + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(later)
            .unwrap();
        tokio::time::advance(RECHECK).await;
        assert!(
            file.identify("aaaaaaaaaaaaaaaaaaaa").is_some(),
            "a broken file changes nothing"
        );
        assert_eq!(file.len(), 2);
        std::fs::remove_file(&path).unwrap();
    }
}
