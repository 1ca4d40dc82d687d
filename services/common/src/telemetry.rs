//! Structured logs with `tracing`: `RUST_LOG` picks levels (default: info for our
//! crates), `LOG_FORMAT=json` switches to one JSON object per line for log shippers.
//!
//! With tracing on ([`crate::trace`]), a line written during a request carries the ids
//! of the span it was written in, flat at the top level so Fluent Bit, Vector, Promtail
//! or Grafana Alloy pick them up without a custom parser:
//! `{"timestamp":"…","level":"WARN","message":"…",…,"trace_id":"<32 hex>","span_id":"<16 hex>"}`;
//! plain lines end with ` trace_id=<32 hex> span_id=<16 hex>`. Without a span (startup
//! lines, or tracing off) lines are exactly as before.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::config::{ConfigError, Lookup, exit_usage};
use crate::trace::{LogIds, Settings, Tracing};

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// Reads `LOG_FORMAT` (`plain`, the default, or `json`).
    pub fn from_env(env: &dyn Lookup) -> Result<Self, ConfigError> {
        match env.get("LOG_FORMAT").as_deref().map(str::trim) {
            None | Some("") | Some("plain") | Some("text") => Ok(Self::Plain),
            Some("json") => Ok(Self::Json),
            Some(other) => Err(ConfigError::new(
                "LOG_FORMAT",
                other,
                "expected plain or json",
            )),
        }
    }
}

/// What a service's `main` calls first: reads the OpenTelemetry variables (a bad one
/// is one line naming it and exit code 64), starts the exporter when they name an
/// endpoint, and installs the logs. Keep the result for [`finish`].
pub fn start(
    program: &str,
    format: LogFormat,
    default_filter: &str,
    env: &dyn Lookup,
) -> Option<Tracing> {
    let settings = Settings::from_lookup(env).unwrap_or_else(|e| exit_usage(program, &e));
    let tracing =
        settings.map(|s| Tracing::start(&s, program).unwrap_or_else(|e| exit_usage(program, &e)));
    install(format, default_filter, tracing.as_ref(), std::io::stdout);
    tracing
}

/// Sends the last spans and stops the exporter, when there is one.
pub async fn finish(tracing: Option<Tracing>) {
    if let Some(t) = tracing {
        // The SDK's shutdown blocks until the batch thread is done.
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
}

/// Installs the global subscriber. `default_filter` applies when `RUST_LOG` is unset;
/// an unparsable `RUST_LOG` falls back to it with a warning rather than failing.
pub fn init(format: LogFormat, default_filter: &str) {
    install(format, default_filter, None, std::io::stdout);
}

/// [`init`], plus the spans of `tracing` when it is on, with every line written to
/// `writer` (stdout in the services; a buffer in tests). `RUST_LOG` filters only the
/// log lines: spans are made whatever the log level.
pub fn install<W>(format: LogFormat, default_filter: &str, tracing: Option<&Tracing>, writer: W)
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => match EnvFilter::try_new(&s) {
            Ok(f) => (f, None),
            Err(e) => (
                EnvFilter::new(default_filter),
                Some(format!("ignoring RUST_LOG={s:?}: {e}")),
            ),
        },
        _ => (EnvFilter::new(default_filter), None),
    };
    // A subscriber may already be set (tests); keeping the first one is fine.
    let installed = tracing_subscriber::registry()
        .with(layers(format, filter, tracing, writer))
        .try_init()
        .is_ok();
    if installed && let Some(t) = tracing {
        t.enable();
    }
    if let Some(msg) = bad {
        tracing::warn!("{msg}");
    }
}

/// The log lines in `format`, filtered by `filter`, and the span layer when tracing is on.
fn layers<W>(
    format: LogFormat,
    filter: EnvFilter,
    tracing: Option<&Tracing>,
    writer: W,
) -> Vec<Box<dyn Layer<Registry> + Send + Sync>>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let base = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_writer(writer);
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Plain => base
            .event_format(WithTraceIds {
                inner: tracing_subscriber::fmt::format().with_target(false),
                json: false,
            })
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => base
            .json()
            .event_format(WithTraceIds {
                inner: tracing_subscriber::fmt::format()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_target(false),
                json: true,
            })
            .with_filter(filter)
            .boxed(),
    };
    let mut layers = vec![logs];
    if let Some(t) = tracing {
        // Spans, and events as span events, of our own code at info and above.
        layers.push(
            tracing_opentelemetry::layer()
                .with_tracer(t.tracer())
                .with_location(false)
                .with_threads(false)
                .with_filter(LevelFilter::INFO)
                .boxed(),
        );
    }
    layers
}

/// An event formatter that adds the current span's `trace_id` and `span_id` to what
/// `inner` writes: as two more top-level keys of the JSON object, or at the end of a
/// plain line.
struct WithTraceIds<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ids = ctx.event_scope().and_then(|scope| {
            scope
                .into_iter()
                .find_map(|span| span.extensions().get::<LogIds>().copied())
        });
        let Some(ids) = ids else {
            return self.inner.format_event(ctx, writer, event);
        };
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let body = line.trim_end_matches('\n');
        match body.strip_suffix('}').filter(|_| self.json) {
            Some(open) => writeln!(
                writer,
                "{open},\"trace_id\":\"{}\",\"span_id\":\"{}\"}}",
                ids.trace_id, ids.span_id
            ),
            None => writeln!(
                writer,
                "{body} trace_id={} span_id={}",
                ids.trace_id, ids.span_id
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use opentelemetry::trace::{
        SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
    };
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    use super::*;
    use crate::trace::settings::{Sampling, Settings};

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines written in `format` by one event outside any span and one inside a
    /// span whose parent is the remote span `TRACE`; with the inner span's id.
    fn lines(format: LogFormat) -> (Vec<String>, String) {
        let settings = Settings {
            // Nothing is exported: only the ids matter here.
            sampling: Sampling {
                parent_based: false,
                ratio: 0.0,
            },
            ..Settings::new("http://127.0.0.1:9/v1/traces")
        };
        let tracing = Tracing::start(&settings, "test").unwrap();
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(layers(
            format,
            EnvFilter::new("info"),
            Some(&tracing),
            move || writer.clone(),
        ));
        let mut span_id = String::new();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(phase = "start", "Outside.");
            let span = tracing::info_span!("request");
            let parent = SpanContext::new(
                TraceId::from_hex(TRACE).unwrap(),
                SpanId::from_hex("00f067aa0ba902b7").unwrap(),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent))
                .unwrap();
            crate::trace::remember_ids(&span);
            span_id = span.context().span().span_context().span_id().to_string();
            span.in_scope(|| tracing::warn!(attempt = 1, "Inside."));
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        (text.lines().map(str::to_owned).collect(), span_id)
    }

    #[test]
    fn json_lines_get_flat_ids_only_inside_a_span() {
        let (lines, span_id) = lines(LogFormat::Json);
        assert_eq!(lines.len(), 2, "{lines:?}");
        let outside: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert!(outside.get("trace_id").is_none(), "{outside}");
        let inside: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(inside["message"], "Inside.");
        assert_eq!(inside["attempt"], 1);
        assert_eq!(inside["trace_id"], TRACE);
        assert_eq!(inside["span_id"].as_str(), Some(span_id.as_str()));
        assert_eq!(span_id.len(), 16);
        assert!(inside.get("span").is_none() && inside.get("spans").is_none());
    }

    #[test]
    fn plain_lines_end_with_the_ids_inside_a_span() {
        let (lines, span_id) = lines(LogFormat::Plain);
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(!lines[0].contains("trace_id="), "{}", lines[0]);
        assert!(
            lines[1].ends_with(&format!(" trace_id={TRACE} span_id={span_id}")),
            "{}",
            lines[1]
        );
        assert!(lines[1].contains("Inside."));
    }
}
