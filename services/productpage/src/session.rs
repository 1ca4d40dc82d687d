//! The signed `session` cookie that remembers who signed in.
//!
//! The value is `<payload>.<signature>`: the payload is URL-safe base64 of a small
//! JSON object (`{"user":"jason"}`), the signature an HMAC-SHA256 of the payload under
//! the configured secret. Anything that does not verify — garbage, a tampered user
//! name, a cookie signed with another key — simply means "signed out": a bad cookie is
//! never an error page.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::header::COOKIE;
use sha2::Sha256;

/// Name of the cookie, as in the original (labs look for it in cookie jars).
pub const COOKIE_NAME: &str = "session";

type HmacSha256 = Hmac<Sha256>;

/// The key could not be turned into an HMAC key.
#[derive(Debug, thiserror::Error)]
#[error("unusable session secret: {0}")]
pub struct SessionKeyError(String);

/// What the session remembers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Session {
    /// The signed-in user, if any.
    pub user: Option<String>,
}

/// Signs and verifies session cookies.
#[derive(Clone)]
pub struct SessionKey {
    mac: HmacSha256,
}

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.write_str("SessionKey(..)")
    }
}

impl SessionKey {
    /// A key derived from `secret`.
    pub fn new(secret: &str) -> Result<Self, SessionKeyError> {
        let mac = HmacSha256::new_from_slice(secret.as_bytes())
            .map_err(|e| SessionKeyError(e.to_string()))?;
        Ok(Self { mac })
    }

    /// The cookie value holding `session`.
    pub fn seal(&self, session: &Session) -> String {
        let json = serde_json::json!({ "user": session.user });
        let payload = URL_SAFE_NO_PAD.encode(json.to_string());
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The session in a cookie value, or `None` when it does not verify.
    pub fn open(&self, value: &str) -> Option<Session> {
        let (payload, sig) = value.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        // Constant-time comparison: the signature is the only thing guarding identity.
        mac.verify_slice(&sig).ok()?;
        let json: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        let user = json
            .get("user")?
            .as_str()
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        Some(Session { user })
    }

    /// The session carried by a request's `Cookie` headers; signed out when there is
    /// none or it does not verify.
    pub fn from_headers(&self, headers: &HeaderMap) -> Session {
        session_cookies(headers)
            .find_map(|v| self.open(v))
            .unwrap_or_default()
    }
}

/// Every value of a cookie named `session` across all `Cookie` headers.
fn session_cookies(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(name, _)| name.trim() == COOKIE_NAME)
        .map(|(_, value)| value.trim().trim_matches('"'))
}

/// `Set-Cookie` value that stores `sealed`: a browser-session cookie like the original's.
pub fn set_cookie(sealed: &str) -> String {
    format!("{COOKIE_NAME}={sealed}; HttpOnly; Path=/")
}

/// `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE_NAME}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; HttpOnly; Path=/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jason() -> Session {
        Session {
            user: Some("jason".to_owned()),
        }
    }

    #[test]
    fn round_trips_and_rejects_tampering() {
        let key = SessionKey::new("k1").unwrap();
        let sealed = key.seal(&jason());
        assert_eq!(key.open(&sealed), Some(jason()));

        // Another user name under the same signature.
        let (_, sig) = sealed.split_once('.').unwrap();
        let forged = format!("{}.{sig}", URL_SAFE_NO_PAD.encode(r#"{"user":"admin"}"#));
        assert_eq!(key.open(&forged), None);
        // Another key, truncated signature, garbage.
        assert_eq!(SessionKey::new("k2").unwrap().open(&sealed), None);
        assert_eq!(key.open(&sealed[..sealed.len() - 2]), None);
        for junk in ["", ".", "abc", "a.b.c", "%%%.!!!", "eyJ1c2VyIjoiamFzb24ifQ"] {
            assert_eq!(key.open(junk), None, "{junk}");
        }
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let key = SessionKey::new("k").unwrap();
        let mut h = HeaderMap::new();
        h.append(COOKIE, "theme=dark".parse().unwrap());
        h.append(
            COOKIE,
            format!("a=1; session=garbage; {}", set_cookie(&key.seal(&jason())))
                .parse()
                .unwrap(),
        );
        assert_eq!(key.from_headers(&h), jason());
        let mut h = HeaderMap::new();
        h.append(COOKIE, "session=garbage".parse().unwrap());
        assert_eq!(key.from_headers(&h), Session::default());
        assert_eq!(key.from_headers(&HeaderMap::new()), Session::default());
    }

    #[test]
    fn a_null_or_empty_user_is_signed_out() {
        let key = SessionKey::new("k").unwrap();
        assert_eq!(
            key.open(&key.seal(&Session::default())),
            Some(Session::default())
        );
        let empty = Session {
            user: Some(String::new()),
        };
        assert_eq!(key.open(&key.seal(&empty)), Some(Session::default()));
    }
}
