//! Header handling shared by the listeners: hop-by-hop stripping, request ids, and
//! VirtualService header manipulation.

use http::{HeaderMap, HeaderName, HeaderValue};
use mesh_api::networking::virtual_service::HeaderOperations;
use rand::Rng;

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

/// The request id, generating a random UUID v4 when the request has none (tracing and
/// access logs join on it).
pub fn ensure_request_id(headers: &mut HeaderMap) -> String {
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        return id.to_owned();
    }
    let b: [u8; 16] = rand::rng().random();
    let id = format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]]),
    );
    if let Ok(v) = HeaderValue::from_str(&id) {
        headers.insert("x-request-id", v);
    }
    id
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
        let id = ensure_request_id(&mut h);
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_eq!(ensure_request_id(&mut h), id);
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
