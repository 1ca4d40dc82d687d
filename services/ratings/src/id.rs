//! Product ids, read from the URL the way the original ratings service reads them.
//!
//! The original takes the last `/`-separated piece of the raw request URL (query string
//! included, nothing percent-decoded) and runs JavaScript's `parseInt` on it. So
//! `/ratings/0?x=1` is product 0, `/ratings/1.5` is 1, `/ratings/2/3` is 3 and
//! `/ratings/0x10` is 16. Clients and labs depend on these answers, so we keep them.
//!
//! One thing we do differently: JavaScript turns very long numbers into floating point
//! (and eventually `1e+21`). We keep every digit instead and echo the id as an exact JSON
//! integer, which never panics and never loses the caller's id.

use std::fmt;

/// A product id as it appears in responses: an optionally negative integer in decimal,
/// without leading zeros, of any length. Negative zero is written `0`, as
/// `JSON.stringify(-0)` does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProductId(String);

impl ProductId {
    /// Reads the id from a raw request target such as `/ratings/7?user=jason`.
    pub fn from_url(raw_url: &str) -> Option<Self> {
        let last = raw_url.rsplit('/').next().unwrap_or(raw_url);
        Self::parse_int(last)
    }

    /// JavaScript's `parseInt(text)` without a radix, returning `None` for `NaN`:
    /// leading white space is skipped, one sign is allowed, `0x`/`0X` switches to
    /// hexadecimal, and parsing stops at the first character that is not a digit.
    pub fn parse_int(text: &str) -> Option<Self> {
        let s = text.trim_start_matches(is_js_whitespace);
        let (negative, s) = match s.as_bytes().first() {
            Some(b'-') => (true, &s[1..]),
            Some(b'+') => (false, &s[1..]),
            _ => (false, s),
        };
        let (radix, s) = match s.get(..2) {
            Some("0x" | "0X") => (16, &s[2..]),
            _ => (10, s),
        };
        let end = s.find(|c: char| !c.is_digit(radix)).unwrap_or(s.len());
        let digits = &s[..end];
        if digits.is_empty() {
            return None;
        }
        let decimal = if radix == 16 {
            hex_to_decimal(digits)
        } else {
            digits.to_owned()
        };
        let trimmed = decimal.trim_start_matches('0');
        Some(match (trimmed.is_empty(), negative) {
            (true, _) => Self("0".to_owned()),
            (false, true) => Self(format!("-{trimmed}")),
            (false, false) => Self(trimmed.to_owned()),
        })
    }

    /// The id as JSON number text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The characters `parseInt` skips before the number: ECMAScript's `WhiteSpace` and
/// `LineTerminator`. Not the same set as `char::is_whitespace` (U+FEFF is in, U+0085 out).
fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\u{9}' | '\u{a}' | '\u{b}' | '\u{c}' | '\u{d}' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202f}'
                | '\u{205f}'
                | '\u{3000}'
                | '\u{feff}'
    )
}

/// Converts hexadecimal digits of any length to decimal digits, in base 10^9 limbs.
fn hex_to_decimal(hex: &str) -> String {
    const BASE: u64 = 1_000_000_000;
    // Little-endian limbs of the value read so far.
    let mut limbs: Vec<u64> = vec![0];
    for c in hex.chars() {
        let mut carry = u64::from(c.to_digit(16).unwrap_or(0));
        for limb in &mut limbs {
            let v = *limb * 16 + carry;
            *limb = v % BASE;
            carry = v / BASE;
        }
        if carry > 0 {
            limbs.push(carry);
        }
    }
    let mut out = String::with_capacity(limbs.len() * 9);
    let mut iter = limbs.iter().rev();
    if let Some(top) = iter.next() {
        out.push_str(&top.to_string());
    }
    for limb in iter {
        out.push_str(&format!("{limb:09}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(url: &str) -> Option<String> {
        ProductId::from_url(url).map(|p| p.to_string())
    }

    #[test]
    fn reads_the_last_segment_of_the_raw_url_like_the_original() {
        let cases: &[(&str, Option<&str>)] = &[
            ("/ratings/0", Some("0")),
            ("/ratings/0?x=1", Some("0")),
            ("/ratings/1.5", Some("1")),
            ("/ratings/2/3", Some("3")),
            ("/ratings/-1", Some("-1")),
            ("/ratings/+4", Some("4")),
            ("/ratings/12abc", Some("12")),
            ("/ratings/007", Some("7")),
            ("/ratings/-0", Some("0")),
            ("/ratings/0x1A", Some("26")),
            ("/ratings/-0XfF", Some("-255")),
            ("/ratings/1?next=/5", Some("5")),
            ("/ratings/abc", None),
            ("/ratings/", None),
            ("/ratings/0x", None),
            ("/ratings/--1", None),
            ("/ratings/-", None),
            ("/ratings/%207", None),
            ("/ratings/?id=3", None),
        ];
        for (url, want) in cases {
            assert_eq!(id(url).as_deref(), *want, "url {url}");
        }
    }

    #[test]
    fn skips_javascript_white_space_only() {
        assert_eq!(ProductId::parse_int(" 7").unwrap().as_str(), "7");
        assert_eq!(
            ProductId::parse_int("\t\n\u{a0}\u{feff}\u{3000}-8")
                .unwrap()
                .as_str(),
            "-8"
        );
        // NEL is white space to Rust but not to JavaScript.
        assert_eq!(ProductId::parse_int("\u{85}7"), None);
        // Space between the sign and the digits is not skipped.
        assert_eq!(ProductId::parse_int("- 7"), None);
    }

    #[test]
    fn keeps_every_digit_of_huge_ids() {
        let digits = "123456789012345678901234567890123456789";
        assert_eq!(ProductId::parse_int(digits).unwrap().as_str(), digits);
        assert_eq!(
            ProductId::parse_int(&format!("-000{digits}x"))
                .unwrap()
                .as_str(),
            format!("-{digits}")
        );
        let long = "9".repeat(10_000);
        assert_eq!(ProductId::parse_int(&long).unwrap().as_str(), long);
    }

    #[test]
    fn converts_long_hexadecimal_exactly() {
        assert_eq!(hex_to_decimal("0"), "0");
        assert_eq!(hex_to_decimal("ffffffffffffffff"), u64::MAX.to_string());
        // 2^128 = 0x1 followed by 32 zeros.
        let two_pow_128 = format!("1{}", "0".repeat(32));
        assert_eq!(
            hex_to_decimal(&two_pow_128),
            "340282366920938463463374607431768211456"
        );
        assert_eq!(ProductId::parse_int("0x0000").unwrap().as_str(), "0");
    }
}
