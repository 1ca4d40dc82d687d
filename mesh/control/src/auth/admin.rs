//! The admin token of the mutating API (`--api-token-file`): read from the file, or, when
//! the file does not exist yet, generated and written there readable by its owner only.

use std::path::Path;

use bookinfo_common::secret::{random_token, write_private};

use super::bearer::{self, Digest};

/// Why the admin token cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum AdminTokenError {
    /// Reading or writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file holds no usable token.
    #[error("{0}")]
    Invalid(String),
}

/// The admin token, kept as its digest.
#[derive(Debug, Clone)]
pub struct AdminToken {
    digest: Digest,
}

/// Shortest admin token accepted.
const MIN_TOKEN: usize = 16;

impl AdminToken {
    /// A token from its text (surrounding whitespace, such as a file's newline, ignored).
    pub fn new(text: &str) -> Result<Self, AdminTokenError> {
        let token = text.trim();
        if token.len() < MIN_TOKEN || token.contains(char::is_whitespace) {
            return Err(AdminTokenError::Invalid(format!(
                "the admin token must be one word of at least {MIN_TOKEN} characters"
            )));
        }
        Ok(Self {
            digest: bearer::digest(token),
        })
    }

    /// Reads the token from `path`; when there is no such file, generates one and writes
    /// it there (mode 0600). Returns whether it was generated.
    pub fn load_or_generate(path: &Path) -> Result<(Self, bool), AdminTokenError> {
        let io = |source| AdminTokenError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => Self::new(&text)
                .map(|t| (t, false))
                .map_err(|e| AdminTokenError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(io)?;
                }
                let token = random_token();
                write_private(path, &format!("{token}\n")).map_err(io)?;
                Ok((Self::new(&token)?, true))
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Whether `token` is the admin token.
    pub fn matches(&self, token: &str) -> bool {
        bearer::same(&self.digest, &bearer::digest(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("mesh-control-admin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("api-token");
        let (first, generated) = AdminToken::load_or_generate(&path).unwrap();
        assert!(generated);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(first.matches(text.trim()));
        assert!(!first.matches("something else entirely"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, generated) = AdminToken::load_or_generate(&path).unwrap();
        assert!(!generated);
        assert!(second.matches(text.trim()));
        std::fs::write(&path, "short").unwrap();
        let err = AdminToken::load_or_generate(&path).unwrap_err().to_string();
        assert!(err.contains("at least 16"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
