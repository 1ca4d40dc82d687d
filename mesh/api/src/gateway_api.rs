//! `gateway.networking.k8s.io` resources: the Kubernetes Gateway API's `Gateway` and
//! `HTTPRoute`, as istio.io's Bookinfo tasks use them.
//!
//! Field names follow the upstream CRDs (`v1`; `v1beta1` has the same schema). Like the
//! Istio kinds, types are plain data; the checks live in `validate`, and `compile` turns
//! the routes into the same [`RouteTable`](crate::RouteTable) a VirtualService produces,
//! the way istiod converts them.

pub mod gateway;
pub mod http_route;

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// API versions served for the Gateway API kinds.
pub const GATEWAY_API_VERSIONS: [&str; 2] = [
    "gateway.networking.k8s.io/v1",
    "gateway.networking.k8s.io/v1beta1",
];

/// The API group of `Gateway` and `HTTPRoute`.
pub const GATEWAY_API_GROUP: &str = "gateway.networking.k8s.io";

/// A Gateway API duration (GEP-2257): one to four `<1-5 digits><h|m|s|ms>` parts, such as
/// `10s`, `1m30s` or `500ms`; `0s` means "no timeout". Stricter than Istio's durations
/// (no fractions, no `us`), and checked on load so a typo is an error with its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct GatewayDuration(pub Duration);

impl GatewayDuration {
    /// The parsed value.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// Parses a GEP-2257 duration.
pub fn parse_gateway_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration {text:?}: expected 1 to 4 parts of up to 5 digits followed by h, m, s or ms, such as 10s or 1m30s"
        )
    };
    let mut rest = text;
    let mut total = Duration::ZERO;
    let mut parts = 0;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if !(1..=5).contains(&digits) {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (Duration::from_millis(1), 2)
        } else if rest.starts_with('h') {
            (Duration::from_secs(3600), 1)
        } else if rest.starts_with('m') {
            (Duration::from_secs(60), 1)
        } else if rest.starts_with('s') {
            (Duration::from_secs(1), 1)
        } else {
            return Err(bad());
        };
        rest = &rest[len..];
        // Five digits of hours at most: no overflow is possible, but stay total.
        let part = unit.checked_mul(u32::try_from(value).map_err(|_| bad())?);
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(bad)?;
        parts += 1;
    }
    if parts == 0 || parts > 4 {
        return Err(bad());
    }
    Ok(total)
}

impl fmt::Display for GatewayDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let millis = self.0.as_millis();
        if millis.is_multiple_of(1000) {
            write!(f, "{}s", millis / 1000)
        } else {
            write!(f, "{millis}ms")
        }
    }
}

impl Serialize for GatewayDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for GatewayDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_gateway_duration(&text)
            .map(GatewayDuration)
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gep_2257_durations() {
        let ok = [
            ("10s", 10_000),
            ("500ms", 500),
            ("1m30s", 90_000),
            ("1h", 3_600_000),
            ("0s", 0),
            ("1h2m3s4ms", 3_723_004),
        ];
        for (text, millis) in ok {
            assert_eq!(
                parse_gateway_duration(text),
                Ok(Duration::from_millis(millis)),
                "{text}"
            );
        }
        for text in [
            "",
            "10",
            "1.5s",
            "250us",
            "123456s",
            "1h1m1s1ms1s",
            "s",
            "-1s",
        ] {
            assert!(parse_gateway_duration(text).is_err(), "{text:?} must fail");
        }
        assert_eq!(
            GatewayDuration(Duration::from_millis(1500)).to_string(),
            "1500ms"
        );
        assert_eq!(GatewayDuration(Duration::from_secs(3)).to_string(), "3s");
    }
}
