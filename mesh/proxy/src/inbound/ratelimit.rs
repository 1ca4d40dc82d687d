//! Envoy's HTTP local rate limit on the inbound listener, as the EnvoyFilter of Istio's
//! "Enabling Rate Limits using Envoy" task configures it (compiled by
//! `mesh_api::compile::rate_limit`): one token bucket per filter for the whole workload,
//! checked before authorization (the filter is inserted at the head of the chain). A
//! request without a token gets Envoy's local reply, `429` with the body
//! `local_rate_limited` and the response flag `RL`, plus the filter's
//! `response_headers_to_add`.
//!
//! The bucket starts full; every `fill_interval` after it was created adds
//! `tokens_per_fill`, up to `max_tokens` (Envoy's timer-based fill). Buckets outlive
//! configuration pushes that leave their filter unchanged, so an unrelated change does
//! not hand out fresh tokens; a changed or removed filter starts over, as a new Envoy
//! filter would.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use http::{HeaderName, HeaderValue, Response, StatusCode};
use mesh_api::compile::rate_limit::LocalRateLimit;
use rand::Rng;
use serde::Serialize;
use tokio::time::{Duration, Instant};

use crate::http::body::ProxyBody;
use crate::http::respond;
use crate::telemetry::flags::Flag;
use crate::telemetry::record::RequestRecord;

/// Envoy's body for a rate-limited request.
pub const LIMITED_BODY: &str = "local_rate_limited";
/// Envoy's `RESPONSE_CODE_DETAILS` for it.
pub const LIMITED_DETAILS: &str = "local_rate_limited";

/// The buckets of one workload's inbound listener.
#[derive(Debug, Default)]
pub struct Limiters {
    /// Whether any bucket exists: lets the usual request (no limit configured) pass
    /// without taking the lock.
    active: AtomicBool,
    limiters: Mutex<Vec<Limiter>>,
}

/// One filter's bucket and Envoy's counters for it.
#[derive(Debug)]
struct Limiter {
    config: LocalRateLimit,
    tokens: u32,
    /// When the last whole interval of the fill ended.
    filled_at: Instant,
    stats: Stats,
}

/// `<stat_prefix>.http_local_rate_limit.*`, Envoy's counters.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Stats {
    /// Requests the filter was enabled for.
    pub enabled: u64,
    /// Requests that got a token.
    pub ok: u64,
    /// Requests that found the bucket empty.
    pub rate_limited: u64,
    /// Of those, the ones answered with the limit's status (the others only counted).
    pub enforced: u64,
}

/// A bucket as the admin config dump shows it.
#[derive(Debug, Serialize)]
pub struct BucketView {
    /// `namespace/name` of the EnvoyFilter.
    pub filter: String,
    /// Its `stat_prefix`.
    pub stat_prefix: String,
    /// Capacity.
    pub max_tokens: u32,
    /// Tokens added per interval.
    pub tokens_per_fill: u32,
    /// The interval, in Istio notation.
    pub fill_interval: String,
    /// Tokens left now.
    pub tokens: u32,
    /// Milliseconds until the next fill.
    pub next_fill_ms: u64,
    /// The counters.
    pub stats: Stats,
}

/// What the limiters decided for one request.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    /// Answer with the limit of this filter (index into the limiters).
    Limited(usize),
}

impl Limiter {
    fn new(config: LocalRateLimit, now: Instant) -> Self {
        Self {
            tokens: config.token_bucket.max_tokens,
            filled_at: now,
            config,
            stats: Stats::default(),
        }
    }

    fn interval(&self) -> Duration {
        // The API refuses intervals under 50 ms; the floor only guards the division.
        self.config
            .token_bucket
            .fill_interval
            .get()
            .max(Duration::from_millis(1))
    }

    /// Adds the tokens of every whole interval since the last fill.
    fn refill(&mut self, now: Instant) {
        let interval = self.interval();
        let elapsed = now.saturating_duration_since(self.filled_at);
        let fills = elapsed.as_nanos() / interval.as_nanos();
        if fills == 0 {
            return;
        }
        let bucket = self.config.token_bucket;
        let added = u128::from(bucket.tokens_per_fill).saturating_mul(fills);
        let tokens = (u128::from(self.tokens) + added).min(u128::from(bucket.max_tokens));
        self.tokens = u32::try_from(tokens).unwrap_or(bucket.max_tokens);
        // Stay on the fill's own beat: the next fill is a whole interval after this one.
        let whole = u32::try_from(fills).map_or(elapsed, |n| interval.saturating_mul(n));
        self.filled_at += whole;
    }

    fn view(&self, now: Instant) -> BucketView {
        let next = (self.filled_at + self.interval()).saturating_duration_since(now);
        BucketView {
            filter: self.config.filter.clone(),
            stat_prefix: self.config.stat_prefix.clone(),
            max_tokens: self.config.token_bucket.max_tokens,
            tokens_per_fill: self.config.token_bucket.tokens_per_fill,
            fill_interval: self.config.token_bucket.fill_interval.to_string(),
            tokens: self.tokens,
            next_fill_ms: u64::try_from(next.as_millis()).unwrap_or(u64::MAX),
            stats: self.stats,
        }
    }
}

/// `percent` of requests, drawn at random between the certain ends.
fn sampled(percent: f64, rng: &mut impl Rng) -> bool {
    percent >= 100.0 || (percent > 0.0 && rng.random::<f64>() * 100.0 < percent)
}

impl Limiters {
    /// Checks one request against `configured` (the current snapshot's limits); `Some`
    /// is the reply for a limited request, with its flag and details noted in `record`.
    pub(crate) fn check(
        &self,
        configured: &[LocalRateLimit],
        record: &mut RequestRecord,
    ) -> Option<Response<ProxyBody>> {
        if configured.is_empty() && !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sync(&mut limiters, configured, now);
        self.active.store(!limiters.is_empty(), Ordering::Relaxed);
        let Verdict::Limited(index) = admit(&mut limiters, now, &mut rand::rng()) else {
            return None;
        };
        let limiter = &limiters[index];
        record.note_flag(Flag::RateLimited);
        record.note_details(LIMITED_DETAILS);
        Some(limited_reply(limiter))
    }

    /// Envoy's `/stats` lines for the buckets: `<stat_prefix>.http_local_rate_limit.ok: 4`.
    pub fn stats_text(&self) -> String {
        let limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = String::new();
        for l in limiters.iter() {
            let prefix = &l.config.stat_prefix;
            let s = l.stats;
            for (name, value) in [
                ("enabled", s.enabled),
                ("enforced", s.enforced),
                ("ok", s.ok),
                ("rate_limited", s.rate_limited),
            ] {
                let _ = writeln!(out, "{prefix}.http_local_rate_limit.{name}: {value}");
            }
        }
        out
    }

    /// The buckets now (refilled to the present, nothing taken), for the config dump.
    pub fn view(&self) -> Vec<BucketView> {
        let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        limiters
            .iter_mut()
            .map(|l| {
                l.refill(now);
                l.view(now)
            })
            .collect()
    }
}

/// Makes the buckets those of `configured`: an unchanged filter keeps its bucket and
/// counters, a new or changed one starts full.
fn sync(limiters: &mut Vec<Limiter>, configured: &[LocalRateLimit], now: Instant) {
    if limiters.len() == configured.len()
        && limiters.iter().zip(configured).all(|(l, c)| l.config == *c)
    {
        return;
    }
    let mut old = std::mem::take(limiters);
    for config in configured {
        match old.iter().position(|l| l.config == *config) {
            Some(i) => limiters.push(old.swap_remove(i)),
            None => limiters.push(Limiter::new(config.clone(), now)),
        }
    }
}

/// Runs the request through every filter in order, as Envoy's chain would: an enabled
/// filter takes a token or counts the request as limited; an enforced limit ends it.
fn admit(limiters: &mut [Limiter], now: Instant, rng: &mut impl Rng) -> Verdict {
    for (index, l) in limiters.iter_mut().enumerate() {
        if !sampled(l.config.enabled_percent, rng) {
            continue;
        }
        l.stats.enabled += 1;
        l.refill(now);
        if l.tokens > 0 {
            l.tokens -= 1;
            l.stats.ok += 1;
            continue;
        }
        l.stats.rate_limited += 1;
        if sampled(l.config.enforced_percent, rng) {
            l.stats.enforced += 1;
            return Verdict::Limited(index);
        }
    }
    Verdict::Pass
}

/// Envoy's local reply for a limited request, with the filter's headers.
fn limited_reply(l: &Limiter) -> Response<ProxyBody> {
    let status = StatusCode::from_u16(l.config.status).unwrap_or(StatusCode::TOO_MANY_REQUESTS);
    let bucket = l.config.token_bucket;
    let mut resp = respond::text(
        status,
        LIMITED_BODY,
        &format!(
            "{} {LIMITED_DETAILS}: the token bucket of EnvoyFilter {} is empty ({} tokens, {} more every {})",
            Flag::RateLimited.code(),
            l.config.filter,
            bucket.max_tokens,
            bucket.tokens_per_fill,
            bucket.fill_interval
        ),
    );
    for h in &l.config.response_headers_to_add {
        // The API checked both; a header that still does not parse is left out.
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(h.name.as_bytes()),
            HeaderValue::from_str(&h.value),
        ) else {
            continue;
        };
        if h.append {
            resp.headers_mut().append(name, value);
        } else {
            resp.headers_mut().insert(name, value);
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_api::IstioDuration;
    use mesh_api::compile::rate_limit::TokenBucket;
    use rand::SeedableRng;

    fn limit(max: u32, per_fill: u32, every: Duration) -> LocalRateLimit {
        LocalRateLimit {
            filter: "istio-system/limit".to_owned(),
            stat_prefix: "http_local_rate_limiter".to_owned(),
            token_bucket: TokenBucket {
                max_tokens: max,
                tokens_per_fill: per_fill,
                fill_interval: IstioDuration(every),
            },
            enabled_percent: 100.0,
            enforced_percent: 100.0,
            status: 429,
            response_headers_to_add: Vec::new(),
        }
    }

    fn rng() -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(7)
    }

    #[test]
    fn a_bucket_fills_by_whole_intervals_and_never_above_its_size() {
        let start = Instant::now();
        let mut limiters = Vec::new();
        sync(
            &mut limiters,
            &[limit(4, 2, Duration::from_secs(60))],
            start,
        );
        let mut rng = rng();
        for _ in 0..4 {
            assert_eq!(admit(&mut limiters, start, &mut rng), Verdict::Pass);
        }
        assert_eq!(admit(&mut limiters, start, &mut rng), Verdict::Limited(0));
        // 59 s later: still no fill.
        let t = start + Duration::from_secs(59);
        assert_eq!(admit(&mut limiters, t, &mut rng), Verdict::Limited(0));
        // At 60 s two tokens arrive (tokens_per_fill), not four.
        let t = start + Duration::from_secs(60);
        assert_eq!(admit(&mut limiters, t, &mut rng), Verdict::Pass);
        assert_eq!(admit(&mut limiters, t, &mut rng), Verdict::Pass);
        assert_eq!(admit(&mut limiters, t, &mut rng), Verdict::Limited(0));
        // Ten minutes idle: full again, but only max_tokens.
        let t = start + Duration::from_secs(660);
        assert_eq!(limiters[0].view(t).tokens, 0, "the view before a refill");
        limiters[0].refill(t);
        assert_eq!(limiters[0].tokens, 4);
        let stats = limiters[0].stats;
        assert_eq!(
            (stats.enabled, stats.ok, stats.rate_limited, stats.enforced),
            (9, 6, 3, 3)
        );
    }

    #[test]
    fn an_unchanged_filter_keeps_its_bucket_and_a_changed_one_starts_full() {
        let start = Instant::now();
        let mut limiters = Vec::new();
        let a = limit(1, 1, Duration::from_secs(60));
        sync(&mut limiters, std::slice::from_ref(&a), start);
        assert_eq!(admit(&mut limiters, start, &mut rng()), Verdict::Pass);
        sync(&mut limiters, std::slice::from_ref(&a), start);
        assert_eq!(admit(&mut limiters, start, &mut rng()), Verdict::Limited(0));
        let b = limit(2, 1, Duration::from_secs(60));
        sync(&mut limiters, &[b], start);
        assert_eq!(admit(&mut limiters, start, &mut rng()), Verdict::Pass);
        sync(&mut limiters, &[], start);
        assert!(limiters.is_empty());
    }

    #[test]
    fn not_enabled_passes_uncounted_and_not_enforced_only_counts() {
        let start = Instant::now();
        let mut off = limit(1, 1, Duration::from_secs(60));
        off.enabled_percent = 0.0;
        let mut shadow = limit(1, 1, Duration::from_secs(60));
        shadow.enforced_percent = 0.0;
        shadow.stat_prefix = "shadow".to_owned();
        let mut limiters = Vec::new();
        sync(&mut limiters, &[off, shadow], start);
        for _ in 0..3 {
            assert_eq!(admit(&mut limiters, start, &mut rng()), Verdict::Pass);
        }
        assert_eq!(limiters[0].stats.enabled, 0);
        let s = limiters[1].stats;
        assert_eq!((s.enabled, s.ok, s.rate_limited, s.enforced), (3, 1, 2, 0));
    }

    #[test]
    fn the_reply_is_envoys_with_the_filters_headers() {
        let mut config = limit(1, 1, Duration::from_secs(60));
        config.response_headers_to_add = vec![mesh_api::compile::rate_limit::HeaderToAdd {
            name: "x-local-rate-limit".to_owned(),
            value: "true".to_owned(),
            append: false,
        }];
        let resp = limited_reply(&Limiter::new(config, Instant::now()));
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["x-local-rate-limit"], "true");
        assert_eq!(resp.headers()["content-type"], "text/plain");
        assert!(
            resp.headers()[respond::ERROR_HEADER]
                .to_str()
                .unwrap()
                .starts_with("RL local_rate_limited: the token bucket of EnvoyFilter istio-system/limit is empty")
        );
    }
}
