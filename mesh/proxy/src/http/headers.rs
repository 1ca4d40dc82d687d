//! Header handling shared by the listeners: hop-by-hop stripping, request ids, and
//! VirtualService header manipulation; and the two ways a request's headers cost no
//! allocation in the common case: header maps used again, and values the proxy makes
//! itself cut from a shared block.

use std::cell::RefCell;

use bytes::BytesMut;
use http::header::InvalidHeaderValue;
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
static KNOWN: [HeaderName; 24] = [
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
    HeaderName::from_static("x-envoy-peer-metadata-id"),
    HeaderName::from_static("x-envoy-peer-metadata"),
];

/// A header name read from the wire (any letter case): one of [`KNOWN`] without
/// allocating, else as `HeaderName::from_bytes` makes it.
pub fn name(bytes: &[u8]) -> Result<HeaderName, http::header::InvalidHeaderName> {
    if may_be_known(bytes) {
        for known in &KNOWN {
            let k = known.as_str().as_bytes();
            if k.len() == bytes.len() && k.eq_ignore_ascii_case(bytes) {
                return Ok(known.clone());
            }
        }
    }
    HeaderName::from_bytes(bytes)
}

/// Whether `bytes` starts with a letter some name of [`KNOWN`] starts with: the names
/// the `http` crate knows (`host`, `content-length`, `date`, ...) skip the scan of
/// [`KNOWN`], which cost more instructions per request than parsing the head.
fn may_be_known(bytes: &[u8]) -> bool {
    matches!(
        bytes.first().map(u8::to_ascii_lowercase),
        Some(b'x' | b'e' | b'b' | b't' | b'g' | b's' | b'j')
    )
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
    if let Ok(v) = made_value(&id) {
        headers.insert(X_REQUEST_ID.clone(), v);
    }
}

/// `n` in decimal as a header value, cut from the shared block ([`made_value`]).
pub fn decimal(n: u64) -> HeaderValue {
    match made_value(digits(n, &mut [0; 20])) {
        Ok(v) => v,
        // Digits are always a valid value.
        Err(_) => HeaderValue::from_static("0"),
    }
}

/// How much room a block of [`made_value`]s has.
const VALUE_BLOCK: usize = 4 * 1024;

thread_local! {
    /// The block the values this thread makes are cut from.
    static VALUES: RefCell<BytesMut> = RefCell::new(BytesMut::new());
}

/// A header value the proxy makes itself (a request ID, a number of milliseconds), cut
/// from a block shared with the values made before it. A value is a `Bytes` of its own
/// either way; one allocation per block of 4 KB instead of one per value, for the two
/// the proxy adds to every request. A block lives until the last value cut from it is
/// dropped, and values live as long as their request.
fn made_value(bytes: &[u8]) -> Result<HeaderValue, InvalidHeaderValue> {
    let shared = VALUES.with_borrow_mut(|block| {
        if block.capacity() - block.len() < bytes.len() {
            *block = BytesMut::with_capacity(VALUE_BLOCK.max(bytes.len()));
        }
        block.extend_from_slice(bytes);
        block.split().freeze()
    });
    HeaderValue::from_maybe_shared(shared)
}

/// Most header maps a thread keeps for reuse, and the largest one it keeps.
const KEPT_MAPS: usize = 64;
const KEPT_MAP_CAPACITY: usize = 64;

thread_local! {
    /// Emptied header maps, for the next request or response.
    static MAPS: RefCell<Vec<HeaderMap>> = const { RefCell::new(Vec::new()) };
}

/// An empty header map with room for `capacity` headers: one that [`recycle`] took back
/// when there is one. A map costs two allocations, and every request through a sidecar
/// needs two of them (the request's and the response's) while dropping two others.
pub fn map_with_capacity(capacity: usize) -> HeaderMap {
    match MAPS.with_borrow_mut(Vec::pop) {
        Some(mut map) => {
            map.reserve(capacity);
            map
        }
        None => HeaderMap::with_capacity(capacity),
    }
}

/// Takes back the map of a request or response that is done with, for
/// [`map_with_capacity`] (a map grown unusually large is dropped instead).
pub fn recycle(mut map: HeaderMap) {
    if map.capacity() > KEPT_MAP_CAPACITY {
        return;
    }
    map.clear();
    MAPS.with_borrow_mut(|maps| {
        if maps.len() < KEPT_MAPS {
            maps.push(map);
        }
    });
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
    fn a_recycled_map_comes_back_empty_with_room() {
        let mut m = map_with_capacity(8);
        m.insert("x-a", HeaderValue::from_static("1"));
        recycle(m);
        let again = map_with_capacity(12);
        assert!(again.is_empty());
        assert!(again.capacity() >= 12);
    }

    #[test]
    fn values_cut_from_one_block_stay_apart() {
        let values: Vec<HeaderValue> = (0..300).map(decimal).collect();
        for (n, v) in values.iter().enumerate() {
            assert_eq!(v.to_str().unwrap(), n.to_string());
        }
        assert!(made_value(b"bad\nvalue").is_err());
    }

    #[test]
    fn every_known_name_passes_the_first_letter_check() {
        for known in &KNOWN {
            assert!(may_be_known(known.as_str().as_bytes()), "{known}");
            assert!(
                may_be_known(known.as_str().to_uppercase().as_bytes()),
                "{known}"
            );
        }
        assert!(!may_be_known(b"host"));
        assert!(!may_be_known(b"Content-Length"));
        assert!(!may_be_known(b""));
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
