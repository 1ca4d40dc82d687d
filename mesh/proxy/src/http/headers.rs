//! Header handling shared by the listeners: hop-by-hop stripping, request ids, and
//! VirtualService header manipulation.

use http::{HeaderMap, HeaderName, HeaderValue};
use mesh_api::networking::virtual_service::HeaderOperations;
use rand::Rng;

/// `x-request-id`, which tracing and access logs join on.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// `x-envoy-attempt-count`: which try of a request this is (1 for the first).
pub static X_ENVOY_ATTEMPT_COUNT: HeaderName = HeaderName::from_static("x-envoy-attempt-count");
/// `x-envoy-upstream-service-time`: milliseconds the upstream took to answer.
pub static X_ENVOY_UPSTREAM_SERVICE_TIME: HeaderName =
    HeaderName::from_static("x-envoy-upstream-service-time");
/// `grpc-status`, which retry policies (`cancelled`, `unavailable`, ...) read.
pub static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// Header names that cross a Bookinfo mesh on nearly every request and that the `http`
/// crate has no constant for: the mesh's own and the tracing headers the services
/// propagate. Parsed from the wire, each of these would cost an allocation per request;
/// [`name`] hands out these shared ones instead.
static KNOWN: [HeaderName; 22] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("x-envoy-attempt-count"),
    HeaderName::from_static("x-envoy-upstream-service-time"),
    HeaderName::from_static("end-user"),
    HeaderName::from_static("x-b3-traceid"),
    HeaderName::from_static("x-b3-spanid"),
    HeaderName::from_static("x-b3-parentspanid"),
    HeaderName::from_static("x-b3-sampled"),
    HeaderName::from_static("x-b3-flags"),
    HeaderName::from_static("b3"),
    HeaderName::from_static("x-ot-span-context"),
    HeaderName::from_static("traceparent"),
    HeaderName::from_static("tracestate"),
    HeaderName::from_static("x-datadog-trace-id"),
    HeaderName::from_static("x-datadog-parent-id"),
    HeaderName::from_static("x-datadog-sampling-priority"),
    HeaderName::from_static("x-cloud-trace-context"),
    HeaderName::from_static("grpc-trace-bin"),
    HeaderName::from_static("sw8"),
    HeaderName::from_static("jwt"),
    HeaderName::from_static("x-forwarded-for"),
    HeaderName::from_static("x-forwarded-proto"),
];

/// A header name read from the wire (any letter case): one of [`KNOWN`] without
/// allocating, else as `HeaderName::from_bytes` makes it.
pub fn name(bytes: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    for known in &KNOWN {
        let k = known.as_str().as_bytes();
        if k.len() == bytes.len() && k.eq_ignore_ascii_case(bytes) {
            return Ok(known.clone());
        }
    }
    HeaderName::from_bytes(bytes)
}

/// Headers that describe one connection, not the request: never forwarded (RFC 9110
/// section 7.6.1), plus the proxy-only ones an `HTTP_PROXY` client sends.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes hop-by-hop headers, including those named by `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Most requests carry none (or only `connection`): one pass over the names is
    // cheaper than nine removals that each hash a name.
    if !headers.keys().any(|k| HOP_BY_HOP.contains(&k.as_str())) {
        return;
    }
    let named: Vec<HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Adds a random UUID v4 `x-request-id` when the request has none (tracing and access
/// logs join on it).
pub fn ensure_request_id(headers: &mut HeaderMap) {
    if headers.contains_key(&X_REQUEST_ID) {
        return;
    }
    let mut b = rand::rng().random::<u128>().to_le_bytes();
    b[6] = (b[6] & 0x0f) | 0x40; // version 4
    b[8] = (b[8] & 0x3f) | 0x80; // RFC 4122 variant
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 36];
    let mut at = 0;
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            id[at] = b'-';
            at += 1;
        }
        id[at] = HEX[usize::from(byte >> 4)];
        id[at + 1] = HEX[usize::from(byte & 0x0f)];
        at += 2;
    }
    if let Ok(v) = HeaderValue::from_bytes(&id) {
        headers.insert(X_REQUEST_ID.clone(), v);
    }
}

/// `n` in decimal as a header value, in one allocation (`HeaderValue::from(u64)` takes
/// two).
pub fn decimal(n: u64) -> HeaderValue {
    match HeaderValue::from_bytes(digits(n, &mut [0; 20])) {
        Ok(v) => v,
        // Digits are always a valid value.
        Err(_) => HeaderValue::from_static("0"),
    }
}

/// `n` in decimal, written into the end of `buf`.
pub fn digits(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

/// Applies `set`, `add` and `remove`, in that order, as Envoy does.
pub fn apply(ops: Option<&HeaderOperations>, headers: &mut HeaderMap) {
    let Some(ops) = ops else { return };
    for (k, v) in &ops.set {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.insert(n, v);
        }
    }
    for (k, v) in &ops.add {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            headers.append(n, v);
        }
    }
    for k in &ops.remove {
        headers.remove(k.as_str());
    }
}

/// A header as a string, empty when absent or not text.
pub fn text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_are_the_shared_ones_in_any_case_and_others_still_parse() {
        assert_eq!(name(b"X-Request-ID").unwrap(), X_REQUEST_ID);
        assert_eq!(name(b"x-b3-sampled").unwrap().as_str(), "x-b3-sampled");
        assert_eq!(
            name(b"Content-Length").unwrap(),
            http::header::CONTENT_LENGTH
        );
        assert_eq!(name(b"X-Custom").unwrap().as_str(), "x-custom");
        assert!(name(b"bad name").is_err());
        for known in &KNOWN {
            assert_eq!(
                HeaderName::from_bytes(known.as_str().as_bytes()).unwrap(),
                *known,
                "{known} is written in lower case"
            );
        }
    }

    #[test]
    fn strips_connection_headers_and_keeps_the_rest() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-private".parse().unwrap());
        h.insert("x-private", "1".parse().unwrap());
        h.insert("proxy-connection", "keep-alive".parse().unwrap());
        h.insert("end-user", "jason".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert_eq!(h["end-user"], "jason");
    }

    #[test]
    fn request_ids_are_kept_or_made() {
        let mut h = HeaderMap::new();
        ensure_request_id(&mut h);
        let id = text(&h, "x-request-id");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert!(
            matches!(&id[19..20], "8" | "9" | "a" | "b"),
            "variant: {id}"
        );
        assert_eq!(id.matches('-').count(), 4, "{id}");
        assert!(
            id.chars()
                .all(|c| c == '-' || c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{id}"
        );
        ensure_request_id(&mut h);
        assert_eq!(text(&h, "x-request-id"), id, "an id is kept");
        let mut other = HeaderMap::new();
        ensure_request_id(&mut other);
        assert_ne!(text(&other, "x-request-id"), id, "ids are random");
    }

    #[test]
    fn header_operations() {
        let mut h = HeaderMap::new();
        h.insert("a", "1".parse().unwrap());
        h.insert("gone", "x".parse().unwrap());
        let ops = HeaderOperations {
            set: [("a".to_owned(), "2".to_owned())].into(),
            add: [("b".to_owned(), "3".to_owned())].into(),
            remove: vec!["gone".to_owned()],
        };
        apply(Some(&ops), &mut h);
        assert_eq!(
            (h["a"].to_str().unwrap(), h["b"].to_str().unwrap()),
            ("2", "3")
        );
        assert!(h.get("gone").is_none());
    }
}
