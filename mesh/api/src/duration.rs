//! Durations in Istio's notation (`7s`, `0.5s`, `100ms`, `1m`, `1h`, `1.5s`).
//!
//! Istio's CRDs carry `google.protobuf.Duration`, written in YAML as a decimal number and a
//! unit. We parse once, at load time, so the proxy only ever sees [`std::time::Duration`].

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// Nothing to parse.
    #[error("empty duration")]
    Empty,
    /// No unit or an unknown one.
    #[error(
        "invalid duration {0:?}: expected a number followed by h, m, s, ms, us or ns (e.g. \"7s\", \"0.5s\", \"100ms\")"
    )]
    Syntax(String),
    /// Does not fit in a `Duration`.
    #[error("duration {0:?} is too large")]
    Overflow(String),
}

/// Parses `7s`, `0.5s`, `100ms`, `1m`, `1h`, `1.5s`, `250us`, `10ns`; also Go-style
/// compound forms such as `1m30s`, which Kubernetes users sometimes write.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DurationError::Empty);
    }
    let syntax = || DurationError::Syntax(text.to_owned());
    let mut rest = trimmed;
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(syntax)?;
        let (number, after) = rest.split_at(number_len);
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return Err(syntax());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let nanos_per_unit: u128 = match unit {
            "h" => 3_600_000_000_000,
            "m" => 60_000_000_000,
            "s" => 1_000_000_000,
            "ms" => 1_000_000,
            "us" | "µs" => 1_000,
            "ns" => 1,
            _ => return Err(syntax()),
        };
        let nanos = scaled(number, nanos_per_unit)
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
        let part = u64::try_from(nanos)
            .map(Duration::from_nanos)
            .map_err(|_| DurationError::Overflow(text.to_owned()))?;
        total = total
            .checked_add(part)
            .ok_or_else(|| DurationError::Overflow(text.to_owned()))?;
        rest = next;
    }
    Ok(total)
}

/// `number` (decimal, digits and at most one dot) times `unit` nanoseconds, computed in
/// integers so `0.1s` is exactly 100 ms (floating point would round it).
fn scaled(number: &str, unit: u128) -> Option<u128> {
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos = whole.checked_mul(unit)?;
    let mut scale = unit;
    for digit in fraction.chars() {
        scale /= 10;
        if scale == 0 {
            break; // finer than a nanosecond: ignored
        }
        nanos = nanos.checked_add(u128::from(digit.to_digit(10)?) * scale)?;
    }
    Some(nanos)
}

/// Formats a duration the way Istio prints one: seconds with only the needed decimals
/// (`7s`, `0.5s`, `0.025s`).
pub fn format_duration(duration: Duration) -> String {
    let secs = duration.as_secs();
    let nanos = duration.subsec_nanos();
    if nanos == 0 {
        return format!("{secs}s");
    }
    let fraction = format!("{nanos:09}");
    format!("{secs}.{}s", fraction.trim_end_matches('0'))
}

/// A duration field of an Istio resource: parsed on load, written back in Istio notation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct IstioDuration(pub Duration);

impl IstioDuration {
    /// The parsed value.
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for IstioDuration {
    fn from(value: Duration) -> Self {
        Self(value)
    }
}

impl fmt::Display for IstioDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for IstioDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IstioDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(IstioDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_istio_forms() {
        let cases = [
            ("7s", Duration::from_secs(7)),
            ("0.5s", Duration::from_millis(500)),
            ("100ms", Duration::from_millis(100)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("1.5s", Duration::from_millis(1500)),
            ("0.1s", Duration::from_millis(100)),
            ("250us", Duration::from_micros(250)),
            ("1m30s", Duration::from_secs(90)),
            (".5s", Duration::from_millis(500)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rejects_bad_forms() {
        for text in ["", "7", "s", "7 sec", "-1s", "1.2.3s", "1d", "abc"] {
            assert!(parse_duration(text).is_err(), "{text:?} should fail");
        }
        let message = parse_duration("7").unwrap_err().to_string();
        assert!(message.starts_with("invalid duration \"7\""), "{message}");
        assert!(matches!(
            parse_duration("99999999999999999h"),
            Err(DurationError::Overflow(_))
        ));
    }

    #[test]
    fn formats_like_istio() {
        assert_eq!(format_duration(Duration::from_secs(7)), "7s");
        assert_eq!(format_duration(Duration::from_millis(500)), "0.5s");
        assert_eq!(format_duration(Duration::from_millis(25)), "0.025s");
    }
}
