//! Recording: whole-run HdrHistograms (corrected and raw), counters, status codes, errors by
//! kind, degraded answers by text, a per-second time series, the rolling window the
//! steady-state endpoint serves and, when asked, one record per request (`--outcomes`).
//!
//! Everything sits behind one mutex held for a few hundred nanoseconds per request; the
//! network round trip dwarfs it, and a single lock keeps the per-second view consistent.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use super::mix::MAX_DEGRADED_TEXTS;
use super::outcomes::{Answer, OutcomeRecord};

/// Why a request failed without a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// TCP connect or HTTP handshake failed (refused, unreachable, connect timeout).
    Connect,
    /// No complete response within `--timeout`.
    Timeout,
    /// The connection was reset or closed mid-request, or another I/O error.
    Io,
    /// The peer spoke invalid HTTP.
    Protocol,
    /// Bookinfo `POST /login` did not yield a session cookie.
    Login,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Login => "login",
        }
    }
}

/// The result of one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Status(u16),
    /// A 200 answer whose body contains degraded texts of the mix (bit `i`: text `i`).
    Degraded {
        status: u16,
        texts: u32,
    },
    Error(ErrorKind),
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p95: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Percentiles::default();
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Percentiles {
            count: h.len(),
            min: ms(h.min()),
            mean: h.mean() / 1000.0,
            p50: ms(h.value_at_quantile(0.50)),
            p90: ms(h.value_at_quantile(0.90)),
            p95: ms(h.value_at_quantile(0.95)),
            p99: ms(h.value_at_quantile(0.99)),
            p99_9: ms(h.value_at_quantile(0.999)),
            max: ms(h.max()),
        }
    }
}

/// Latency thresholds (milliseconds, corrected latency) an SLO can be stated with, e.g.
/// "99.5 % of requests answered without error in under 500 ms". For each, the series
/// counts the successful responses that were slower, so an error budget can include
/// slow answers as well as failed ones.
pub const SLO_THRESHOLDS_MS: [u32; 9] = [50, 100, 250, 500, 1000, 2500, 3000, 5000, 10000];

/// Counts per threshold of [`SLO_THRESHOLDS_MS`], keyed by the threshold as text (JSON).
fn per_threshold(counts: &[u64; SLO_THRESHOLDS_MS.len()]) -> BTreeMap<String, u64> {
    SLO_THRESHOLDS_MS
        .iter()
        .zip(counts)
        .map(|(t, n)| (t.to_string(), *n))
        .collect()
}

/// One second of the run (by the time things happened, relative to the start).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SecondSummary {
    /// Seconds since the start (this entry covers `[second, second + 1)`).
    pub second: u64,
    /// Requests the plan scheduled in this second.
    pub intended: u64,
    /// `intended` over the part of this second the run covered.
    pub requested_rps: f64,
    /// Requests actually sent in this second.
    pub started: u64,
    /// Responses received (any status) in this second.
    pub completed: u64,
    /// Responses per second: `completed` over the part of this second the run covered (the
    /// last second of a run is usually partial).
    pub achieved_rps: f64,
    pub errors: u64,
    /// Responses with status >= 500.
    pub server_errors: u64,
    /// 200 answers that contain a degraded text (counted in `completed` too).
    pub degraded: u64,
    /// Responses below 500 that were slower than each SLO threshold (corrected latency).
    pub slower_than_ms: BTreeMap<String, u64>,
    pub dropped: u64,
    pub corrected: SecondLatency,
    pub raw: SecondLatency,
}

/// Per-second latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq)]
pub struct SecondLatency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl SecondLatency {
    fn of(h: &Histogram<u64>) -> Self {
        let p = Percentiles::of(h);
        SecondLatency {
            p50: p.p50,
            p90: p.p90,
            p99: p.p99,
        }
    }
}

/// Steady-state figures over the last window (what `GET /api/v1/window` returns).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WindowSummary {
    /// Seconds covered (complete seconds only, once one has elapsed).
    pub window_s: f64,
    pub elapsed_s: f64,
    pub count: u64,
    pub requested_rps: f64,
    pub achieved_rps: f64,
    /// (transport errors + responses >= 500) / (responses + transport errors).
    pub error_ratio: f64,
    pub errors: u64,
    /// 200 answers with a degraded text; not in `error_ratio`.
    pub degraded: u64,
    /// degraded / responses.
    pub degraded_ratio: f64,
    pub dropped: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub status: BTreeMap<String, u64>,
    /// `bad_ratio_500ms` and so on: (transport errors + responses >= 500 + slower
    /// successful responses) / attempts, one per threshold of [`SLO_THRESHOLDS_MS`].
    #[serde(flatten)]
    pub bad_ratios: BTreeMap<String, f64>,
}

struct Bucket {
    second: u64,
    intended: u64,
    started: u64,
    completed: u64,
    errors: u64,
    server_errors: u64,
    degraded: u64,
    slow: [u64; SLO_THRESHOLDS_MS.len()],
    dropped: u64,
    status: BTreeMap<u16, u64>,
    corrected: Histogram<u64>,
    raw: Histogram<u64>,
}

impl Bucket {
    fn new(second: u64) -> Self {
        Bucket {
            second,
            intended: 0,
            started: 0,
            completed: 0,
            errors: 0,
            server_errors: 0,
            degraded: 0,
            slow: [0; SLO_THRESHOLDS_MS.len()],
            dropped: 0,
            status: BTreeMap::new(),
            corrected: histogram(),
            raw: histogram(),
        }
    }

    /// Summary of this second; `span` is how much of it the run covered, in seconds.
    fn summary(&self, span: f64) -> SecondSummary {
        SecondSummary {
            second: self.second,
            intended: self.intended,
            requested_rps: per_second(self.intended, span),
            started: self.started,
            completed: self.completed,
            achieved_rps: per_second(self.completed, span),
            errors: self.errors,
            server_errors: self.server_errors,
            degraded: self.degraded,
            slower_than_ms: per_threshold(&self.slow),
            dropped: self.dropped,
            corrected: SecondLatency::of(&self.corrected),
            raw: SecondLatency::of(&self.raw),
        }
    }
}

fn per_second(n: u64, span: f64) -> f64 {
    if span > 0.0 { n as f64 / span } else { 0.0 }
}

// 3 significant figures is always a valid setting, so this cannot fail.
#[allow(clippy::unwrap_used)]
fn histogram() -> Histogram<u64> {
    // Auto-resizing, 3 significant digits, microsecond values: grows only as far as needed.
    Histogram::new(3).unwrap()
}

/// Totals of a finished (or running) run.
#[derive(Debug, Clone)]
pub struct Totals {
    /// Wall-clock time of the start, milliseconds since the Unix epoch.
    pub start_unix_ms: Option<u64>,
    pub intended: u64,
    pub started: u64,
    pub completed: u64,
    pub errors: u64,
    /// 200 answers with at least one degraded text.
    pub degraded: u64,
    /// Answers containing each degraded text, by the text's index in the mix.
    pub degraded_by_text: Vec<u64>,
    pub dropped: u64,
    pub status: BTreeMap<u16, u64>,
    pub error_kinds: BTreeMap<ErrorKind, u64>,
    pub corrected: Percentiles,
    pub raw: Percentiles,
    pub series: Vec<SecondSummary>,
}

struct Inner {
    start: Option<Instant>,
    start_wall: Option<SystemTime>,
    intended: u64,
    started: u64,
    completed: u64,
    errors: u64,
    degraded: u64,
    degraded_by_text: [u64; MAX_DEGRADED_TEXTS],
    dropped: u64,
    status: BTreeMap<u16, u64>,
    error_kinds: BTreeMap<ErrorKind, u64>,
    corrected: Histogram<u64>,
    raw: Histogram<u64>,
    live: VecDeque<Bucket>,
    done: Vec<SecondSummary>,
    /// One record per request, when asked for.
    outcomes: Option<Vec<OutcomeRecord>>,
}

/// Thread-safe run recorder, shared by the workers, the progress bar and the window endpoint.
pub struct Recorder {
    inner: Mutex<Inner>,
    window: Duration,
}

impl Recorder {
    /// A recorder whose rolling window covers `window` (rounded up to whole seconds).
    pub fn new(window: Duration) -> Self {
        Recorder {
            inner: Mutex::new(Inner {
                start: None,
                start_wall: None,
                intended: 0,
                started: 0,
                completed: 0,
                errors: 0,
                degraded: 0,
                degraded_by_text: [0; MAX_DEGRADED_TEXTS],
                dropped: 0,
                status: BTreeMap::new(),
                error_kinds: BTreeMap::new(),
                corrected: histogram(),
                raw: histogram(),
                live: VecDeque::new(),
                done: Vec::new(),
                outcomes: None,
            }),
            window: window.max(Duration::from_secs(1)),
        }
    }

    /// The same recorder, also keeping one [`OutcomeRecord`] per request (about 40 bytes
    /// each) for [`Recorder::take_outcomes`].
    pub fn with_outcomes(self) -> Self {
        self.lock().outcomes = Some(Vec::new());
        self
    }

    /// The per-request records so far (empty unless [`Recorder::with_outcomes`]), leaving
    /// none behind.
    pub fn take_outcomes(&self) -> Vec<OutcomeRecord> {
        self.lock()
            .outcomes
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    fn window_secs(&self) -> u64 {
        self.window.as_secs_f64().ceil() as u64
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the counters half-updated in a way
        // that matters for a report, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the start of the run; seconds in the time series count from here.
    pub fn start(&self, at: Instant) {
        let mut inner = self.lock();
        inner.start = Some(at);
        // The wall clock of the same moment, so per-request times can be lined up with
        // events outside this process (a fault injected by a script).
        inner.start_wall = Some(SystemTime::now() - at.elapsed());
    }

    /// Start instant, once the run has begun.
    pub fn started_at(&self) -> Option<Instant> {
        self.lock().start
    }

    fn bucket(inner: &mut Inner, keep: u64, at: Instant) -> &mut Bucket {
        let start = *inner.start.get_or_insert(at);
        let second = at.saturating_duration_since(start).as_secs();
        let next = inner.live.back().map_or(0, |b| b.second + 1);
        for s in next..=second {
            inner.live.push_back(Bucket::new(s));
        }
        while inner.live.len() as u64 > keep {
            if let Some(old) = inner.live.pop_front() {
                inner.done.push(old.summary(1.0));
            }
        }
        let first = inner.live.front().map_or(0, |b| b.second);
        // Anything older than the live buckets (cannot normally happen: callers record
        // "now") is attributed to the oldest live second.
        let index = second.saturating_sub(first) as usize;
        let last = inner.live.len() - 1;
        &mut inner.live[index.min(last)]
    }

    fn keep(&self) -> u64 {
        self.window_secs() + 2
    }

    /// The scheduler handed out a request due at `at`.
    pub fn intended(&self, at: Instant) {
        let keep = self.keep();
        let mut inner = self.lock();
        inner.intended += 1;
        Self::bucket(&mut inner, keep, at).intended += 1;
    }

    /// A request went on the wire at `at`.
    pub fn started(&self, at: Instant) {
        let keep = self.keep();
        let mut inner = self.lock();
        inner.started += 1;
        Self::bucket(&mut inner, keep, at).started += 1;
    }

    /// Closed model: a request due and sent at `at` (one lock instead of two).
    pub fn sent_now(&self, at: Instant) {
        let keep = self.keep();
        let mut inner = self.lock();
        inner.intended += 1;
        inner.started += 1;
        let bucket = Self::bucket(&mut inner, keep, at);
        bucket.intended += 1;
        bucket.started += 1;
    }

    /// Request `entry` of the mix, due at `intended`, was never sent because it was already
    /// too late when a connection freed up at `at`.
    pub fn dropped(&self, intended: Instant, at: Instant, entry: usize) {
        let keep = self.keep();
        let mut inner = self.lock();
        inner.dropped += 1;
        Self::bucket(&mut inner, keep, at).dropped += 1;
        Self::log(&mut inner, [intended, at, at], entry, Answer::Dropped);
    }

    /// Appends a per-request record when they are kept; times become microseconds since
    /// the start.
    fn log(inner: &mut Inner, [intended, sent, done]: [Instant; 3], entry: usize, answer: Answer) {
        let Some(start) = inner.start else { return };
        let Some(log) = inner.outcomes.as_mut() else {
            return;
        };
        let us = |t: Instant| micros_or_zero(t.saturating_duration_since(start));
        log.push(OutcomeRecord {
            intended_us: us(intended),
            sent_us: us(sent),
            done_us: us(done),
            entry: u16::try_from(entry).unwrap_or(u16::MAX),
            answer,
        });
    }

    /// Request `entry` of the mix finished at `done`; it was due at `intended` and sent at
    /// `sent`.
    pub fn finished(
        &self,
        intended: Instant,
        sent: Instant,
        done: Instant,
        entry: usize,
        outcome: Outcome,
    ) {
        let keep = self.keep();
        let mut inner = self.lock();
        let answer = match outcome {
            Outcome::Status(code) => Answer::Status(code),
            Outcome::Degraded { status, texts } => Answer::Degraded { status, texts },
            Outcome::Error(kind) => Answer::Error(kind),
        };
        Self::log(&mut inner, [intended, sent, done], entry, answer);
        let texts = match outcome {
            Outcome::Degraded { texts, .. } => texts,
            _ => 0,
        };
        if texts != 0 {
            inner.degraded += 1;
            for (i, n) in inner.degraded_by_text.iter_mut().enumerate() {
                if texts & (1 << i) != 0 {
                    *n += 1;
                }
            }
        }
        match outcome {
            Outcome::Status(code) | Outcome::Degraded { status: code, .. } => {
                let corrected = micros(done.saturating_duration_since(intended));
                let raw = micros(done.saturating_duration_since(sent));
                inner.completed += 1;
                *inner.status.entry(code).or_default() += 1;
                record(&mut inner.corrected, corrected);
                record(&mut inner.raw, raw);
                let bucket = Self::bucket(&mut inner, keep, done);
                bucket.completed += 1;
                if texts != 0 {
                    bucket.degraded += 1;
                }
                if code >= 500 {
                    bucket.server_errors += 1;
                } else {
                    for (slow, t) in bucket.slow.iter_mut().zip(SLO_THRESHOLDS_MS) {
                        if corrected > u64::from(t) * 1000 {
                            *slow += 1;
                        }
                    }
                }
                *bucket.status.entry(code).or_default() += 1;
                record(&mut bucket.corrected, corrected);
                record(&mut bucket.raw, raw);
            }
            Outcome::Error(kind) => {
                inner.errors += 1;
                *inner.error_kinds.entry(kind).or_default() += 1;
                Self::bucket(&mut inner, keep, done).errors += 1;
            }
        }
    }

    /// Steady-state figures over the last window, as of `now`.
    pub fn window(&self, now: Instant, requested_rate: impl Fn(Duration) -> f64) -> WindowSummary {
        let window = self.window_secs();
        let inner = self.lock();
        let start = inner.start.unwrap_or(now);
        let elapsed = now.saturating_duration_since(start);
        let current = elapsed.as_secs();
        // Complete seconds only, so a half-filled current second does not halve the rate;
        // before the first second completes, use the partial one.
        let (from, to, span) = if current == 0 {
            (0, 0, elapsed.as_secs_f64())
        } else {
            let from = current.saturating_sub(window);
            (from, current - 1, (current - from) as f64)
        };
        let mut merged = histogram();
        let (mut count, mut intended, mut errors, mut server_errors, mut dropped) = (0, 0, 0, 0, 0);
        let mut degraded = 0;
        let mut slow = [0u64; SLO_THRESHOLDS_MS.len()];
        let mut status: BTreeMap<String, u64> = BTreeMap::new();
        for b in inner
            .live
            .iter()
            .filter(|b| b.second >= from && b.second <= to)
        {
            count += b.completed;
            intended += b.intended;
            errors += b.errors;
            server_errors += b.server_errors;
            degraded += b.degraded;
            dropped += b.dropped;
            for (total, n) in slow.iter_mut().zip(b.slow) {
                *total += n;
            }
            for (code, n) in &b.status {
                *status.entry(code.to_string()).or_default() += n;
            }
            // Same settings on both sides; addition cannot fail with auto-resize on.
            let _ = merged.add(&b.corrected);
        }
        let p = Percentiles::of(&merged);
        let per_second = |n: u64| if span > 0.0 { n as f64 / span } else { 0.0 };
        let requested_rps = if span > 0.0 && intended > 0 {
            per_second(intended)
        } else {
            requested_rate(elapsed)
        };
        let attempts = count + errors;
        WindowSummary {
            window_s: span,
            elapsed_s: elapsed.as_secs_f64(),
            count,
            requested_rps,
            achieved_rps: per_second(count),
            error_ratio: if attempts == 0 {
                0.0
            } else {
                (errors + server_errors) as f64 / attempts as f64
            },
            errors,
            degraded,
            degraded_ratio: if count == 0 {
                0.0
            } else {
                degraded as f64 / count as f64
            },
            dropped,
            p50_ms: p.p50,
            p95_ms: p.p95,
            p99_ms: p.p99,
            status,
            bad_ratios: SLO_THRESHOLDS_MS
                .iter()
                .zip(slow)
                .map(|(t, n)| {
                    let bad = errors + server_errors + n;
                    let ratio = if attempts == 0 {
                        0.0
                    } else {
                        bad as f64 / attempts as f64
                    };
                    (format!("bad_ratio_{t}ms"), ratio)
                })
                .collect(),
        }
    }

    /// The last complete second, for the live progress line.
    pub fn last_second(&self) -> Option<SecondSummary> {
        let inner = self.lock();
        let n = inner.live.len();
        if n >= 2 {
            Some(inner.live[n - 2].summary(1.0))
        } else {
            inner.done.last().cloned()
        }
    }

    /// Running totals (cheap counters only).
    pub fn counters(&self) -> Counters {
        let inner = self.lock();
        Counters {
            started: inner.started,
            completed: inner.completed,
            errors: inner.errors,
            degraded: inner.degraded,
            dropped: inner.dropped,
        }
    }

    /// Everything, with the time series closed at `end` (which fixes the length of the last,
    /// partial second).
    pub fn totals(&self, end: Instant) -> Totals {
        let inner = self.lock();
        let elapsed = inner
            .start
            .map_or(0.0, |s| end.saturating_duration_since(s).as_secs_f64());
        let mut series = inner.done.clone();
        series.extend(
            inner
                .live
                .iter()
                .map(|b| b.summary((elapsed - b.second as f64).clamp(0.0, 1.0))),
        );
        Totals {
            start_unix_ms: inner.start_wall.map(|t| {
                t.duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            }),
            intended: inner.intended,
            started: inner.started,
            completed: inner.completed,
            errors: inner.errors,
            degraded: inner.degraded,
            degraded_by_text: inner.degraded_by_text.to_vec(),
            dropped: inner.dropped,
            status: inner.status.clone(),
            error_kinds: inner.error_kinds.clone(),
            corrected: Percentiles::of(&inner.corrected),
            raw: Percentiles::of(&inner.raw),
            series,
        }
    }
}

/// Records a value; the histograms auto-resize, and values are capped at an hour, so the
/// only possible failure (a value beyond `i64::MAX / 2`) cannot happen.
fn record(h: &mut Histogram<u64>, micros: u64) {
    let _ = h.record(micros.min(3_600_000_000));
}

fn micros(d: Duration) -> u64 {
    micros_or_zero(d).max(1)
}

fn micros_or_zero(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// Running counters, for the progress line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    pub started: u64,
    pub completed: u64,
    pub errors: u64,
    pub degraded: u64,
    pub dropped: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn corrected_counts_from_intended_time() {
        let rec = Recorder::new(Duration::from_secs(10));
        let t0 = Instant::now();
        rec.start(t0);
        rec.intended(t0);
        rec.started(t0 + Duration::from_millis(100));
        let done = t0 + Duration::from_millis(110);
        rec.finished(
            t0,
            t0 + Duration::from_millis(100),
            done,
            0,
            Outcome::Status(200),
        );
        rec.finished(t0, t0, done, 0, Outcome::Error(ErrorKind::Timeout));
        let t = rec.totals(t0 + Duration::from_secs(10));
        assert!((t.corrected.p50 - 110.0).abs() < 0.2, "{:?}", t.corrected);
        assert!((t.raw.p50 - 10.0).abs() < 0.02, "{:?}", t.raw);
        assert_eq!(t.status[&200], 1);
        assert_eq!(t.error_kinds[&ErrorKind::Timeout], 1);
        assert_eq!((t.intended, t.started, t.completed, t.errors), (1, 1, 1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn series_and_window() {
        let rec = Recorder::new(Duration::from_secs(2));
        let t0 = Instant::now();
        rec.start(t0);
        // 10 s of 10 requests per second, the last 3 s all failing with 503.
        for s in 0..10u64 {
            for k in 0..10u64 {
                let at = t0 + Duration::from_millis(s * 1000 + k * 100);
                rec.intended(at);
                rec.started(at);
                let code = if s >= 7 { 503 } else { 200 };
                rec.finished(
                    at,
                    at,
                    at + Duration::from_millis(5),
                    0,
                    Outcome::Status(code),
                );
            }
        }
        let now = t0 + Duration::from_millis(10_050);
        let w = rec.window(now, |_| 0.0);
        assert_eq!(w.window_s, 2.0);
        assert_eq!(w.count, 20);
        assert_eq!(w.achieved_rps, 10.0);
        assert_eq!(w.requested_rps, 10.0);
        assert_eq!(w.error_ratio, 1.0);
        assert_eq!(w.status["503"], 20);
        let t = rec.totals(t0 + Duration::from_secs(10));
        assert_eq!(t.series.len(), 10);
        assert!(
            t.series
                .iter()
                .enumerate()
                .all(|(i, s)| s.second == i as u64 && s.completed == 10)
        );
        assert!(
            t.series.iter().all(|s| s.achieved_rps == 10.0),
            "{:?}",
            t.series
        );
        assert_eq!(t.series[8].server_errors, 10);
        assert!((t.series[0].corrected.p99 - 5.0).abs() < 0.01);
    }

    #[tokio::test(start_paused = true)]
    async fn slow_successes_count_against_latency_slos() {
        let rec = Recorder::new(Duration::from_secs(1));
        let t0 = Instant::now();
        rec.start(t0);
        // One second: 6 fast answers, 3 answers in 700 ms, 1 failure.
        for (k, (ms, code)) in [
            (5, 200),
            (5, 200),
            (5, 200),
            (5, 200),
            (5, 200),
            (5, 200),
            (700, 200),
            (700, 200),
            (700, 200),
            (5, 503),
        ]
        .iter()
        .enumerate()
        {
            let at = t0 + Duration::from_millis(k as u64 * 10);
            rec.intended(at);
            rec.started(at);
            rec.finished(
                at,
                at,
                at + Duration::from_millis(*ms),
                0,
                Outcome::Status(*code),
            );
        }
        let t = rec.totals(t0 + Duration::from_secs(2));
        assert_eq!(t.series[0].slower_than_ms["500"], 3);
        assert_eq!(t.series[0].slower_than_ms["1000"], 0);
        assert_eq!(
            t.series[0].slower_than_ms["50"], 3,
            "the 503 is counted as an error, not as slow"
        );
        let w = rec.window(t0 + Duration::from_millis(1_500), |_| 0.0);
        assert!(
            (w.bad_ratios["bad_ratio_500ms"] - 0.4).abs() < 1e-9,
            "{:?}",
            w.bad_ratios
        );
        assert!((w.bad_ratios["bad_ratio_1000ms"] - 0.1).abs() < 1e-9);
        assert!((w.error_ratio - 0.1).abs() < 1e-9);
    }

    #[tokio::test(start_paused = true)]
    async fn degraded_answers_are_counted_apart_and_logged() {
        let rec = Recorder::new(Duration::from_secs(1)).with_outcomes();
        let t0 = Instant::now();
        rec.start(t0);
        let ms = |n| t0 + Duration::from_millis(n);
        rec.intended(t0);
        rec.finished(t0, t0, ms(5), 0, Outcome::Status(200));
        let degraded = Outcome::Degraded {
            status: 200,
            texts: 0b101,
        };
        rec.finished(ms(10), ms(11), ms(20), 1, degraded);
        rec.finished(ms(30), ms(30), ms(40), 2, Outcome::Status(503));
        rec.dropped(ms(40), ms(1100), 2);
        let t = rec.totals(ms(2000));
        assert_eq!((t.completed, t.degraded, t.errors, t.dropped), (3, 1, 0, 1));
        assert_eq!(&t.degraded_by_text[..3], &[1, 0, 1]);
        assert_eq!(t.status[&200], 2, "a degraded page is still a 200");
        assert_eq!(t.series[0].degraded, 1);
        let w = rec.window(ms(1500), |_| 0.0);
        assert_eq!(w.degraded, 1);
        assert!((w.degraded_ratio - 1.0 / 3.0).abs() < 1e-9);
        assert!(
            (w.error_ratio - 1.0 / 3.0).abs() < 1e-9,
            "degraded is not an error"
        );
        assert_eq!(rec.counters().degraded, 1);
        let log = rec.take_outcomes();
        assert_eq!(log.len(), 4);
        assert_eq!(
            log[1],
            OutcomeRecord {
                intended_us: 10_000,
                sent_us: 11_000,
                done_us: 20_000,
                entry: 1,
                answer: Answer::Degraded {
                    status: 200,
                    texts: 0b101
                },
            }
        );
        assert_eq!(log[3].answer, Answer::Dropped);
        assert_eq!(log[3].done_us, 1_100_000);
        assert!(rec.take_outcomes().is_empty(), "taken");
        assert!(
            Recorder::new(Duration::from_secs(1))
                .take_outcomes()
                .is_empty()
        );
    }
}
