//! Typed configuration, read once from the environment before anything is bound.
//!
//! Variable names follow the original productpage (`DETAILS_HOSTNAME`,
//! `*_SERVICE_PORT`, `SERVICES_DOMAIN`, `FLOOD_FACTOR`) so lab material written for
//! Istio's Bookinfo works unchanged; our own knobs carry the `PRODUCTPAGE_` prefix.

use bookinfo_common::config::{self, ConfigError, Listen, Lookup, Upstream};
use reqwest::Url;

/// Secret used when `PRODUCTPAGE_SESSION_SECRET` is unset. It is fixed on purpose:
/// every replica and every restart must accept the cookies the others issued, as the
/// original's hard-coded key allows. Set your own secret for anything but a demo.
const DEFAULT_SESSION_SECRET: &str = "bookinfo-productpage-demo-session-key";

/// Everything productpage needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen (`BIND_ADDRESS`, `PORT` or the first argument; default `[::]:9080`).
    pub listen: Listen,
    /// details service base URL.
    pub details: Url,
    /// reviews service base URL.
    pub reviews: Url,
    /// ratings service base URL (only the JSON API calls it directly).
    pub ratings: Url,
    /// Extra reviews calls per page view (`FLOOD_FACTOR`), to overload reviews on demand.
    pub flood_factor: u32,
    /// Reuse upstream connections (`PRODUCTPAGE_KEEPALIVE`). Without a proxy it is off by
    /// default like the original, so that every call is routed independently and
    /// traffic-shifting percentages show up even without a mesh; behind `HTTP_PROXY` (the
    /// sidecar routes each request) it is on.
    pub keep_alive: bool,
    /// Key for signing the session cookie (`PRODUCTPAGE_SESSION_SECRET`).
    pub session_secret: String,
}

impl Config {
    /// Reads the configuration; `arg` is the optional positional port argument.
    pub fn from_lookup(env: &dyn Lookup, arg: Option<&str>) -> Result<Self, ConfigError> {
        let session_secret = match env.get("PRODUCTPAGE_SESSION_SECRET") {
            None => DEFAULT_SESSION_SECRET.to_owned(),
            Some(s) if s.trim().is_empty() => {
                return Err(ConfigError::new(
                    "PRODUCTPAGE_SESSION_SECRET",
                    &s,
                    "expected a non-empty secret (unset it to use the built-in demo key)",
                ));
            }
            Some(s) => s,
        };
        Ok(Self {
            listen: Listen::from_env(env, arg)?,
            details: upstream(env, "DETAILS", "details")?,
            reviews: upstream(env, "REVIEWS", "reviews")?,
            ratings: upstream(env, "RATINGS", "ratings")?,
            flood_factor: config::count(env, "FLOOD_FACTOR", 0)?,
            // The original opens a connection per call so that, without a mesh, each call
            // is balanced anew across reviews pods. Behind an HTTP proxy (the sidecar)
            // routing is per request anyway, so pooled connections pin nothing: reuse them.
            keep_alive: config::strict_flag(env, "PRODUCTPAGE_KEEPALIVE", behind_proxy(env))?,
            session_secret,
        })
    }
}

/// An upstream's base URL; a host name that cannot form a URL is a config error
/// naming `<PREFIX>_HOSTNAME` (or `SERVICES_DOMAIN`), caught before binding.
fn upstream(env: &dyn Lookup, prefix: &str, default_host: &str) -> Result<Url, ConfigError> {
    let up = Upstream::from_env(env, prefix, default_host)?;
    Url::parse(&up.base_url).map_err(|e| {
        let var = format!("{prefix}_HOSTNAME");
        let value = env
            .get(&var)
            .or_else(|| env.get("SERVICES_DOMAIN"))
            .unwrap_or_default();
        ConfigError::new(
            &var,
            &value,
            format_args!("cannot form a URL from {:?}: {e}", up.base_url),
        )
    })
}

/// Whether outbound calls go through an HTTP proxy (`HTTP_PROXY` or `http_proxy`).
fn behind_proxy(env: &dyn Lookup) -> bool {
    ["HTTP_PROXY", "http_proxy"]
        .iter()
        .any(|v| env.get(v).is_some_and(|p| !p.trim().is_empty()))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        Config::from_lookup(&env, None)
    }

    #[test]
    fn keep_alive_follows_the_proxy_unless_set() {
        assert!(
            parse(&[("HTTP_PROXY", "http://127.0.0.1:15001")])
                .unwrap()
                .keep_alive
        );
        assert!(
            !parse(&[
                ("HTTP_PROXY", "http://127.0.0.1:15001"),
                ("PRODUCTPAGE_KEEPALIVE", "false")
            ])
            .unwrap()
            .keep_alive
        );
        assert!(!parse(&[("HTTP_PROXY", " ")]).unwrap().keep_alive);
    }

    #[test]
    fn defaults_match_the_original() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.details.as_str(), "http://details:9080/");
        assert_eq!(c.reviews.as_str(), "http://reviews:9080/");
        assert_eq!(c.ratings.as_str(), "http://ratings:9080/");
        assert_eq!(c.listen.port, 9080);
        assert_eq!(c.flood_factor, 0);
        assert!(!c.keep_alive);
        assert_eq!(c.session_secret, DEFAULT_SESSION_SECRET);
    }

    #[test]
    fn overrides_are_honoured() {
        let c = parse(&[
            ("SERVICES_DOMAIN", "default.svc.cluster.local"),
            ("REVIEWS_HOSTNAME", "rv"),
            ("RATINGS_SERVICE_PORT", "9191"),
            ("FLOOD_FACTOR", "100"),
            ("PRODUCTPAGE_KEEPALIVE", "true"),
            ("PRODUCTPAGE_SESSION_SECRET", "s3cret"),
        ])
        .unwrap();
        assert_eq!(
            c.details.as_str(),
            "http://details.default.svc.cluster.local:9080/"
        );
        assert_eq!(
            c.reviews.as_str(),
            "http://rv.default.svc.cluster.local:9080/"
        );
        assert_eq!(
            c.ratings.as_str(),
            "http://ratings.default.svc.cluster.local:9191/"
        );
        assert_eq!(c.flood_factor, 100);
        assert!(c.keep_alive);
        assert_eq!(c.session_secret, "s3cret");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse(&[("DETAILS_SERVICE_PORT", "abc")]).unwrap_err();
        assert_eq!(err.var, "DETAILS_SERVICE_PORT");
        assert!(
            err.to_string()
                .starts_with("invalid DETAILS_SERVICE_PORT=\"abc\""),
            "{err}"
        );
        assert_eq!(
            parse(&[("FLOOD_FACTOR", "-1")]).unwrap_err().var,
            "FLOOD_FACTOR"
        );
        assert_eq!(
            parse(&[("PRODUCTPAGE_KEEPALIVE", "maybe")])
                .unwrap_err()
                .var,
            "PRODUCTPAGE_KEEPALIVE"
        );
        assert_eq!(
            parse(&[("PRODUCTPAGE_SESSION_SECRET", " ")])
                .unwrap_err()
                .var,
            "PRODUCTPAGE_SESSION_SECRET"
        );
        assert_eq!(parse(&[("PORT", "99999")]).unwrap_err().var, "PORT");
        assert_eq!(
            parse(&[("REVIEWS_HOSTNAME", "a b")]).unwrap_err().var,
            "REVIEWS_HOSTNAME"
        );
    }
}
