//! Request matching: does an HTTP request satisfy a route's `match` block?
//!
//! Pure functions over a borrowed view of the request, so the proxy can call them on its
//! hot path without copying. Semantics follow Envoy as programmed by istiod:
//! `match` entries are ORed, fields inside one entry ANDed, the first matching rule wins;
//! `uri` is matched against the path **without** the query string.

use http::HeaderMap;

use crate::host::split_authority;
use crate::networking::virtual_service::{HttpMatchRequest, HttpRoute, VirtualService};
use crate::string_match::StringMatch;

/// What the router looks at in a request.
#[derive(Debug, Clone, Copy)]
pub struct RequestInfo<'a> {
    /// `GET`, `POST`, ... (case-sensitive, as Envoy matches `:method`).
    pub method: &'a str,
    /// `http` or `https`.
    pub scheme: &'a str,
    /// Host header / `:authority`, possibly with a port.
    pub authority: &'a str,
    /// Path as sent, possibly with `?query`.
    pub path: &'a str,
    /// Port the request was addressed to; derived from `authority` when `None`.
    pub port: Option<u16>,
    /// Request headers.
    pub headers: &'a HeaderMap,
}

impl<'a> RequestInfo<'a> {
    /// Path without the query string.
    pub fn path_only(&self) -> &'a str {
        self.path.split_once('?').map_or(self.path, |(p, _)| p)
    }

    /// The query string (without `?`), empty when absent.
    pub fn query(&self) -> &'a str {
        self.path.split_once('?').map_or("", |(_, q)| q)
    }

    /// The addressed port: explicit, else from the authority.
    pub fn effective_port(&self) -> Option<u16> {
        self.port.or_else(|| split_authority(self.authority).1)
    }

    /// Header value; several values of one header are joined with `,` (as Envoy does).
    /// `None` when absent or not valid UTF-8.
    pub fn header(&self, name: &str) -> Option<String> {
        let mut values = self.headers.get_all(name).iter();
        let first = values.next()?.to_str().ok()?;
        let mut joined = first.to_owned();
        for value in values {
            joined.push(',');
            joined.push_str(value.to_str().ok()?);
        }
        Some(joined)
    }

    /// First value of a query parameter; `Some("")` for `?key` without a value.
    pub fn query_param(&self, name: &str) -> Option<&'a str> {
        self.query()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value)
    }
}

/// Does one `match` entry accept the request (all its fields ANDed)?
pub fn match_request(m: &HttpMatchRequest, req: &RequestInfo<'_>) -> bool {
    let ignore_case = m.ignore_uri_case == Some(true);
    if let Some(uri) = &m.uri
        && !uri.matches(req.path_only(), ignore_case)
    {
        return false;
    }
    let simple: [(&Option<StringMatch>, &str); 3] = [
        (&m.scheme, req.scheme),
        (&m.method, req.method),
        (&m.authority, req.authority),
    ];
    if simple
        .iter()
        .any(|(pattern, value)| pattern.as_ref().is_some_and(|p| !p.matches(value, false)))
    {
        return false;
    }
    if let Some(port) = m.port
        && req.effective_port().map(u32::from) != Some(port)
    {
        return false;
    }
    let header_ok = |name: &String, pattern: &StringMatch| {
        req.header(name)
            .is_some_and(|value| pattern.matches(&value, false))
    };
    if !m.headers.iter().all(|(name, p)| header_ok(name, p)) {
        return false;
    }
    if m.without_headers.iter().any(|(name, p)| header_ok(name, p)) {
        return false;
    }
    m.query_params.iter().all(|(name, pattern)| {
        req.query_param(name)
            .is_some_and(|value| pattern.matches(value, false))
    })
}

/// Does a rule accept the request? No `match` means every request.
pub fn matches_any(matches: &[HttpMatchRequest], req: &RequestInfo<'_>) -> bool {
    matches.is_empty() || matches.iter().any(|m| match_request(m, req))
}

/// First HTTP rule of a (not compiled) VirtualService that accepts the request.
pub fn select_http_route<'v>(
    vs: &'v VirtualService,
    req: &RequestInfo<'_>,
) -> Option<(usize, &'v HttpRoute)> {
    vs.spec
        .http
        .iter()
        .enumerate()
        .find(|(_, route)| matches_any(&route.matches, req))
}
