//! Restart backoff for supervised processes, like a pod's CrashLoopBackOff: 1 s doubling
//! to 30 s, and back to 1 s once a process has stayed up for a minute (so one crash after
//! a long healthy run restarts quickly, while a crash loop does not burn the laptop).

use std::time::Duration;

/// The schedule's parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffPolicy {
    /// First delay.
    pub initial: Duration,
    /// Largest delay.
    pub max: Duration,
    /// Uptime after which the delay starts again from `initial`.
    pub reset_after: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
            reset_after: Duration::from_secs(60),
        }
    }
}

/// The state of one process's schedule.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: BackoffPolicy,
    next: Duration,
}

impl Backoff {
    /// A fresh schedule.
    pub fn new(policy: BackoffPolicy) -> Self {
        Self {
            policy,
            next: policy.initial,
        }
    }

    /// The delay before restarting a process that exited after running for `uptime`.
    pub fn delay_after(&mut self, uptime: Duration) -> Duration {
        if uptime >= self.policy.reset_after {
            self.next = self.policy.initial;
        }
        let delay = self.next;
        self.next = (delay * 2).min(self.policy.max);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_thirty_seconds() {
        let mut b = Backoff::new(BackoffPolicy::default());
        let short = Duration::from_secs(2);
        let got: Vec<u64> = (0..8).map(|_| b.delay_after(short).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn resets_after_a_minute_of_uptime() {
        let mut b = Backoff::new(BackoffPolicy::default());
        for _ in 0..4 {
            b.delay_after(Duration::from_secs(1));
        }
        assert_eq!(
            b.delay_after(Duration::from_secs(59)),
            Duration::from_secs(16)
        );
        assert_eq!(
            b.delay_after(Duration::from_secs(60)),
            Duration::from_secs(1)
        );
        assert_eq!(
            b.delay_after(Duration::from_secs(3)),
            Duration::from_secs(2)
        );
    }
}
