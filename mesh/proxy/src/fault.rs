//! Fault injection decisions (`VirtualService.http[].fault`), made by the caller's
//! proxy like Istio does. Delay and abort are independent: a request may be delayed
//! and then aborted. An absent percentage means 0 %: no fault.

use std::time::Duration;

use rand::Rng;

/// The faults of a route (or of a fault lease from the control plane).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultSpec {
    /// Delay and the share of requests (0-100) it applies to.
    pub delay: Option<(Duration, f64)>,
    /// Abort status and the share of requests (0-100) it applies to.
    pub abort: Option<(u16, f64)>,
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultDecision {
    /// Wait this long before going on.
    pub delay: Option<Duration>,
    /// Answer with this status instead of forwarding.
    pub abort: Option<u16>,
}

impl FaultSpec {
    /// Whether this spec can ever inject anything.
    pub fn is_empty(&self) -> bool {
        self.delay.is_none_or(|(_, p)| p <= 0.0) && self.abort.is_none_or(|(_, p)| p <= 0.0)
    }

    /// Rolls the dice for one request.
    pub fn decide(&self, rng: &mut impl Rng) -> FaultDecision {
        let hit = |p: f64, rng: &mut dyn rand::RngCore| {
            p >= 100.0 || (p > 0.0 && rng.random::<f64>() * 100.0 < p)
        };
        FaultDecision {
            delay: self.delay.and_then(|(d, p)| hit(p, rng).then_some(d)),
            abort: self.abort.and_then(|(s, p)| hit(p, rng).then_some(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn percentages_hold() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let always = FaultSpec {
            delay: Some((Duration::from_secs(7), 100.0)),
            abort: None,
        };
        assert_eq!(always.decide(&mut rng).delay, Some(Duration::from_secs(7)));
        let never = FaultSpec {
            delay: None,
            abort: Some((500, 0.0)),
        };
        assert!(never.is_empty());
        assert_eq!(never.decide(&mut rng).abort, None);
        let half = FaultSpec {
            delay: None,
            abort: Some((503, 50.0)),
        };
        let hits = (0..10_000)
            .filter(|_| half.decide(&mut rng).abort.is_some())
            .count();
        assert!((4_700..5_300).contains(&hits), "{hits}");
    }
}
