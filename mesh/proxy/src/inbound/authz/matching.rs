//! The value matchers of AuthorizationPolicy fields.
//!
//! Strings use Istio's four forms: exact `abc`, prefix `abc*`, suffix `*abc`, and presence
//! `*` (any value, but there must be one). IP fields take CIDRs or single addresses.

use std::net::IpAddr;

/// One string pattern of a policy field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pattern {
    /// `*`: any present value.
    Any,
    /// `abc`.
    Exact(String),
    /// `abc*`.
    Prefix(String),
    /// `*abc`.
    Suffix(String),
}

impl Pattern {
    /// Parses a pattern; `fold_case` lower-cases it (hosts compare case-insensitively and
    /// the value is lower-cased the same way before matching).
    pub(crate) fn parse(text: &str, fold_case: bool) -> Self {
        let text = if fold_case {
            text.to_ascii_lowercase()
        } else {
            text.to_owned()
        };
        if text == "*" {
            Self::Any
        } else if let Some(prefix) = text.strip_suffix('*') {
            Self::Prefix(prefix.to_owned())
        } else if let Some(suffix) = text.strip_prefix('*') {
            Self::Suffix(suffix.to_owned())
        } else {
            Self::Exact(text)
        }
    }

    pub(crate) fn matches(&self, value: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => value == exact,
            Self::Prefix(prefix) => value.starts_with(prefix.as_str()),
            Self::Suffix(suffix) => value.ends_with(suffix.as_str()),
        }
    }
}

/// An address block `10.0.0.0/8`, `2001:db8::/32` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `None` when the text is neither an address nor `address/prefix` with a prefix that
    /// fits the address family.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().ok()?)),
            None => (text, None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Self { network, prefix })
    }

    /// True when `ip` lies in the block. IPv4-mapped IPv6 peers (from dual-stack sockets)
    /// are compared as IPv4.
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                same_prefix(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    if a[..full] != b[..full] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a[full] & mask) == (b[full] & mask)
}

/// A field with values and negated values, e.g. `principals` + `notPrincipals`.
/// Values are ORed; the field holds when some value matches (or there are none) and no
/// negated value matches. An absent attribute (no peer identity, missing header) matches
/// no value, so a non-empty value list fails and a negated list passes, which is how
/// Envoy's RBAC filter evaluates Istio's generated `not_id` rules.
#[derive(Debug, Clone)]
pub(crate) struct Field<T> {
    pub(crate) values: Vec<T>,
    pub(crate) not_values: Vec<T>,
}

impl<T> Default for Field<T> {
    fn default() -> Self {
        Self {
            values: Vec::new(),
            not_values: Vec::new(),
        }
    }
}

impl<T> Field<T> {
    pub(crate) fn new(values: Vec<T>, not_values: Vec<T>) -> Self {
        Self { values, not_values }
    }

    pub(crate) fn check<V: Copy>(
        &self,
        actual: Option<V>,
        matches: impl Fn(&T, V) -> bool,
    ) -> bool {
        let hit = |list: &[T]| actual.is_some_and(|v| list.iter().any(|p| matches(p, v)));
        (self.values.is_empty() || hit(&self.values)) && !hit(&self.not_values)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn patterns() {
        assert!(Pattern::parse("/api*", false).matches("/api/v1"));
        assert!(!Pattern::parse("/api*", false).matches("/ap"));
        assert!(Pattern::parse("*.com", false).matches("bookinfo.com"));
        assert!(!Pattern::parse("*.com", false).matches("bookinfo.org"));
        assert!(Pattern::parse("*", false).matches(""));
        assert!(Pattern::parse("GET", false).matches("GET"));
        assert!(!Pattern::parse("GET", false).matches("get"));
        assert!(Pattern::parse("BookInfo.COM", true).matches("bookinfo.com"));
    }

    #[test]
    fn cidrs() {
        let block = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(block.contains("10.1.200.3".parse().unwrap()));
        assert!(!block.contains("10.2.0.1".parse().unwrap()));
        assert!(block.contains("::ffff:10.1.0.9".parse().unwrap()));
        let odd = Cidr::parse("192.168.1.128/25").unwrap();
        assert!(odd.contains("192.168.1.200".parse().unwrap()));
        assert!(!odd.contains("192.168.1.100".parse().unwrap()));
        let single = Cidr::parse("127.0.0.1").unwrap();
        assert!(single.contains("127.0.0.1".parse().unwrap()));
        assert!(!single.contains("127.0.0.2".parse().unwrap()));
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        assert!(v6.contains("2001:db8:1::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert_eq!(Cidr::parse("10.0.0.0/33"), None);
        assert_eq!(Cidr::parse("not-an-ip"), None);
    }

    #[test]
    fn fields() {
        let field = Field::new(vec![1, 2], vec![3]);
        let eq = |a: &i32, b: i32| *a == b;
        assert!(field.check(Some(1), eq));
        assert!(!field.check(Some(3), eq));
        assert!(!field.check(None, eq));
        let negated_only = Field::new(vec![], vec![3]);
        assert!(negated_only.check(None, eq));
        assert!(negated_only.check(Some(4), eq));
        assert!(!negated_only.check(Some(3), eq));
    }
}
