//! Envoy response flags: the short codes in access logs and in the `response_flags`
//! metric label that say why the proxy answered the way it did. Users meet them as
//! "503 UF" or "504 UT", so we use exactly Envoy's spellings.

use std::fmt;

/// One response flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// `UH`: no healthy upstream host (all ejected or none registered).
    NoHealthyUpstream,
    /// `UF`: connecting to the upstream failed.
    UpstreamConnectionFailure,
    /// `UO`: a circuit breaker (connection pool limit) overflowed.
    UpstreamOverflow,
    /// `NR`: no route matched the request.
    NoRouteFound,
    /// `URX`: the retry limit was reached and the last attempt failed.
    UpstreamRetryLimitExceeded,
    /// `UT`: the upstream request timed out.
    UpstreamRequestTimeout,
    /// `UC`: the upstream connection closed before the response.
    UpstreamConnectionTermination,
    /// `DC`: the downstream connection closed mid-request.
    DownstreamConnectionTermination,
    /// `LR`: the proxy reset the request locally.
    LocalReset,
    /// `DI`: the request was delayed by fault injection.
    DelayInjected,
    /// `FI`: the request was aborted by fault injection.
    FaultInjected,
    /// `RL`: rate limited.
    RateLimited,
    /// `UAEX`: denied by an external authorizer.
    UnauthorizedExternalService,
}

impl Flag {
    /// Envoy's short code.
    pub fn code(self) -> &'static str {
        match self {
            Self::NoHealthyUpstream => "UH",
            Self::UpstreamConnectionFailure => "UF",
            Self::UpstreamOverflow => "UO",
            Self::NoRouteFound => "NR",
            Self::UpstreamRetryLimitExceeded => "URX",
            Self::UpstreamRequestTimeout => "UT",
            Self::UpstreamConnectionTermination => "UC",
            Self::DownstreamConnectionTermination => "DC",
            Self::LocalReset => "LR",
            Self::DelayInjected => "DI",
            Self::FaultInjected => "FI",
            Self::RateLimited => "RL",
            Self::UnauthorizedExternalService => "UAEX",
        }
    }
}

/// The set of flags of one request, printed Envoy's way: comma-separated, `-` when empty.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Flags(Vec<Flag>);

impl Flags {
    /// No flags.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds `flag` once.
    pub fn set(&mut self, flag: Flag) {
        if !self.0.contains(&flag) {
            self.0.push(flag);
        }
    }

    /// Whether `flag` is set.
    pub fn has(&self, flag: Flag) -> bool {
        self.0.contains(&flag)
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Flags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("-");
        }
        for (i, flag) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(flag.code())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_envoy() {
        let mut f = Flags::none();
        assert_eq!(f.to_string(), "-");
        f.set(Flag::UpstreamConnectionFailure);
        f.set(Flag::UpstreamRetryLimitExceeded);
        f.set(Flag::UpstreamConnectionFailure);
        assert_eq!(f.to_string(), "UF,URX");
        assert!(f.has(Flag::UpstreamRetryLimitExceeded));
    }
}
