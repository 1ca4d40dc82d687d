//! Human durations on the command line (`7s`, `500ms`, `2m`, `1h`), the way Istio writes
//! them in YAML, so what users type matches what they read in the routing files.

use std::time::Duration;

/// A value that is not a duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {0:?}: expected a number with a unit, such as 7s, 500ms, 2m or 1h")]
pub struct DurationError(pub String);

/// Parses `7s`, `1.5s`, `500ms`, `2m`, `1h`. A bare number is refused: `7` could mean
/// seconds or milliseconds, and guessing wrong makes a fault last 1000 times too long.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let bad = || DurationError(text.to_owned());
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (number, unit) = t.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let secs = n * scale;
    if !secs.is_finite() || secs > 86_400.0 * 365.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Writes a duration the way Istio's YAML does: whole seconds as `7s`, otherwise `ms`.
pub fn to_istio(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A short remaining time for tables: `1m 52s`, `7.0s`, `350ms`.
pub fn human_ms(ms: u64) -> String {
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
    fn parses_units() {
        assert_eq!(parse("7s").unwrap(), Duration::from_secs(7));
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
    }

    #[test]
    fn refuses_garbage_with_the_value_in_the_message() {
        for bad in ["7", "", "s", "7x", "-3s", "1.2.3s", "7 s"] {
            let e = parse(bad).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn writes_istio_style() {
        assert_eq!(to_istio(Duration::from_secs(7)), "7s");
        assert_eq!(to_istio(Duration::from_millis(1500)), "1500ms");
    }

    #[test]
    fn human_remaining() {
        assert_eq!(human_ms(350), "350ms");
        assert_eq!(human_ms(7000), "7.0s");
        assert_eq!(human_ms(112_000), "1m 52s");
        assert_eq!(human_ms(3_720_000), "1h 2m");
    }
}
