//! Access log lines in Envoy's default text format, the one Istio prints with
//! `accessLogFile: /dev/stdout`, so people can read our logs with what they know:
//!
//! ```text
//! [START_TIME] "METHOD PATH PROTOCOL" CODE FLAGS DETAILS CONN_TERM "UPSTREAM_FAILURE"
//! BYTES_RECEIVED BYTES_SENT DURATION UPSTREAM_TIME "X-FORWARDED-FOR" "USER-AGENT"
//! "X-REQUEST-ID" "AUTHORITY" "UPSTREAM_HOST" UPSTREAM_CLUSTER UPSTREAM_LOCAL
//! DOWNSTREAM_LOCAL DOWNSTREAM_REMOTE SNI ROUTE_NAME
//! ```
//! (on one line; `-` stands for an empty value).

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

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
        )
    }
}

/// `2026-11-24T21:03:07.123Z`, as Envoy prints `%START_TIME%`.
pub fn rfc3339_millis(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, day) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm), so we need no date library for one timestamp.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
