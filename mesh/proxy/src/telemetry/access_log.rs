//! Access log lines in Envoy's default text format, the one Istio prints with
//! `accessLogFile: /dev/stdout`, so people can read our logs with what they know:
//!
//! ```text
//! [START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS CONN_TERM "UPSTREAM_FAILURE"
//! BYTES_RECEIVED BYTES_SENT DURATION UPSTREAM_TIME "X-FORWARDED-FOR" "USER-AGENT"
//! "X-REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST" UPSTREAM_CLUSTER UPSTREAM_LOCAL
//! DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI ROUTE_NAME
//! ```
//! (on one line; `-` stands for an empty value). With tracing on, the line ends with
//! ` trace_id=<32 hex> span_id=<16 hex>`, the ids of this hop's span: after every field
//! of Envoy's format, so parsers of that format keep working, and as `key=value`, so
//! Loki's `logfmt`, Vector's `parse_logfmt` or a Grafana derived field find them.

use std::fmt;
use std::net::SocketAddr;
use std::time::SystemTime;

use time::OffsetDateTime;
use time::macros::format_description;

/// One finished request, as the access log shows it.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// When the request started.
    pub start: Option<SystemTime>,
    /// Request method.
    pub method: String,
    /// Original path (before any rewrite).
    pub path: String,
    /// `HTTP/1.1`, `HTTP/2`.
    pub protocol: String,
    /// Status sent downstream (0 if none was sent).
    pub code: u16,
    /// Printed response flags.
    pub flags: String,
    /// Why the proxy answered the way it did, e.g. `via_upstream`, `fault_filter_abort`.
    pub details: String,
    /// Upstream transport failure, e.g. `connection refused`.
    pub upstream_failure: String,
    /// Request body bytes received.
    pub bytes_received: u64,
    /// Response body bytes sent.
    pub bytes_sent: u64,
    /// Total duration in milliseconds.
    pub duration_ms: u64,
    /// Time the upstream took, in milliseconds.
    pub upstream_ms: Option<u64>,
    /// `x-forwarded-for`.
    pub forwarded_for: String,
    /// `user-agent`.
    pub user_agent: String,
    /// `x-request-id`.
    pub request_id: String,
    /// `:authority` / `Host`.
    pub authority: String,
    /// Chosen endpoint address.
    pub upstream_host: String,
    /// Cluster name, e.g. `outbound|9080|v2|reviews.default.svc.cluster.local`.
    pub upstream_cluster: String,
    /// Local address of the upstream connection.
    pub upstream_local: String,
    /// Our listener address.
    pub downstream_local: String,
    /// The client's address.
    pub downstream_remote: String,
    /// TLS server name asked for, if any.
    pub sni: String,
    /// Name of the matched route.
    pub route_name: String,
    /// This hop's trace id (32 hex digits), when tracing is on.
    pub trace_id: String,
    /// This hop's span id (16 hex digits), when tracing is on.
    pub span_id: String,
}

impl Entry {
    /// The fields a request and the two ends of its connection (`local`, our listener;
    /// `remote`, the client) give, before anything is decided.
    pub fn for_request<B>(req: &http::Request<B>, local: SocketAddr, remote: SocketAddr) -> Self {
        let h = req.headers();
        let text = |name: &str| {
            h.get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        Self {
            start: Some(SystemTime::now()),
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            protocol: format!("{:?}", req.version()),
            forwarded_for: text("x-forwarded-for"),
            user_agent: text("user-agent"),
            request_id: text("x-request-id"),
            authority: text("host"),
            downstream_local: local.to_string(),
            downstream_remote: remote.to_string(),
            ..Self::default()
        }
    }
}

fn dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let start = self
            .start
            .map(rfc3339_millis)
            .unwrap_or_else(|| "-".to_owned());
        let upstream_ms = self
            .upstream_ms
            .map_or_else(|| "-".to_owned(), |ms| ms.to_string());
        write!(
            f,
            "[{start}] \"{} {} {}\" {} {} {} - \"{}\" {} {} {} {} \"{}\" \"{}\" \"{}\" \"{}\" \"{}\" {} {} {} {} {} {}",
            dash(&self.method),
            dash(&self.path),
            dash(&self.protocol),
            self.code,
            dash(&self.flags),
            dash(&self.details),
            dash(&self.upstream_failure),
            self.bytes_received,
            self.bytes_sent,
            self.duration_ms,
            upstream_ms,
            dash(&self.forwarded_for),
            dash(&self.user_agent),
            dash(&self.request_id),
            dash(&self.authority),
            dash(&self.upstream_host),
            dash(&self.upstream_cluster),
            dash(&self.upstream_local),
            dash(&self.downstream_local),
            dash(&self.downstream_remote),
            dash(&self.sni),
            dash(&self.route_name),
        )?;
        if !self.trace_id.is_empty() {
            write!(f, " trace_id={} span_id={}", self.trace_id, self.span_id)?;
        }
        Ok(())
    }
}

/// `2026-11-24T21:03:07.123Z`, as Envoy prints `%START_TIME%`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from(t).format(format).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339_millis(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_986_187_123);
        assert_eq!(rfc3339_millis(t), "2026-11-29T21:03:07.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339_millis(leap), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn line_has_envoys_shape() {
        let e = Entry {
            start: Some(UNIX_EPOCH),
            method: "GET".into(),
            path: "/reviews/0".into(),
            protocol: "HTTP/1.1".into(),
            code: 503,
            flags: "UF,URX".into(),
            details: "upstream_reset_before_response_started{connection_failure}".into(),
            upstream_failure: "connection refused".into(),
            duration_ms: 27,
            request_id: "abc".into(),
            authority: "reviews:9080".into(),
            upstream_cluster: "outbound|9080|v2|reviews.default.svc.cluster.local".into(),
            ..Entry::default()
        };
        assert_eq!(
            e.to_string(),
            "[1970-01-01T00:00:00.000Z] \"GET /reviews/0 HTTP/1.1\" 503 UF,URX \
             upstream_reset_before_response_started{connection_failure} - \"connection refused\" 0 0 27 - \"-\" \"-\" \
             \"abc\" \"reviews:9080\" \"-\" outbound|9080|v2|reviews.default.svc.cluster.local - - - - -"
        );
    }

    #[test]
    fn trace_ids_come_last_as_key_value_pairs() {
        let e = Entry {
            start: Some(UNIX_EPOCH),
            method: "GET".into(),
            path: "/".into(),
            code: 200,
            trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
            span_id: "00f067aa0ba902b7".into(),
            ..Entry::default()
        };
        let line = e.to_string();
        assert!(
            line.ends_with(
                " - - - - - trace_id=4bf92f3577b34da6a3ce929d0e0e4736 span_id=00f067aa0ba902b7"
            ),
            "{line}"
        );
    }
}
