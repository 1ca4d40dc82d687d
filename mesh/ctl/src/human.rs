//! Durations as meshctl writes them: `7s` / `500ms` as in Istio's YAML (fault requests,
//! `describe`), and short ages and remaining times for tables (`1m 52s`, `7.0s`).
//!
//! Parsing is mesh-api's (`cli::parse_duration`); these differ from its
//! `format_duration` (`0.5s`) on purpose: they are what meshctl has always printed.

use std::time::Duration;

/// Whole seconds as `7s`, anything else in milliseconds (`1500ms`).
pub fn istio(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A short age or remaining time: `350ms`, `7.0s`, `1m 52s`, `1h 2m`.
pub fn ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{}h {}m", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_istio_style() {
        assert_eq!(istio(Duration::from_secs(7)), "7s");
        assert_eq!(istio(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn human_remaining() {
        assert_eq!(ms(350), "350ms");
        assert_eq!(ms(7000), "7.0s");
        assert_eq!(ms(112_000), "1m 52s");
        assert_eq!(ms(3_720_000), "1h 2m");
    }
}
