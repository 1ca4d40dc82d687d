//! Arrival-rate plans: stages (`DURATION:RATE`) and the intended send time of request *i*.
//!
//! The rate is global. Within a stage the rate moves linearly from the previous stage's target
//! to this stage's target, so the number of requests due by time `t` is the integral of the
//! rate; request `i` is due at the `t` where that integral reaches `i`. Computing send times
//! from the plan (rather than sleeping between sends) is what keeps the rate exact when the
//! scheduler wakes up late, and what makes coordinated-omission correction possible.

use std::time::Duration;

use mesh_api::duration::{DurationError, parse_duration};

/// One ramp stage: reach `rate` requests/s at the end of `duration`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Stage {
    #[serde(serialize_with = "secs")]
    pub duration: Duration,
    pub rate: f64,
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// Why a `--stage` argument was refused; every message shows the expected form.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StageError {
    #[error("invalid --stage {0:?}: {EXPECTED}")]
    Shape(String),
    #[error("invalid --stage {text:?}: {source}; {EXPECTED}")]
    Duration { text: String, source: DurationError },
    #[error("invalid --stage {0:?}: duration must be > 0; {EXPECTED}")]
    ZeroDuration(String),
    #[error("invalid --stage {0:?}: rate must be a number >= 0; {EXPECTED}")]
    Rate(String),
}

const EXPECTED: &str = "expected DURATION:RATE, e.g. 30s:1000";

impl std::str::FromStr for Stage {
    type Err = StageError;

    /// Parses `DURATION:RATE`, e.g. `30s:1000`.
    fn from_str(text: &str) -> Result<Self, StageError> {
        let (duration, rate) = text
            .split_once(':')
            .ok_or_else(|| StageError::Shape(text.to_string()))?;
        let duration = parse_duration(duration).map_err(|source| StageError::Duration {
            text: text.to_string(),
            source,
        })?;
        if duration.is_zero() {
            return Err(StageError::ZeroDuration(text.to_string()));
        }
        let rate: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|r: &f64| r.is_finite() && *r >= 0.0)
            .ok_or_else(|| StageError::Rate(text.to_string()))?;
        Ok(Stage { duration, rate })
    }
}

/// A linear segment of the plan, with its precomputed start time and start count.
#[derive(Debug, Clone, Copy)]
struct Segment {
    start: f64,
    length: f64,
    from: f64,
    to: f64,
    /// Requests due before this segment starts.
    before: f64,
}

impl Segment {
    fn count(&self) -> f64 {
        (self.from + self.to) / 2.0 * self.length
    }
}

/// The whole arrival plan of an open-model run.
#[derive(Debug, Clone)]
pub struct Schedule {
    segments: Vec<Segment>,
    total: f64,
    /// Optional cap on the number of requests (`-n` with the open model).
    limit: Option<u64>,
}

impl Schedule {
    /// A constant rate for a duration.
    pub fn constant(rate: f64, duration: Duration) -> Self {
        Self::ramped(rate, &[Stage { duration, rate }])
    }

    /// Stages ramping linearly, the first one from `start_rate`.
    pub fn ramped(start_rate: f64, stages: &[Stage]) -> Self {
        let mut segments = Vec::with_capacity(stages.len());
        let (mut start, mut before, mut from) = (0.0, 0.0, start_rate);
        for stage in stages {
            let segment = Segment {
                start,
                length: stage.duration.as_secs_f64(),
                from,
                to: stage.rate,
                before,
            };
            before += segment.count();
            start += segment.length;
            from = stage.rate;
            segments.push(segment);
        }
        Schedule {
            segments,
            total: start,
            limit: None,
        }
    }

    /// Stops the plan after `limit` requests.
    pub fn with_limit(mut self, limit: Option<u64>) -> Self {
        self.limit = limit;
        self
    }

    /// The request cap, if any.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// The stages this plan was built from (for reports).
    pub fn stages(&self) -> Vec<Stage> {
        self.segments
            .iter()
            .map(|s| Stage {
                duration: Duration::from_secs_f64(s.length),
                rate: s.to,
            })
            .collect()
    }

    /// Planned duration of the run.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.total)
    }

    /// Number of requests the plan asks for.
    pub fn planned_requests(&self) -> u64 {
        let expected = self.segments.last().map_or(0.0, |s| s.before + s.count());
        // Requests 0..N have a send time and N.. do not: binary search for N, using the same
        // `offset` the scheduler uses so the two can never disagree.
        let (mut low, mut high) = (0u64, expected.ceil() as u64 + 1);
        if let Some(limit) = self.limit {
            high = high.min(limit);
        }
        if self.offset(high).is_some() {
            return high;
        }
        while low < high {
            let mid = low + (high - low) / 2;
            if self.offset(mid).is_some() {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }

    /// Intended send time of request `i` (0-based) after the start, or `None` past the end.
    pub fn offset(&self, i: u64) -> Option<Duration> {
        if self.limit.is_some_and(|limit| i >= limit) {
            return None;
        }
        let x = i as f64;
        let segment = self
            .segments
            .iter()
            .find(|s| s.count() > 0.0 && x < s.before + s.count())?;
        let due = x - segment.before;
        let slope = (segment.to - segment.from) / (2.0 * segment.length);
        // Solve slope*t^2 + from*t = due for the first root in the segment; this form stays
        // stable for flat (slope 0), rising and falling ramps and for a ramp starting at 0.
        let disc = (segment.from * segment.from + 4.0 * slope * due).max(0.0);
        let denom = segment.from + disc.sqrt();
        let t = if due <= 0.0 {
            0.0
        } else if denom > 0.0 {
            2.0 * due / denom
        } else {
            return None;
        };
        let at = (segment.start + t.min(segment.length)).min(self.total);
        (at < self.total).then(|| Duration::from_secs_f64(at))
    }

    /// The rate the plan asks for at time `t` after the start.
    pub fn rate_at(&self, t: Duration) -> f64 {
        let t = t.as_secs_f64();
        self.segments
            .iter()
            .find(|s| t < s.start + s.length)
            .map_or(0.0, |s| s.from + (s.to - s.from) * (t - s.start) / s.length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(text: &str) -> Result<Stage, StageError> {
        text.parse()
    }

    #[test]
    fn stage_parsing_table() {
        let ok = [
            ("10s:100", 10.0, 100.0),
            ("500ms:5", 0.5, 5.0),
            ("2m:0", 120.0, 0.0),
            ("1s:2.5", 1.0, 2.5),
        ];
        for (text, secs, rate) in ok {
            let s = stage(text).unwrap();
            assert_eq!(s.duration.as_secs_f64(), secs, "{text}");
            assert_eq!(s.rate, rate, "{text}");
        }
        let bad = [
            ("10x:5", "invalid duration \"10x\""),
            ("10s", "expected DURATION:RATE"),
            ("10s:abc", "rate must be a number"),
            ("10s:-5", "rate must be a number"),
            ("0s:5", "duration must be > 0"),
            (":5", "empty duration"),
        ];
        for (text, needle) in bad {
            let err = stage(text).unwrap_err().to_string();
            assert!(err.contains("--stage"), "{text}: {err}");
            assert!(err.contains("DURATION:RATE"), "{text}: {err}");
            assert!(err.contains(needle), "{text}: {err}");
        }
    }

    /// The notation the CLI help, the README and the experiments use keeps its values.
    #[test]
    fn durations_keep_their_values() {
        let cases = [
            ("250ms", Duration::from_millis(250)),
            ("10s", Duration::from_secs(10)),
            ("1.5s", Duration::from_millis(1500)),
            ("1500ms", Duration::from_millis(1500)),
            ("2m", Duration::from_secs(120)),
            ("1h", Duration::from_secs(3600)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    /// A bare number stays refused: `--duration 10` is ambiguous to a reader.
    #[test]
    fn durations_refuse_bare_numbers_and_unknown_units() {
        for text in ["10", "10x", "s", "1.2.3s", "-1s"] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
    }

    #[test]
    fn constant_rate_spacing_and_count() {
        let s = Schedule::constant(2000.0, Duration::from_secs(5));
        assert_eq!(s.offset(0), Some(Duration::ZERO));
        let d = s.offset(1000).unwrap().as_secs_f64();
        assert!((d - 0.5).abs() < 1e-9, "{d}");
        assert_eq!(s.planned_requests(), 10_000);
        assert!(s.offset(10_000).is_none());
    }

    #[test]
    fn linear_ramp_from_zero() {
        // 0 -> 100 rps over 10 s: 500 requests, half of them in the last ~2.93 s.
        let s = Schedule::ramped(
            0.0,
            &[Stage {
                duration: Duration::from_secs(10),
                rate: 100.0,
            }],
        );
        assert_eq!(s.planned_requests(), 500);
        let mid = s.offset(250).unwrap().as_secs_f64();
        assert!((mid - 50f64.sqrt()).abs() < 1e-6, "{mid}");
        assert!((s.rate_at(Duration::from_secs(5)) - 50.0).abs() < 1e-9);
    }

    #[test]
    fn stages_chain_and_ramp_down() {
        let stages = [
            Stage {
                duration: Duration::from_secs(2),
                rate: 100.0,
            },
            Stage {
                duration: Duration::from_secs(2),
                rate: 100.0,
            },
            Stage {
                duration: Duration::from_secs(2),
                rate: 0.0,
            },
        ];
        let s = Schedule::ramped(0.0, &stages);
        // 100 + 200 + 100
        assert_eq!(s.planned_requests(), 400);
        let mut previous = Duration::ZERO;
        for i in 0..400 {
            let at = s.offset(i).unwrap();
            assert!(at >= previous, "request {i} goes back in time");
            previous = at;
        }
        assert!(previous < Duration::from_secs(6));
    }

    #[test]
    fn limit_caps_the_plan() {
        let s = Schedule::constant(100.0, Duration::from_secs(10)).with_limit(Some(42));
        assert_eq!(s.planned_requests(), 42);
        assert!(s.offset(42).is_none());
    }
}
