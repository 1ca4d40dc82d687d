//! A strict `application/x-www-form-urlencoded` decoder for the login form.
//!
//! Browsers and `curl --data` send `username=jason&passwd=password`. Rather than
//! silently replacing broken input, a bad percent escape or bytes that are not UTF-8
//! make the whole form invalid, so the client gets a 400 naming the problem.

/// Why a form could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A `%` not followed by two hex digits.
    #[error("bad percent escape in form data")]
    BadEscape,
    /// The decoded bytes are not UTF-8.
    #[error("form data is not valid UTF-8")]
    NotUtf8,
}

/// Decodes `input` into name/value pairs in order.
pub fn parse(input: &[u8]) -> Result<Vec<(String, String)>, FormError> {
    input
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[..0]),
            };
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

/// The first value of `name` in `pairs`.
pub fn first<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn decode(part: &[u8]) -> Result<String, FormError> {
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        match part[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = part.get(i + 1).and_then(|b| hex(*b));
                let lo = part.get(i + 2).and_then(|b| hex(*b));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(h << 4 | l),
                    _ => return Err(FormError::BadEscape),
                }
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| FormError::NotUtf8)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_what_browsers_send() {
        let pairs = parse(b"username=jason&passwd=pass%20word&x=a+b&empty=&flag").unwrap();
        assert_eq!(first(&pairs, "username"), Some("jason"));
        assert_eq!(first(&pairs, "passwd"), Some("pass word"));
        assert_eq!(first(&pairs, "x"), Some("a b"));
        assert_eq!(first(&pairs, "empty"), Some(""));
        assert_eq!(first(&pairs, "flag"), Some(""));
        assert_eq!(first(&pairs, "missing"), None);
        assert_eq!(
            first(&parse(b"username=J%C3%BCrgen").unwrap(), "username"),
            Some("Jürgen")
        );
        assert!(parse(b"").unwrap().is_empty());
    }

    #[test]
    fn rejects_broken_input() {
        assert_eq!(parse(b"username=%zz"), Err(FormError::BadEscape));
        assert_eq!(parse(b"username=%4"), Err(FormError::BadEscape));
        assert_eq!(parse(b"username=%FF"), Err(FormError::NotUtf8));
        assert_eq!(parse(b"username=\xff"), Err(FormError::NotUtf8));
    }
}
