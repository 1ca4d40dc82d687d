//! The headers each Bookinfo service copies from its incoming request to its outbound
//! calls. Forwarding them is what lets a mesh join spans into one trace and lets routing
//! rules that match `end-user: jason` apply on every hop.

use http::HeaderMap;

/// Headers productpage copies verbatim to details, reviews and ratings.
///
/// The original re-emits the B3 trio through an OpenTelemetry propagator; copying them
/// verbatim is compatible with every test of the original. `x-b3-parentspanid`,
/// `x-b3-flags` and an incoming `end-user` are deliberately absent: productpage sets
/// `end-user` from its own session, so a client cannot spoof the identity.
pub const PRODUCTPAGE_FORWARD: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "sw8",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// Headers reviews (and details, for its external call) copy to their upstream.
/// Includes `end-user`: the ratings delay and abort rules match it on the reviews →
/// ratings hop.
pub const SERVICE_FORWARD: &[&str] = &[
    "x-request-id",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-trace-bin",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "sw8",
    "end-user",
    "user-agent",
    "cookie",
    "authorization",
    "jwt",
];

/// Copies every header named in `names` (all values, in order) from `incoming`.
pub fn forwarded(incoming: &HeaderMap, names: &[&str]) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in names {
        for value in incoming.get_all(*name) {
            if let Ok(n) = http::HeaderName::from_bytes(name.as_bytes()) {
                out.append(n, value.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_only_listed_headers() {
        let mut h = HeaderMap::new();
        h.insert("x-request-id", "abc".parse().unwrap());
        h.insert("x-b3-parentspanid", "p".parse().unwrap());
        h.insert("end-user", "mallory".parse().unwrap());
        h.insert("x-foo", "bar".parse().unwrap());
        let out = forwarded(&h, PRODUCTPAGE_FORWARD);
        assert_eq!(out.len(), 1);
        assert_eq!(out["x-request-id"], "abc");
        let out = forwarded(&h, SERVICE_FORWARD);
        assert_eq!(out.len(), 3);
        assert_eq!(out["end-user"], "mallory");
    }
}
