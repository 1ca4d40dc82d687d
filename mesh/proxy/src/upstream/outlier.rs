//! Outlier detection (passive health checking) with Istio's semantics: an endpoint that
//! returns `consecutive5xxErrors` 5xx answers in a row (or `consecutiveGatewayErrors`
//! 502/503/504, or fails to connect) is ejected for `baseEjectionTime` × the number of
//! times it has been ejected (capped at 300 s), as long as no more than
//! `maxEjectionPercent` of the endpoints are ejected (at least one always may be).
//! There is no panic mode: Istio sets the panic threshold to 0 %, so when every
//! endpoint is ejected, requests fail with `UH` instead of going to a bad host.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Envoy caps an ejection at this long, however often the host was ejected.
pub const MAX_EJECTION_TIME: Duration = Duration::from_secs(300);

/// Outlier detection settings of a cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct OutlierPolicy {
    /// Consecutive 5xx (or connect failures) that eject; 0 disables.
    pub consecutive_5xx: u32,
    /// Consecutive 502/503/504 (or connect failures) that eject; 0 disables.
    pub consecutive_gateway: u32,
    /// Base ejection time.
    pub base_ejection: Duration,
    /// Largest share of endpoints that may be ejected at once, in percent.
    pub max_ejection_percent: u32,
}

/// How one attempt against an endpoint ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A response arrived with this status.
    Status(u16),
    /// No connection could be made, or it broke before a response.
    ConnectFailure,
}

#[derive(Debug, Default)]
struct State {
    consecutive_5xx: u32,
    consecutive_gateway: u32,
    times_ejected: u32,
    ejected_until: Option<Instant>,
}

/// Passive health of one endpoint.
#[derive(Debug, Default)]
pub struct Health(Mutex<State>);

impl Health {
    /// Whether the endpoint may receive traffic at `now`.
    pub fn is_available(&self, now: Instant) -> bool {
        match self.0.lock() {
            Ok(s) => s.ejected_until.is_none_or(|until| now >= until),
            Err(_) => true,
        }
    }

    /// Whether the endpoint is ejected at `now`.
    pub fn is_ejected(&self, now: Instant) -> bool {
        !self.is_available(now)
    }
}

/// Applies `outcome` to `health` under `policy`. `ejected_now` counts endpoints of the
/// cluster currently ejected, `total` all of them. Returns true when this call ejected
/// the endpoint.
pub fn report(
    policy: &OutlierPolicy,
    health: &Health,
    outcome: Outcome,
    ejected_now: usize,
    total: usize,
    now: Instant,
) -> bool {
    let Ok(mut s) = health.0.lock() else {
        return false;
    };
    let (is_5xx, is_gateway) = match outcome {
        Outcome::Status(code) => (code >= 500, matches!(code, 502..=504)),
        Outcome::ConnectFailure => (true, true),
    };
    if is_5xx {
        s.consecutive_5xx += 1;
    } else {
        s.consecutive_5xx = 0;
    }
    if is_gateway {
        s.consecutive_gateway += 1;
    } else {
        s.consecutive_gateway = 0;
    }
    if s.ejected_until.is_some_and(|until| now < until) {
        return false;
    }
    let tripped = (policy.consecutive_5xx > 0 && s.consecutive_5xx >= policy.consecutive_5xx)
        || (policy.consecutive_gateway > 0 && s.consecutive_gateway >= policy.consecutive_gateway);
    if !tripped {
        return false;
    }
    // Envoy always allows one ejection, whatever the percentage says.
    let allowed = ((total as u64 * u64::from(policy.max_ejection_percent)) / 100).max(1) as usize;
    if ejected_now >= allowed {
        return false;
    }
    s.times_ejected += 1;
    let time = policy
        .base_ejection
        .saturating_mul(s.times_ejected)
        .min(MAX_EJECTION_TIME);
    s.ejected_until = Some(now + time);
    s.consecutive_5xx = 0;
    s.consecutive_gateway = 0;
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> OutlierPolicy {
        OutlierPolicy {
            consecutive_5xx: 3,
            consecutive_gateway: 0,
            base_ejection: Duration::from_secs(30),
            max_ejection_percent: 100,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn ejects_after_consecutive_errors_and_readmits() {
        let h = Health::default();
        let p = policy();
        let now = Instant::now();
        assert!(!report(&p, &h, Outcome::Status(503), 0, 2, now));
        assert!(
            !report(&p, &h, Outcome::Status(200), 0, 2, now),
            "a success resets the count"
        );
        assert!(!report(&p, &h, Outcome::Status(500), 0, 2, now));
        assert!(!report(&p, &h, Outcome::ConnectFailure, 0, 2, now));
        assert!(report(&p, &h, Outcome::Status(502), 0, 2, now));
        assert!(h.is_ejected(now));
        assert!(h.is_ejected(now + Duration::from_secs(29)));
        assert!(h.is_available(now + Duration::from_secs(30)));
        // Second ejection lasts twice as long.
        let later = now + Duration::from_secs(31);
        for _ in 0..3 {
            report(&p, &h, Outcome::Status(500), 0, 2, later);
        }
        assert!(h.is_ejected(later + Duration::from_secs(59)));
        assert!(h.is_available(later + Duration::from_secs(60)));
    }

    #[tokio::test(start_paused = true)]
    async fn max_ejection_percent_still_allows_one() {
        let p = OutlierPolicy {
            max_ejection_percent: 10,
            ..policy()
        };
        let now = Instant::now();
        let a = Health::default();
        let b = Health::default();
        for _ in 0..3 {
            report(&p, &a, Outcome::Status(500), 0, 2, now);
        }
        assert!(
            a.is_ejected(now),
            "10 % of 2 rounds down, but one ejection is always allowed"
        );
        for _ in 0..3 {
            report(&p, &b, Outcome::Status(500), 1, 2, now);
        }
        assert!(
            b.is_available(now),
            "a second ejection would exceed the limit"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gateway_errors_count_separately() {
        let p = OutlierPolicy {
            consecutive_5xx: 0,
            consecutive_gateway: 2,
            ..policy()
        };
        let now = Instant::now();
        let h = Health::default();
        report(&p, &h, Outcome::Status(500), 0, 1, now);
        report(&p, &h, Outcome::Status(500), 0, 1, now);
        assert!(h.is_available(now), "500 is not a gateway error");
        report(&p, &h, Outcome::Status(503), 0, 1, now);
        report(&p, &h, Outcome::Status(504), 0, 1, now);
        assert!(h.is_ejected(now));
    }
}
