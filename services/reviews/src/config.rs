//! Environment of the reviews service.

use std::time::Duration;

use bookinfo_common::config::{ConfigError, Listen, Lookup, Upstream, flag, string};

/// Parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen.
    pub listen: Listen,
    /// `SERVICE_VERSION`, shown in logs (v1, v2, v3).
    pub version: String,
    /// Whether reviews carry ratings (v2, v3).
    pub ratings_enabled: bool,
    /// Star colour (`black` in v2, `red` in v3).
    pub star_color: String,
    /// The ratings service.
    pub ratings: Upstream,
    /// `HOSTNAME` (the pod name in Kubernetes), or `null` as Java prints a missing value.
    pub podname: String,
    /// `CLUSTER_NAME`, or `null`.
    pub clustername: String,
}

impl Config {
    /// Reads the configuration; `arg` is the optional positional port argument.
    pub fn from_lookup(env: &dyn Lookup, arg: Option<&str>) -> Result<Self, ConfigError> {
        let listen = Listen::from_env(env, arg)?;
        let version = string(env, "SERVICE_VERSION", "v1");
        let explicit_ratings = env.get("ENABLE_RATINGS");
        let ratings_enabled = match (&explicit_ratings, version.as_str()) {
            (Some(_), _) => flag(env, "ENABLE_RATINGS"),
            (None, "v1") => false,
            (None, "v2" | "v3") => true,
            (None, other) => {
                return Err(ConfigError::new(
                    "SERVICE_VERSION",
                    other,
                    "expected v1, v2 or v3 (or set ENABLE_RATINGS and STAR_COLOR explicitly)",
                ));
            }
        };
        let default_color = if version == "v3" { "red" } else { "black" };
        let star_color = string(env, "STAR_COLOR", default_color);
        // The colour ends up in JSON and in a CSS class name on the page.
        if star_color.is_empty()
            || !star_color
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(ConfigError::new(
                "STAR_COLOR",
                &star_color,
                "expected a colour name such as black or red",
            ));
        }
        Ok(Self {
            listen,
            version,
            ratings_enabled,
            star_color,
            ratings: Upstream::from_env(env, "RATINGS", "ratings")?,
            podname: string(env, "HOSTNAME", "null"),
            clustername: string(env, "CLUSTER_NAME", "null"),
        })
    }

    /// How long to wait for ratings: 10 s for black stars, 2.5 s otherwise, exactly as
    /// the original decides it (by colour, not by version).
    pub fn ratings_timeout(&self) -> Duration {
        if self.star_color == "black" {
            Duration::from_secs(10)
        } else {
            Duration::from_millis(2500)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        Config::from_lookup(&env, None)
    }

    #[test]
    fn versions_select_ratings_and_colour() {
        let v1 = cfg(&[]).unwrap();
        assert!(!v1.ratings_enabled);
        let v2 = cfg(&[("SERVICE_VERSION", "v2")]).unwrap();
        assert!(v2.ratings_enabled);
        assert_eq!(
            (v2.star_color.as_str(), v2.ratings_timeout()),
            ("black", Duration::from_secs(10))
        );
        let v3 = cfg(&[("SERVICE_VERSION", "v3")]).unwrap();
        assert_eq!(
            (v3.star_color.as_str(), v3.ratings_timeout()),
            ("red", Duration::from_millis(2500))
        );
        // The images' way: explicit variables win over the version label.
        let img = cfg(&[
            ("SERVICE_VERSION", "v9"),
            ("ENABLE_RATINGS", "TRUE"),
            ("STAR_COLOR", "blue"),
        ])
        .unwrap();
        assert!(img.ratings_enabled);
        assert_eq!(img.ratings_timeout(), Duration::from_millis(2500));
        assert_eq!(
            (v1.podname.as_str(), v1.clustername.as_str()),
            ("null", "null")
        );
    }

    #[test]
    fn bad_values_name_the_variable() {
        assert!(
            cfg(&[("SERVICE_VERSION", "v4")])
                .unwrap_err()
                .to_string()
                .starts_with("invalid SERVICE_VERSION=")
        );
        assert!(
            cfg(&[("STAR_COLOR", "red\"}")])
                .unwrap_err()
                .to_string()
                .starts_with("invalid STAR_COLOR=")
        );
        assert!(cfg(&[("RATINGS_SERVICE_PORT", "x")]).is_err());
    }
}
