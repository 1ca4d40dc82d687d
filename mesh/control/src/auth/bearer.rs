//! `Authorization: Bearer <token>`, and the digest tokens are known by: a token is hashed
//! once on arrival, then looked up and compared as its SHA-256, so no table keeps it in
//! the clear and comparisons do not leak its prefix through timing.

use axum::http::{HeaderMap, header};
use sha2::{Digest as _, Sha256};

use super::CredentialError;

/// Longest token accepted (projected service-account tokens are about 1 KB).
const MAX_TOKEN: usize = 16 * 1024;

/// SHA-256 of a token.
pub type Digest = [u8; 32];

/// The bearer token of a request.
pub fn token(headers: &HeaderMap) -> Result<&str, CredentialError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or(CredentialError::Missing)?;
    let text = value.to_str().map_err(|_| {
        CredentialError::Invalid("the Authorization header is not ASCII text".to_owned())
    })?;
    let (scheme, token) = text.split_once(' ').unwrap_or((text, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialError::Invalid(
            "the Authorization header is not a Bearer token".to_owned(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(CredentialError::Invalid("empty bearer token".to_owned()));
    }
    if token.len() > MAX_TOKEN {
        return Err(CredentialError::Invalid(format!(
            "bearer token longer than {MAX_TOKEN} bytes"
        )));
    }
    Ok(token)
}

/// The digest of `token`.
pub fn digest(token: &str) -> Digest {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares two digests in constant time.
pub fn same(a: &Digest, b: &Digest) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn reads_bearer_tokens_and_names_what_is_wrong() {
        assert_eq!(token(&headers("Bearer abc")).unwrap(), "abc");
        assert_eq!(token(&headers("bearer  abc ")).unwrap(), "abc");
        assert_eq!(token(&HeaderMap::new()), Err(CredentialError::Missing));
        for bad in ["Basic dXNlcjpwdw==", "Bearer", "Bearer   "] {
            assert!(
                matches!(token(&headers(bad)), Err(CredentialError::Invalid(_))),
                "{bad}"
            );
        }
        assert!(same(&digest("a"), &digest("a")));
        assert!(!same(&digest("a"), &digest("b")));
    }
}
