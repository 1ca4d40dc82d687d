//! Product ids the way the original reads them: Ruby's `Integer()` on the last path
//! segment. It accepts a sign, surrounding whitespace, `_` between digits and radix
//! prefixes (`0x1A` → 26, `0b101` → 5, `0o17` and `017` → 15). Labs only ever send
//! small decimal ids; the rest is kept so scripts written against the original behave
//! the same.

/// A parsed product id, rendered back as a JSON number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductId(String);

impl ProductId {
    /// The id as JSON number text.
    pub fn as_json(&self) -> &str {
        &self.0
    }
}

/// Parses an id, or `None` when Ruby's `Integer()` would raise.
pub fn parse(raw: &str) -> Option<ProductId> {
    let s = raw.trim();
    let (neg, body) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0d") {
        (10, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    let digits = strip_underscores(digits)?;
    if !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let text = if radix == 10 {
        // Decimal ids of any length are echoed exactly (Ruby has big integers).
        let t = digits.trim_start_matches('0');
        if t.is_empty() {
            "0".to_owned()
        } else {
            t.to_owned()
        }
    } else {
        u128::from_str_radix(&digits, radix).ok()?.to_string()
    };
    Some(ProductId(if neg && text != "0" {
        format!("-{text}")
    } else {
        text
    }))
}

/// Ruby allows single underscores between digits only.
fn strip_underscores(s: &str) -> Option<String> {
    if s.is_empty() || s.starts_with('_') || s.ends_with('_') || s.contains("__") {
        return None;
    }
    Some(s.replace('_', ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ruby_integer_table() {
        let ok = [
            ("0", "0"),
            ("1", "1"),
            (" 7 ", "7"),
            ("+3", "3"),
            ("-2", "-2"),
            ("1_000", "1000"),
            ("010", "8"),
            ("0x1A", "26"),
            ("0b101", "5"),
            ("0o17", "15"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
        ];
        for (input, want) in ok {
            assert_eq!(
                parse(input).map(|p| p.0),
                Some(want.to_owned()),
                "{input:?}"
            );
        }
        for bad in [
            "", "abc", "1.5", "1__0", "_1", "1_", "08", "0x", "-", "1e3", "0xZZ",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
