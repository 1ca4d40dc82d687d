//! Typed configuration from environment variables.
//!
//! Parsing reads through the [`Lookup`] trait so tests pass a map instead of touching the
//! process environment (which is racy to mutate in a multi-threaded test binary).

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

/// Exit code for bad configuration (`EX_USAGE` from sysexits.h).
pub const EXIT_USAGE: i32 = 64;

/// Where configuration values come from.
pub trait Lookup {
    /// The raw value of `key`, if set.
    fn get(&self, key: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEnv;

impl Lookup for SystemEnv {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok()
    }
}

impl Lookup for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

impl Lookup for HashMap<&str, &str> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).map(|v| (*v).to_owned())
    }
}

/// A variable that is set but cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {var}={value:?}: {reason}")]
pub struct ConfigError {
    /// Name of the variable.
    pub var: String,
    /// The value found.
    pub value: String,
    /// What a valid value looks like.
    pub reason: String,
}

impl ConfigError {
    /// Builds an error for `var` holding `value`.
    pub fn new(var: &str, value: &str, reason: impl fmt::Display) -> Self {
        Self {
            var: var.to_owned(),
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A string variable, or `default` when unset.
pub fn string(env: &dyn Lookup, var: &str, default: &str) -> String {
    env.get(var).unwrap_or_else(|| default.to_owned())
}

/// A TCP port (1-65535), or `default` when unset or empty.
pub fn port(env: &dyn Lookup, var: &str, default: u16) -> Result<u16, ConfigError> {
    match env.get(var) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => match v.trim().parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(ConfigError::new(
                var,
                &v,
                "expected a port number from 1 to 65535",
            )),
        },
    }
}

/// A non-negative integer, or `default` when unset or empty.
pub fn count(env: &dyn Lookup, var: &str, default: u32) -> Result<u32, ConfigError> {
    match env.get(var) {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Ok(default),
        Some(v) => v
            .trim()
            .parse::<u32>()
            .map_err(|_| ConfigError::new(var, &v, "expected a whole number (0 or more)")),
    }
}

/// A boolean the way Java's `Boolean.valueOf` and Ruby's `== "true"` read it in the
/// original services: `true` (any case) is true, everything else is false.
pub fn flag(env: &dyn Lookup, var: &str) -> bool {
    env.get(var)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

/// A strict boolean for our own knobs: `true/false/1/0/yes/no`, anything else is an error.
pub fn strict_flag(env: &dyn Lookup, var: &str, default: bool) -> Result<bool, ConfigError> {
    match env.get(var) {
        None => Ok(default),
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "" => Ok(default),
            "true" | "1" | "yes" | "on" => Ok(true),
            "false" | "0" | "no" | "off" => Ok(false),
            _ => Err(ConfigError::new(var, &v, "expected true or false")),
        },
    }
}

/// Where a service listens: `BIND_ADDRESS` (default `::`, dual-stack) and `PORT`
/// (default 9080). The originals take the port as their first argument
/// (`ratings 9080`), so a numeric first argument is honoured too and wins over `PORT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen {
    /// Address to bind; `::` accepts IPv4 and IPv6.
    pub ip: IpAddr,
    /// Port to bind.
    pub port: u16,
}

impl Listen {
    /// Reads `BIND_ADDRESS`, `PORT` and the optional positional port argument.
    pub fn from_env(env: &dyn Lookup, arg: Option<&str>) -> Result<Self, ConfigError> {
        let ip = match env.get("BIND_ADDRESS") {
            None => IpAddr::from([0u16; 8]),
            Some(v) if v.trim().is_empty() => IpAddr::from([0u16; 8]),
            Some(v) => v
                .trim()
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse()
                .map_err(|_| {
                    ConfigError::new(
                        "BIND_ADDRESS",
                        &v,
                        "expected an IP address such as :: or 127.0.0.1",
                    )
                })?,
        };
        let port = match arg {
            Some(a) => a.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ConfigError::new("port argument", a, "expected a port number from 1 to 65535")
            })?,
            None => port(env, "PORT", 9080)?,
        };
        Ok(Self { ip, port })
    }
}

/// An upstream Bookinfo service: `http://{HOSTNAME}{.SERVICES_DOMAIN}:{SERVICE_PORT}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// Base URL without a trailing slash.
    pub base_url: String,
}

impl Upstream {
    /// Reads `<PREFIX>_HOSTNAME`, `<PREFIX>_SERVICE_PORT` and `SERVICES_DOMAIN`,
    /// with the defaults of the original services (`<name>` and 9080).
    pub fn from_env(
        env: &dyn Lookup,
        prefix: &str,
        default_host: &str,
    ) -> Result<Self, ConfigError> {
        let host = string(env, &format!("{prefix}_HOSTNAME"), default_host);
        let port = port(env, &format!("{prefix}_SERVICE_PORT"), 9080)?;
        let domain = env.get("SERVICES_DOMAIN").filter(|d| !d.is_empty());
        let host = match domain {
            Some(d) => format!("{host}.{d}"),
            None => host,
        };
        // A bare IPv6 literal needs brackets inside a URL.
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        Ok(Self {
            base_url: format!("http://{host}:{port}"),
        })
    }
}

/// Prints `<program>: <error>` and exits with [`EXIT_USAGE`]. For use in `main` only.
pub fn exit_usage(program: &str, err: &dyn fmt::Display) -> ! {
    eprintln!("{program}: {err}");
    std::process::exit(EXIT_USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&'static str, &'static str)]) -> HashMap<&'static str, &'static str> {
        pairs.iter().copied().collect()
    }

    #[test]
    fn upstream_defaults_and_overrides() {
        let e = env(&[]);
        assert_eq!(
            Upstream::from_env(&e, "REVIEWS", "reviews")
                .unwrap()
                .base_url,
            "http://reviews:9080"
        );
        let e = env(&[
            ("REVIEWS_HOSTNAME", "rv"),
            ("REVIEWS_SERVICE_PORT", "9191"),
            ("SERVICES_DOMAIN", "ns.svc"),
        ]);
        assert_eq!(
            Upstream::from_env(&e, "REVIEWS", "reviews")
                .unwrap()
                .base_url,
            "http://rv.ns.svc:9191"
        );
        let e = env(&[("DETAILS_HOSTNAME", "::1")]);
        assert_eq!(
            Upstream::from_env(&e, "DETAILS", "details")
                .unwrap()
                .base_url,
            "http://[::1]:9080"
        );
    }

    #[test]
    fn bad_port_names_the_variable() {
        let e = env(&[("RATINGS_SERVICE_PORT", "http")]);
        let err = Upstream::from_env(&e, "RATINGS", "ratings").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid RATINGS_SERVICE_PORT=\"http\": expected a port number from 1 to 65535"
        );
        assert!(port(&env(&[("PORT", "0")]), "PORT", 1).is_err());
        assert!(port(&env(&[("PORT", "70000")]), "PORT", 1).is_err());
    }

    #[test]
    fn listen_reads_arg_env_and_defaults() {
        let l = Listen::from_env(&env(&[]), None).unwrap();
        assert_eq!((l.ip.to_string().as_str(), l.port), ("::", 9080));
        let l = Listen::from_env(
            &env(&[("PORT", "8000"), ("BIND_ADDRESS", "127.0.0.1")]),
            None,
        )
        .unwrap();
        assert_eq!((l.ip.to_string().as_str(), l.port), ("127.0.0.1", 8000));
        assert_eq!(
            Listen::from_env(&env(&[("PORT", "8000")]), Some("9999"))
                .unwrap()
                .port,
            9999
        );
        assert!(Listen::from_env(&env(&[("BIND_ADDRESS", "localhost")]), None).is_err());
        assert!(Listen::from_env(&env(&[]), Some("abc")).is_err());
    }

    #[test]
    fn flags_follow_the_originals() {
        assert!(flag(&env(&[("X", "TRUE")]), "X"));
        assert!(!flag(&env(&[("X", "yes")]), "X"));
        assert!(!flag(&env(&[]), "X"));
        assert!(strict_flag(&env(&[("X", "maybe")]), "X", false).is_err());
        assert_eq!(count(&env(&[("N", "12")]), "N", 0), Ok(12));
        assert!(count(&env(&[("N", "-1")]), "N", 0).is_err());
    }
}
