//! The deliberately misbehaving variants (`v-faulty`, `v-delayed`, `v-unavailable`,
//! `v-unhealthy`), used in demos to show what a mesh's retries, timeouts and outlier
//! detection do about a bad backend.
//!
//! Random choices come from a seedable generator (`RATINGS_SEED`) so a chaos experiment
//! can be replayed request for request. The flapping variants compute their state from
//! the time elapsed since start on tokio's clock rather than from a background timer, so
//! tests can fast-forward through the minutes with paused time.

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::config::Version;

/// How long `v-delayed` holds a delayed answer: longer than reviews-v3's 2.5 s and
/// productpage's 3 s, shorter than reviews-v2's 10 s.
pub const DELAY: Duration = Duration::from_secs(7);
/// Period of `v-unavailable`'s flips between available and unavailable.
pub const UNAVAILABLE_PERIOD: Duration = Duration::from_secs(60);
/// Period of `v-unhealthy`'s flips between healthy and unhealthy.
pub const UNHEALTHY_PERIOD: Duration = Duration::from_secs(15 * 60);

/// What to do with one rating request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Answer normally, now.
    Serve,
    /// Answer normally after waiting this long.
    ServeAfter(Duration),
    /// Answer 503 `Service unavailable`.
    Unavailable,
}

/// The fault behaviour of one running service.
#[derive(Debug)]
pub struct Faults {
    mode: Mode,
    started: Instant,
    // A mutex rather than a thread-local generator: with a seed, the sequence of
    // decisions must be the same whichever worker thread serves a request.
    rng: Mutex<StdRng>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Faulty,
    Delayed,
    Unavailable,
    Unhealthy,
}

impl Faults {
    /// The behaviour of `version`, with its clock starting now.
    pub fn new(version: &Version, seed: Option<u64>) -> Self {
        let mode = match version {
            Version::V1 | Version::V2(_) => Mode::None,
            Version::Faulty => Mode::Faulty,
            Version::Delayed => Mode::Delayed,
            Version::Unavailable => Mode::Unavailable,
            Version::Unhealthy => Mode::Unhealthy,
        };
        let rng = match seed {
            Some(seed) => StdRng::seed_from_u64(seed),
            None => StdRng::from_os_rng(),
        };
        Self {
            mode,
            started: Instant::now(),
            rng: Mutex::new(rng),
        }
    }

    /// Decides the fate of a rating request.
    pub fn decide(&self) -> Decision {
        match self.mode {
            Mode::None => Decision::Serve,
            // The original draws Math.random() and misbehaves when it is <= 0.5.
            Mode::Faulty if self.coin_flip() => Decision::Unavailable,
            Mode::Delayed if self.coin_flip() => Decision::ServeAfter(DELAY),
            Mode::Faulty | Mode::Delayed => Decision::Serve,
            Mode::Unavailable if self.flipped(UNAVAILABLE_PERIOD) => Decision::Unavailable,
            Mode::Unhealthy if self.flipped(UNHEALTHY_PERIOD) => Decision::Unavailable,
            Mode::Unavailable | Mode::Unhealthy => Decision::Serve,
        }
    }

    /// Whether `/health` reports healthy.
    pub fn healthy(&self) -> bool {
        !(self.mode == Mode::Unhealthy && self.flipped(UNHEALTHY_PERIOD))
    }

    fn coin_flip(&self) -> bool {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        rng.random::<f64>() <= 0.5
    }

    /// Whether an odd number of periods has passed: the original starts in the good
    /// state and toggles it with `setInterval(period)`.
    fn flipped(&self, period: Duration) -> bool {
        (self.started.elapsed().as_nanos() / period.as_nanos()) % 2 == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(faults: &Faults, n: usize) -> Vec<Decision> {
        (0..n).map(|_| faults.decide()).collect()
    }

    #[tokio::test(start_paused = true)]
    async fn well_behaved_versions_always_serve() {
        let f = Faults::new(&Version::V1, None);
        tokio::time::advance(UNHEALTHY_PERIOD).await;
        assert!(decisions(&f, 100).iter().all(|d| *d == Decision::Serve));
        assert!(f.healthy());
    }

    #[tokio::test(start_paused = true)]
    async fn the_same_seed_replays_the_same_decisions() {
        let a = Faults::new(&Version::Faulty, Some(7));
        let b = Faults::new(&Version::Faulty, Some(7));
        let c = Faults::new(&Version::Faulty, Some(8));
        let (da, db, dc) = (decisions(&a, 64), decisions(&b, 64), decisions(&c, 64));
        assert_eq!(da, db);
        assert_ne!(da, dc);
    }

    #[tokio::test(start_paused = true)]
    async fn faulty_fails_about_half_of_the_requests() {
        let f = Faults::new(&Version::Faulty, Some(2024));
        let failures = decisions(&f, 2000)
            .iter()
            .filter(|d| **d == Decision::Unavailable)
            .count();
        assert!(
            (900..=1100).contains(&failures),
            "{failures} of 2000 failed"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_flips_health_and_availability_together() {
        let f = Faults::new(&Version::Unhealthy, Some(1));
        assert!(f.healthy());
        assert_eq!(f.decide(), Decision::Serve);
        tokio::time::advance(UNHEALTHY_PERIOD - Duration::from_millis(1)).await;
        assert!(f.healthy());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!f.healthy());
        assert_eq!(f.decide(), Decision::Unavailable);
        tokio::time::advance(UNHEALTHY_PERIOD).await;
        assert!(f.healthy());
        assert_eq!(f.decide(), Decision::Serve);
    }
}
