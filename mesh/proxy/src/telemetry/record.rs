//! What telemetry learns about one request on its way through a listener, and the one
//! place a finished request is written: its metrics first, then its access-log line.
//! Inbound and outbound both use it, so the two sides report a request the same way.

use std::fmt;

use tokio::time::Instant;

use crate::telemetry::access_log::Entry;
use crate::telemetry::flags::{Flag, Flags};
use crate::telemetry::metrics::Measured;
use crate::telemetry::trace::HopSpan;

/// One request's telemetry until its response ends. The access-log entry exists only
/// when the log is on: its strings cost more than the rest of the bookkeeping together.
#[derive(Debug)]
pub(crate) struct RequestRecord {
    start: Instant,
    /// Boxed: most sidecars run with the log off, and inline it would add half a KB to
    /// every request's future.
    log: Option<Box<Entry>>,
    flags: Flags,
    /// Request body bytes sent on (0 when the body was streamed).
    pub(crate) request_bytes: u64,
    /// The hop's trace span, when tracing is on (boxed, like the log entry: most
    /// proxies run without it).
    trace: Option<Box<HopSpan>>,
}

impl RequestRecord {
    /// A request starting now; `entry` is its access-log entry, built only when
    /// `logging`.
    pub(crate) fn new(logging: bool, entry: impl FnOnce() -> Entry) -> Self {
        Self {
            start: Instant::now(),
            log: logging.then(|| Box::new(entry())),
            flags: Flags::none(),
            request_bytes: 0,
            trace: None,
        }
    }

    /// Attaches the hop's trace span; it ends with the request.
    pub(crate) fn set_trace(&mut self, span: HopSpan) {
        self.trace = Some(Box::new(span));
    }

    /// The hop's trace span, when tracing is on.
    pub(crate) fn trace(&mut self) -> Option<&mut HopSpan> {
        self.trace.as_deref_mut()
    }

    /// The access-log entry, when the log is on.
    pub(crate) fn log(&mut self) -> Option<&mut Entry> {
        self.log.as_deref_mut()
    }

    /// Sets a response flag.
    pub(crate) fn note_flag(&mut self, flag: Flag) {
        self.flags.set(flag);
    }

    /// The access log's `RESPONSE_CODE_DETAILS`: why the proxy answered the way it did.
    /// Written out only when the log is on (pass `format_args!` for a formatted one, so
    /// nothing is formatted otherwise).
    pub(crate) fn note_details(&mut self, details: impl fmt::Display) {
        if let Some(log) = self.log() {
            log.details = details.to_string();
        }
    }

    /// The access log's `UPSTREAM_TRANSPORT_FAILURE_REASON`, written only when the log
    /// is on.
    pub(crate) fn note_upstream_failure(&mut self, failure: impl fmt::Display) {
        if let Some(log) = self.log() {
            log.upstream_failure = failure.to_string();
        }
    }

    /// Writes the finished request: `observe` records its metrics from the flags and the
    /// measurement, then the access-log line is printed (when the log is on).
    pub(crate) fn finish(mut self, code: u16, bytes: u64, observe: impl FnOnce(&Flags, Measured)) {
        let elapsed = self.start.elapsed();
        let measured = Measured {
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            request_bytes: self.request_bytes,
            response_bytes: bytes,
        };
        observe(&self.flags, measured);
        if let Some(span) = self.trace {
            if let Some(log) = self.log.as_deref_mut() {
                span.log_ids(log);
            }
            span.finish(code, &self.flags, self.request_bytes, bytes);
        }
        if let Some(mut log) = self.log {
            log.code = code;
            log.flags = self.flags.to_string();
            log.bytes_received = self.request_bytes;
            log.bytes_sent = bytes;
            log.duration_ms = elapsed.as_millis() as u64;
            if log.details.is_empty() {
                log.details = "via_upstream".to_owned();
            }
            println!("{log}");
        }
    }
}

/// Shows an error as its innermost cause (`connection refused`, not the layers of
/// client errors around it), as Envoy's access log does.
pub(crate) struct RootCause<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for RootCause<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut cause = self.0;
        while let Some(next) = cause.source() {
            cause = next;
        }
        fmt::Display::fmt(cause, f)
    }
}
