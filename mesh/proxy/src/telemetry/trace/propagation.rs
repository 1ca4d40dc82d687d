//! Trace context on the wire: W3C `traceparent`/`tracestate`, and Zipkin's B3 in both
//! forms (the `x-b3-*` headers and the single `b3` header). Reading takes the first
//! valid one of `traceparent`, `b3`, `x-b3-*`; writing always sets `traceparent` (and
//! `tracestate` when there is one), and B3 in the forms that came in, so an app that
//! forwards only B3 (as Bookinfo's services may) still hands the next hop our span as
//! its parent.
//!
//! Hand-written rather than the SDK's propagators: those go through a `HashMap`
//! carrier per request, this reads and writes the `HeaderMap` in place.

use std::str::FromStr;

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// `traceparent`.
pub static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate`.
pub static TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The single B3 header.
pub static B3: HeaderName = HeaderName::from_static("b3");
/// B3 multi-header: trace id.
pub static X_B3_TRACEID: HeaderName = HeaderName::from_static("x-b3-traceid");
/// B3 multi-header: span id.
pub static X_B3_SPANID: HeaderName = HeaderName::from_static("x-b3-spanid");
/// B3 multi-header: parent span id.
pub static X_B3_PARENTSPANID: HeaderName = HeaderName::from_static("x-b3-parentspanid");
/// B3 multi-header: sampling decision.
pub static X_B3_SAMPLED: HeaderName = HeaderName::from_static("x-b3-sampled");
/// B3 multi-header: debug flag (implies sampled).
pub static X_B3_FLAGS: HeaderName = HeaderName::from_static("x-b3-flags");

/// The trace context a request arrived with, and the forms it came in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Incoming {
    /// The caller's span, if a valid context came in.
    pub parent: Option<SpanContext>,
    /// No sampling decision came in (B3 lets the receiver decide): the local sampler's
    /// root decision applies.
    pub deferred: bool,
    /// `x-b3-*` headers came in.
    pub b3_multi: bool,
    /// The single `b3` header came in.
    pub b3_single: bool,
    /// The B3 trace id was 64 bits (16 hex digits): written back the same way.
    pub b3_short: bool,
}

fn text<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A B3 trace id: 32 hex digits, or 16 (the high half zero). `None` if invalid.
fn b3_trace_id(s: &str) -> Option<(TraceId, bool)> {
    let short = match s.len() {
        16 => true,
        32 => false,
        _ => return None,
    };
    if !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let id = TraceId::from_hex(s).ok()?;
    (id != TraceId::INVALID).then_some((id, short))
}

fn span_id(s: &str) -> Option<SpanId> {
    if !is_hex(s, 16) {
        return None;
    }
    SpanId::from_hex(s).ok().filter(|id| *id != SpanId::INVALID)
}

/// The value of a hex digit.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Up to 32 hex digits as a number, `None` if any is not one.
fn hex_number(digits: &[u8]) -> Option<u128> {
    digits.iter().try_fold(0u128, |n, &b| {
        hex_digit(b).map(|d| (n << 4) | u128::from(d))
    })
}

/// `00-<trace id>-<span id>-<flags>`; later versions are read by their first four
/// fields, as the W3C spec asks; version `ff` is invalid. Read in one pass over the
/// bytes: every request that comes with one pays for this, sampled or not.
fn traceparent(s: &[u8]) -> Option<(TraceId, SpanId, TraceFlags)> {
    if s.len() < 55 || s[2] != b'-' || s[35] != b'-' || s[52] != b'-' {
        return None;
    }
    let version = hex_number(&s[..2])?;
    let more = s.len() > 55;
    if version == 0xff || (version == 0 && more) || (more && s[55] != b'-') {
        return None;
    }
    let trace = hex_number(&s[3..35]).filter(|t| *t != 0)?;
    let span = hex_number(&s[36..52]).filter(|s| *s != 0)?;
    let flags = hex_number(&s[53..55])?;
    Some((
        TraceId::from(trace),
        SpanId::from(span as u64),
        TraceFlags::new(flags as u8 & 1),
    ))
}

fn sampled_flag(s: &str) -> Option<bool> {
    match s {
        "1" | "true" | "d" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

/// Reads the trace context of a request.
pub fn extract(headers: &HeaderMap) -> Incoming {
    let mut incoming = Incoming {
        b3_multi: headers.contains_key(&X_B3_TRACEID),
        b3_single: headers.contains_key(&B3),
        ..Incoming::default()
    };
    let traceparent_value = headers.get(&TRACEPARENT).map(|v| v.as_bytes().trim_ascii());
    if let Some((trace, span, flags)) = traceparent_value.and_then(traceparent) {
        let state = text(headers, &TRACESTATE)
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        incoming.parent = Some(SpanContext::new(trace, span, flags, true, state));
        if let Some(b3) = text(headers, &X_B3_TRACEID) {
            incoming.b3_short = b3.len() == 16;
        }
        return incoming;
    }
    // Single header: `{trace}-{span}[-{sampled}[-{parent}]]`, or a bare decision.
    if let Some(b3) = text(headers, &B3) {
        let mut parts = b3.split('-');
        if let (Some(t), Some(s)) = (parts.next(), parts.next())
            && let (Some((trace, short)), Some(span)) = (b3_trace_id(t), span_id(s))
        {
            let sampled = parts.next().and_then(sampled_flag);
            incoming.parent = Some(remote(trace, span, sampled));
            incoming.deferred = sampled.is_none();
            incoming.b3_short = short;
            return incoming;
        }
    }
    if let (Some((trace, short)), Some(span)) = (
        text(headers, &X_B3_TRACEID).and_then(b3_trace_id),
        text(headers, &X_B3_SPANID).and_then(span_id),
    ) {
        let debug = text(headers, &X_B3_FLAGS) == Some("1");
        let sampled = if debug {
            Some(true)
        } else {
            text(headers, &X_B3_SAMPLED).and_then(sampled_flag)
        };
        incoming.parent = Some(remote(trace, span, sampled));
        incoming.deferred = sampled.is_none();
        incoming.b3_short = short;
    }
    incoming
}

fn remote(trace: TraceId, span: SpanId, sampled: Option<bool>) -> SpanContext {
    let flags = if sampled == Some(true) {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::NOT_SAMPLED
    };
    SpanContext::new(trace, span, flags, true, TraceState::default())
}

/// Replaces every value of `name` (a `HeaderMap`'s `extend` would append one).
fn set(headers: &mut HeaderMap, name: &HeaderName, value: String) {
    if let Ok(v) = HeaderValue::try_from(value) {
        headers.insert(name.clone(), v);
    }
}

/// `00-<trace id>-<span id>-<flags>`, written out by hand: `format!` of the ids costs
/// thousands of instructions, on every request (sampled or not) at every hop.
fn traceparent_bytes(span: &SpanContext) -> [u8; 55] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    fn hex(out: &mut [u8], bytes: &[u8]) {
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair[0] = HEX[usize::from(b >> 4)];
            pair[1] = HEX[usize::from(b & 0x0f)];
        }
    }
    let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
    hex(&mut buf[3..35], &span.trace_id().to_bytes());
    hex(&mut buf[36..52], &span.span_id().to_bytes());
    hex(&mut buf[53..55], &[span.trace_flags().to_u8()]);
    buf
}

/// Writes `span` (whose parent is `parent`, if any) as the context of the next hop.
pub fn inject(
    headers: &mut HeaderMap,
    span: &SpanContext,
    parent: Option<SpanId>,
    incoming: &Incoming,
) {
    if !span.is_valid() {
        return;
    }
    if let Ok(value) = HeaderValue::from_bytes(&traceparent_bytes(span)) {
        headers.insert(TRACEPARENT.clone(), value);
    }
    let state = span.trace_state().header();
    if state.is_empty() {
        headers.remove(&TRACESTATE);
    } else {
        set(headers, &TRACESTATE, state);
    }
    b3(headers, span, parent, incoming);
}

/// Writes B3 in the forms that came in (none when none did).
fn b3(headers: &mut HeaderMap, span: &SpanContext, parent: Option<SpanId>, incoming: &Incoming) {
    if !incoming.b3_multi && !incoming.b3_single {
        return;
    }
    let trace = span.trace_id();
    let id = span.span_id();
    let sampled = span.is_sampled();
    let trace_hex = if incoming.b3_short {
        let full = trace.to_string();
        full[16..].to_owned()
    } else {
        trace.to_string()
    };
    let bit = if sampled { "1" } else { "0" };
    if incoming.b3_multi {
        set(headers, &X_B3_TRACEID, trace_hex.clone());
        set(headers, &X_B3_SPANID, id.to_string());
        headers.insert(X_B3_SAMPLED.clone(), HeaderValue::from_static(bit));
        match parent {
            Some(p) => {
                set(headers, &X_B3_PARENTSPANID, p.to_string());
            }
            None => {
                headers.remove(&X_B3_PARENTSPANID);
            }
        }
    }
    if incoming.b3_single {
        let single = match parent {
            Some(p) => format!("{trace_hex}-{id}-{bit}-{p}"),
            None => format!("{trace_hex}-{id}-{bit}"),
        };
        set(headers, &B3, single);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const SPAN: &str = "00f067aa0ba902b7";

    #[test]
    fn reads_traceparent_and_tracestate() {
        let h = map(&[
            ("traceparent", &format!("00-{TRACE}-{SPAN}-01")),
            ("tracestate", "congo=t61rcWkgMzE"),
        ]);
        let i = extract(&h);
        let p = i.parent.unwrap();
        assert_eq!(p.trace_id().to_string(), TRACE);
        assert_eq!(p.span_id().to_string(), SPAN);
        assert!(p.is_sampled() && p.is_remote() && !i.deferred);
        assert_eq!(p.trace_state().header(), "congo=t61rcWkgMzE");
    }

    #[test]
    fn refuses_bad_traceparents() {
        for bad in [
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{TRACE}-{SPAN}-1"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            "garbage".to_owned(),
        ] {
            assert_eq!(
                extract(&map(&[("traceparent", &bad)])).parent,
                None,
                "{bad}"
            );
        }
        // A later version is read by its first four fields.
        let later = format!("01-{TRACE}-{SPAN}-00-more");
        assert!(extract(&map(&[("traceparent", &later)])).parent.is_some());
    }

    #[test]
    fn reads_b3_both_forms() {
        let single = extract(&map(&[("b3", &format!("{TRACE}-{SPAN}-1"))]));
        assert!(single.b3_single && single.parent.as_ref().unwrap().is_sampled());
        let short = extract(&map(&[("b3", &format!("{}-{SPAN}", &TRACE[16..]))]));
        assert!(short.b3_short && short.deferred);
        let multi = extract(&map(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-sampled", "0"),
        ]));
        let p = multi.parent.unwrap();
        assert!(multi.b3_multi && !p.is_sampled() && !multi.deferred);
        let debug = extract(&map(&[
            ("x-b3-traceid", TRACE),
            ("x-b3-spanid", SPAN),
            ("x-b3-flags", "1"),
        ]));
        assert!(debug.parent.unwrap().is_sampled());
        assert_eq!(extract(&map(&[("b3", "1")])).parent, None);
    }

    #[test]
    fn writes_the_forms_that_came_in() {
        let mut h = map(&[
            ("x-b3-traceid", &TRACE[16..]),
            ("x-b3-spanid", SPAN),
            ("x-b3-sampled", "1"),
            ("b3", &format!("{}-{SPAN}-1", &TRACE[16..])),
        ]);
        let incoming = extract(&h);
        let parent = incoming.parent.clone().unwrap();
        let child = SpanContext::new(
            parent.trace_id(),
            SpanId::from_hex("1111111111111111").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        inject(&mut h, &child, Some(parent.span_id()), &incoming);
        assert_eq!(
            h["traceparent"],
            format!("00-0000000000000000{}-1111111111111111-01", &TRACE[16..])
        );
        assert_eq!(h["x-b3-traceid"], &TRACE[16..]);
        assert_eq!(h["x-b3-spanid"], "1111111111111111");
        assert_eq!(h["x-b3-parentspanid"], SPAN);
        assert_eq!(
            h["b3"],
            format!("{}-1111111111111111-1-{SPAN}", &TRACE[16..])
        );
        assert!(!h.contains_key("tracestate"));
        // What came in is replaced, not added to.
        let mut again = map(&[("traceparent", &format!("00-{TRACE}-{SPAN}-01"))]);
        let incoming = extract(&again);
        inject(&mut again, &child, None, &incoming);
        assert_eq!(again.get_all("traceparent").iter().count(), 1);
        assert!(
            again["traceparent"]
                .to_str()
                .unwrap()
                .contains("1111111111111111")
        );
        // Nothing of B3 is added when none came in.
        let mut plain = HeaderMap::new();
        inject(&mut plain, &child, None, &Incoming::default());
        assert!(plain.contains_key("traceparent") && !plain.contains_key("x-b3-traceid"));
    }
}
