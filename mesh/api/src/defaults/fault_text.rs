//! Faults as text: one line per fault, the same in `meshctl describe`, `meshctl fault
//! list` and the dashboard (`delay 7s (100%) + abort 500 (50%)`), and byte rates as users
//! type them (`2KB/s`, `16KiB/s`).

use std::fmt;

use super::{AbortStatus, Direction, EffectiveFault};
use crate::duration::format_duration;

impl fmt::Display for EffectiveFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some(d) = &self.delay {
            let mut text = format!("delay {}", format_duration(d.fixed_delay));
            if !d.jitter.is_zero() {
                text.push_str(&format!(" ±{}", format_duration(d.jitter)));
            }
            parts.push((text, d.direction, Direction::Request, d.percent));
        }
        if let Some(a) = &self.abort {
            let status = match &a.status {
                AbortStatus::Http(code) => code.to_string(),
                AbortStatus::Grpc(name) => format!("grpc {name}"),
            };
            parts.push((
                format!("abort {status}"),
                Direction::Request,
                Direction::Request,
                a.percent,
            ));
        }
        if let Some(b) = &self.bandwidth {
            parts.push((
                format!("bandwidth {}", format_rate(b.bytes_per_second)),
                b.direction,
                Direction::Response,
                b.percent,
            ));
        }
        if let Some(r) = &self.reset {
            let text = if r.after_bytes > 0 {
                format!("reset after {} B", r.after_bytes)
            } else {
                "reset".to_owned()
            };
            parts.push((text, r.direction, Direction::Response, r.percent));
        }
        if let Some(b) = &self.blackhole {
            parts.push((
                "blackhole".to_owned(),
                b.direction,
                Direction::Request,
                b.percent,
            ));
        }
        if let Some(s) = &self.slow_close {
            parts.push((
                format!("slow close {}", format_duration(s.delay)),
                Direction::Response,
                Direction::Response,
                s.percent,
            ));
        }
        if parts.is_empty() {
            return f.write_str("-");
        }
        // The direction is named only where it is not the one the kind usually acts on.
        let text: Vec<String> = parts
            .into_iter()
            .map(|(what, direction, usual, percent)| {
                if direction == usual {
                    format!("{what} ({percent}%)")
                } else {
                    format!("{what} on the {} ({percent}%)", direction.as_str())
                }
            })
            .collect();
        f.write_str(&text.join(" + "))
    }
}

/// A rate in the largest unit that divides it: `2KB/s`, `16KiB/s`, `1MB/s`, `300B/s`.
pub fn format_rate(bytes_per_second: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (1 << 20, "MiB"),
        (1_000_000, "MB"),
        (1 << 10, "KiB"),
        (1_000, "KB"),
    ];
    for (size, unit) in UNITS {
        if bytes_per_second >= size && bytes_per_second.is_multiple_of(size) {
            return format!("{}{unit}/s", bytes_per_second / size);
        }
    }
    format!("{bytes_per_second}B/s")
}

/// Parses a rate such as `2KB/s`, `16KiB`, `1MB/s` or `500` (bytes per second). KB and
/// MB are powers of 1000, KiB and MiB powers of 1024; the `/s` is optional.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let body = trimmed.strip_suffix("/s").unwrap_or(trimmed).trim();
    let split = body
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" | "k" => 1_000,
        "kib" => 1 << 10,
        "mb" | "m" => 1_000_000,
        "mib" => 1 << 20,
        _ => {
            return Err(format!(
                "invalid rate {text:?}: expected a whole number with B, KB, KiB, MB or MiB, \
                 such as 2KB/s"
            ));
        }
    };
    let value: u64 = number
        .parse()
        .map_err(|_| format!("invalid rate {text:?}: expected a whole number, such as 2KB/s"))?;
    match value.checked_mul(scale) {
        Some(0) => Err(format!("invalid rate {text:?}: at least 1 byte per second")),
        Some(rate) => Ok(rate),
        None => Err(format!("invalid rate {text:?}: too large")),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::defaults::{
        EffectiveAbort, EffectiveBandwidth, EffectiveBlackhole, EffectiveDelay, EffectiveReset,
        EffectiveSlowClose,
    };

    #[test]
    fn istio_faults_read_as_before() {
        let fault = EffectiveFault {
            delay: Some(EffectiveDelay {
                fixed_delay: Duration::from_secs(7),
                percent: 100.0,
                jitter: Duration::ZERO,
                direction: Direction::Request,
            }),
            abort: Some(EffectiveAbort {
                status: AbortStatus::Http(500),
                percent: 50.0,
            }),
            ..EffectiveFault::default()
        };
        assert_eq!(fault.to_string(), "delay 7s (100%) + abort 500 (50%)");
        assert_eq!(EffectiveFault::default().to_string(), "-");
    }

    #[test]
    fn network_faults_name_unusual_directions() {
        let fault = EffectiveFault {
            delay: Some(EffectiveDelay {
                fixed_delay: Duration::from_millis(1500),
                percent: 100.0,
                jitter: Duration::from_millis(250),
                direction: Direction::Response,
            }),
            bandwidth: Some(EffectiveBandwidth {
                bytes_per_second: 2000,
                direction: Direction::Response,
                percent: 100.0,
            }),
            reset: Some(EffectiveReset {
                after_bytes: 100,
                direction: Direction::Response,
                percent: 10.0,
            }),
            blackhole: Some(EffectiveBlackhole {
                direction: Direction::Response,
                percent: 5.0,
            }),
            slow_close: Some(EffectiveSlowClose {
                delay: Duration::from_secs(2),
                percent: 100.0,
            }),
            ..EffectiveFault::default()
        };
        assert_eq!(
            fault.to_string(),
            "delay 1.5s ±0.25s on the response (100%) + bandwidth 2KB/s (100%) + \
             reset after 100 B (10%) + blackhole on the response (5%) + slow close 2s (100%)"
        );
    }

    #[test]
    fn rates_parse_as_typed() {
        assert_eq!(parse_rate("2KB/s"), Ok(2000));
        assert_eq!(parse_rate("16KiB"), Ok(16 << 10));
        assert_eq!(parse_rate(" 1mb/s "), Ok(1_000_000));
        assert_eq!(parse_rate("500"), Ok(500));
        assert_eq!(parse_rate("3 MiB/s"), Ok(3 << 20));
        for bad in [
            "",
            "fast",
            "2GB/s",
            "1.5KB/s",
            "0KB/s",
            "-1",
            "99999999999999999999MiB",
        ] {
            let e = parse_rate(bad).unwrap_err();
            assert!(e.contains("invalid rate"), "{bad}: {e}");
        }
    }

    #[test]
    fn rates_pick_the_unit_that_divides() {
        assert_eq!(format_rate(2048), "2KiB/s");
        assert_eq!(format_rate(2000), "2KB/s");
        assert_eq!(format_rate(3 << 20), "3MiB/s");
        assert_eq!(format_rate(1500), "1500B/s");
        assert_eq!(format_rate(0), "0B/s");
    }
}
