//! Host names: qualifying short names and matching a request authority against a host.
//!
//! Istio qualifies a dot-less name with the namespace **of the rule** (not of the service):
//! `reviews` in a VirtualService in `default` means `reviews.default.svc.cluster.local`.
//! A request may name the same service in any short form (`reviews`, `reviews:9080`,
//! `reviews.default`, `reviews.default.svc`, the FQDN), because Kubernetes DNS search
//! paths resolve all of them.

/// Kubernetes cluster domain.
pub const CLUSTER_DOMAIN: &str = "cluster.local";

/// Qualifies a configuration host with the rule's namespace.
///
/// * `reviews` → `reviews.<ns>.svc.cluster.local`
/// * `reviews.default` → `reviews.default.svc.cluster.local`
/// * `reviews.default.svc` → `reviews.default.svc.cluster.local`
/// * anything else with dots (`www.googleapis.com`, the FQDN) is unchanged
/// * wildcards (`*`, `*.example.com`) and IP addresses are kept
///
/// A two-label name is read as `service.namespace` only when it does not look like an
/// external domain: names whose last label is a well-known top-level domain
/// (`httpbin.org`, `example.com`) stay unchanged so ServiceEntry hosts keep working.
pub fn qualify(host: &str, namespace: &str) -> String {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if host.starts_with('*') || host.parse::<std::net::IpAddr>().is_ok() {
        return host;
    }
    let labels: Vec<&str> = host.split('.').collect();
    match labels.as_slice() {
        [name] => format!("{name}.{namespace}.svc.{CLUSTER_DOMAIN}"),
        [name, ns] if !is_public_suffix(ns) => format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"),
        [name, ns, "svc"] => format!("{name}.{ns}.svc.{CLUSTER_DOMAIN}"),
        _ => host,
    }
}

/// Top-level domains that make `a.b` an external name rather than `service.namespace`.
fn is_public_suffix(label: &str) -> bool {
    const TLDS: [&str; 24] = [
        "com",
        "org",
        "net",
        "io",
        "dev",
        "app",
        "edu",
        "gov",
        "info",
        "biz",
        "co",
        "us",
        "uk",
        "de",
        "fr",
        "eu",
        "cloud",
        "ai",
        "me",
        "local",
        "internal",
        "localhost",
        "test",
        "example",
    ];
    TLDS.contains(&label)
}

/// Splits `host:port` (also `[v6]:port`); the port is `None` when absent or not a number.
pub fn split_authority(authority: &str) -> (&str, Option<u16>) {
    if let Some(rest) = authority.strip_prefix('[') {
        if let Some((ip, after)) = rest.split_once(']') {
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return (ip, port);
        }
        return (authority, None);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host, Some(port)),
            Err(_) => (authority, None),
        },
        _ => (authority, None),
    }
}

/// Does a (qualified) configuration host match a (qualified) request host?
/// `*` matches everything; `*.suffix` matches any name ending in `.suffix`.
pub fn host_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        // `*.example.com` matches `a.example.com` and `a.b.example.com`, not `example.com`.
        return host.len() > suffix.len() && host.ends_with(suffix);
    }
    pattern.eq_ignore_ascii_case(host)
}

/// Canonical FQDN for a request authority sent by a client in `client_namespace`:
/// the port is dropped and short forms are expanded like Kubernetes DNS would.
pub fn authority_to_host(authority: &str, client_namespace: &str) -> String {
    let (host, _) = split_authority(authority);
    qualify(host, client_namespace)
}

/// Does a request authority (`reviews:9080`, `reviews.default`, FQDN, ...) from a client in
/// `client_namespace` name the configuration host `pattern` (already qualified)?
pub fn authority_matches(pattern: &str, authority: &str, client_namespace: &str) -> bool {
    host_matches(pattern, &authority_to_host(authority, client_namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qualification_table() {
        let cases = [
            ("reviews", "default", "reviews.default.svc.cluster.local"),
            ("reviews", "bookinfo", "reviews.bookinfo.svc.cluster.local"),
            (
                "reviews.default",
                "other",
                "reviews.default.svc.cluster.local",
            ),
            (
                "reviews.default.svc",
                "x",
                "reviews.default.svc.cluster.local",
            ),
            (
                "reviews.default.svc.cluster.local",
                "x",
                "reviews.default.svc.cluster.local",
            ),
            ("Reviews", "default", "reviews.default.svc.cluster.local"),
            ("www.googleapis.com", "default", "www.googleapis.com"),
            ("httpbin.org", "default", "httpbin.org"),
            ("*", "default", "*"),
            ("*.example.com", "default", "*.example.com"),
            ("10.0.0.7", "default", "10.0.0.7"),
            ("::1", "default", "::1"),
        ];
        for (host, ns, expected) in cases {
            assert_eq!(qualify(host, ns), expected, "{host} in {ns}");
        }
    }

    #[test]
    fn authority_table() {
        let fqdn = "reviews.default.svc.cluster.local";
        let cases = [
            (fqdn, "reviews", "default", true),
            (fqdn, "reviews:9080", "default", true),
            (fqdn, "reviews.default", "other", true),
            (fqdn, "reviews.default:9080", "other", true),
            (fqdn, "reviews.default.svc:9080", "other", true),
            (
                fqdn,
                "reviews.default.svc.cluster.local:9080",
                "other",
                true,
            ),
            (fqdn, "REVIEWS:9080", "default", true),
            (fqdn, "reviews", "other", false),
            (fqdn, "ratings:9080", "default", false),
            ("*", "anything.example.com:8080", "default", true),
            ("*.example.com", "a.example.com", "default", true),
            ("*.example.com", "a.b.example.com:443", "default", true),
            ("*.example.com", "example.com", "default", false),
            (
                "www.googleapis.com",
                "www.googleapis.com:80",
                "default",
                true,
            ),
            ("www.googleapis.com", "googleapis.com", "default", false),
        ];
        for (pattern, authority, ns, expected) in cases {
            assert_eq!(
                authority_matches(pattern, authority, ns),
                expected,
                "{pattern} vs {authority} from {ns}"
            );
        }
    }

    #[test]
    fn splits_ports() {
        assert_eq!(split_authority("reviews:9080"), ("reviews", Some(9080)));
        assert_eq!(split_authority("reviews"), ("reviews", None));
        assert_eq!(split_authority("[::1]:80"), ("::1", Some(80)));
        assert_eq!(split_authority("::1"), ("::1", None));
        assert_eq!(split_authority("a:b"), ("a:b", None));
    }
}
