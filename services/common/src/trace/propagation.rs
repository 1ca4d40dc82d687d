//! Reading the trace context a request arrived with: W3C `traceparent`/`tracestate`
//! first, then Zipkin's single `b3` header, then the `x-b3-*` headers, the order the
//! mesh's proxy reads them in. Nothing is written here: the services forward these
//! headers verbatim (see `headers`), so the context they carry on is the caller's.

use std::str::FromStr;

use http::HeaderMap;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

/// The caller's span, and whether it left the sampling decision to us (B3 without a
/// sampled flag).
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The caller's span context (remote, valid).
    pub parent: SpanContext,
    /// No decision came in: the local sampler decides as for a new trace.
    pub deferred: bool,
}

fn text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A B3 trace id: 32 hex digits, or 16 (the high half zero).
fn b3_trace_id(s: &str) -> Option<TraceId> {
    if !(is_hex(s, 16) || is_hex(s, 32)) {
        return None;
    }
    TraceId::from_hex(s).ok().filter(|t| *t != TraceId::INVALID)
}

fn span_id(s: &str) -> Option<SpanId> {
    if !is_hex(s, 16) {
        return None;
    }
    SpanId::from_hex(s).ok().filter(|id| *id != SpanId::INVALID)
}

/// `00-<trace id>-<span id>-<flags>`; later versions are read by their first four
/// fields, as the W3C spec asks; version `ff` is invalid.
fn traceparent(s: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let mut parts = s.split('-');
    let version = parts.next()?;
    let (trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?);
    if !is_hex(version, 2) || version.eq_ignore_ascii_case("ff") {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if !is_hex(trace, 32) || !is_hex(flags, 2) {
        return None;
    }
    let trace = TraceId::from_hex(trace)
        .ok()
        .filter(|t| *t != TraceId::INVALID)?;
    let span = span_id(span)?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some((trace, span, TraceFlags::new(flags & 1)))
}

fn sampled_flag(s: &str) -> Option<bool> {
    match s {
        "1" | "true" | "d" => Some(true),
        "0" | "false" => Some(false),
        _ => None,
    }
}

fn remote(trace: TraceId, span: SpanId, sampled: Option<bool>) -> Incoming {
    let flags = if sampled == Some(true) {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::NOT_SAMPLED
    };
    Incoming {
        parent: SpanContext::new(trace, span, flags, true, TraceState::default()),
        deferred: sampled.is_none(),
    }
}

/// The first valid trace context of `headers`, if any.
pub fn extract(headers: &HeaderMap) -> Option<Incoming> {
    if let Some((trace, span, flags)) = text(headers, "traceparent").and_then(traceparent) {
        let state = text(headers, "tracestate")
            .and_then(|s| TraceState::from_str(s).ok())
            .unwrap_or_default();
        return Some(Incoming {
            parent: SpanContext::new(trace, span, flags, true, state),
            deferred: false,
        });
    }
    // Single header: `{trace}-{span}[-{sampled}[-{parent}]]` (a bare decision carries
    // no context).
    if let Some(b3) = text(headers, "b3") {
        let mut parts = b3.split('-');
        if let (Some(t), Some(s)) = (parts.next(), parts.next())
            && let (Some(trace), Some(span)) = (b3_trace_id(t), span_id(s))
        {
            return Some(remote(trace, span, parts.next().and_then(sampled_flag)));
        }
    }
    let trace = text(headers, "x-b3-traceid").and_then(b3_trace_id)?;
    let span = text(headers, "x-b3-spanid").and_then(span_id)?;
    let sampled = if text(headers, "x-b3-flags") == Some("1") {
        Some(true)
    } else {
        text(headers, "x-b3-sampled").and_then(sampled_flag)
    };
    Some(remote(trace, span, sampled))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn traceparent_wins_over_b3() {
        let got = extract(&headers(&[
            (
                "traceparent",
                "00-5e1f0c0ffee0000000000000000b00c5-0123456789abcdef-01",
            ),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ]))
        .unwrap();
        assert_eq!(
            got.parent.trace_id().to_string(),
            "5e1f0c0ffee0000000000000000b00c5"
        );
        assert_eq!(got.parent.span_id().to_string(), "0123456789abcdef");
        assert!(got.parent.is_sampled() && got.parent.is_remote() && !got.deferred);
    }

    #[test]
    fn b3_forms_and_their_decisions() {
        let single = extract(&headers(&[("b3", "80f198ee56343ba8-e457b5a2e4d86bd1-1")])).unwrap();
        assert_eq!(
            single.parent.trace_id().to_string(),
            "000000000000000080f198ee56343ba8"
        );
        assert!(single.parent.is_sampled());
        let multi = extract(&headers(&[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
        ]))
        .unwrap();
        assert!(multi.deferred && !multi.parent.is_sampled());
        let debug = extract(&headers(&[
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("x-b3-spanid", "e457b5a2e4d86bd1"),
            ("x-b3-flags", "1"),
        ]))
        .unwrap();
        assert!(debug.parent.is_sampled() && !debug.deferred);
    }

    #[test]
    fn invalid_contexts_are_ignored() {
        for bad in [
            "00-00000000000000000000000000000000-0123456789abcdef-01",
            "00-5e1f0c0ffee0000000000000000b00c5-0000000000000000-01",
            "ff-5e1f0c0ffee0000000000000000b00c5-0123456789abcdef-01",
            "00-5e1f0c0ffee0000000000000000b00c5-0123456789abcdef-01-extra",
            "garbage",
        ] {
            assert_eq!(extract(&headers(&[("traceparent", bad)])), None, "{bad}");
        }
        assert_eq!(extract(&headers(&[("b3", "1")])), None);
        assert_eq!(extract(&HeaderMap::new()), None);
    }
}
