//! The service's configuration, read once from the environment before anything binds.
//!
//! Variable names are the original Bookinfo ones (`SERVICE_VERSION`, `DB_TYPE`,
//! `MYSQL_DB_*`), so the Istio manifests drive this service unchanged. `RATINGS_SEED` is
//! ours: it fixes the random choices of `v-faulty` and `v-delayed` so a chaos run can be
//! replayed exactly.

use std::time::Duration;

use bookinfo_common::config::{self, ConfigError, Listen, Lookup};

/// How long each database step (connect, select, close) may take before the request
/// gives up on it, so a stuck database never hangs a request.
pub const DB_STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// The variants of the service, one per Bookinfo image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Version {
    /// Fixed ratings (or POSTed overrides) from memory.
    V1,
    /// Ratings read from MySQL/MariaDB on every request.
    V2(MysqlConfig),
    /// Half of the rating requests fail with 503.
    Faulty,
    /// Half of the rating requests are answered after 7 s.
    Delayed,
    /// Unavailable (503) every other minute.
    Unavailable,
    /// Unhealthy and unavailable every other 15 minutes.
    Unhealthy,
}

impl Version {
    /// The accepted `SERVICE_VERSION` values.
    pub const NAMES: [&'static str; 6] = [
        "v1",
        "v2",
        "v-faulty",
        "v-delayed",
        "v-unavailable",
        "v-unhealthy",
    ];

    /// The `SERVICE_VERSION` value of this variant.
    pub fn name(&self) -> &'static str {
        match self {
            Self::V1 => "v1",
            Self::V2(_) => "v2",
            Self::Faulty => "v-faulty",
            Self::Delayed => "v-delayed",
            Self::Unavailable => "v-unavailable",
            Self::Unhealthy => "v-unhealthy",
        }
    }
}

/// Where v2 reads its ratings. The database name is fixed to `test` in production (the
/// original's); tests point it elsewhere to work on their own data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlConfig {
    /// `MYSQL_DB_HOST`, default `localhost`.
    pub host: String,
    /// `MYSQL_DB_PORT`, default 3306.
    pub port: u16,
    /// `MYSQL_DB_USER`, default `root`.
    pub user: String,
    /// `MYSQL_DB_PASSWORD`, default empty (no password).
    pub password: String,
    /// Database holding the `ratings` table: `test`.
    pub database: String,
    /// Limit for each of connect, select and close.
    pub step_timeout: Duration,
}

impl MysqlConfig {
    /// Reads the `MYSQL_DB_*` variables.
    pub fn from_env(env: &dyn Lookup) -> Result<Self, ConfigError> {
        Ok(Self {
            host: non_empty(env, "MYSQL_DB_HOST").unwrap_or_else(|| "localhost".to_owned()),
            port: config::port(env, "MYSQL_DB_PORT", 3306)?,
            user: non_empty(env, "MYSQL_DB_USER").unwrap_or_else(|| "root".to_owned()),
            password: config::string(env, "MYSQL_DB_PASSWORD", ""),
            database: "test".to_owned(),
            step_timeout: DB_STEP_TIMEOUT,
        })
    }
}

/// Everything the service needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Listen address: `BIND_ADDRESS`, `PORT` or the first argument (default `[::]:9080`).
    pub listen: Listen,
    /// `SERVICE_VERSION`, default `v1`.
    pub version: Version,
    /// `RATINGS_SEED`: seed for the fault variants' random choices; unset = random.
    pub seed: Option<u64>,
}

impl Config {
    /// Parses the environment; `port_arg` is the optional first command-line argument.
    pub fn from_env(env: &dyn Lookup, port_arg: Option<&str>) -> Result<Self, ConfigError> {
        let listen = Listen::from_env(env, port_arg)?;
        let version = parse_version(env)?;
        let seed = match non_empty(env, "RATINGS_SEED") {
            None => None,
            Some(v) => Some(v.trim().parse::<u64>().map_err(|_| {
                ConfigError::new(
                    "RATINGS_SEED",
                    &v,
                    "expected a whole number from 0 to 18446744073709551615",
                )
            })?),
        };
        Ok(Self {
            listen,
            version,
            seed,
        })
    }
}

fn parse_version(env: &dyn Lookup) -> Result<Version, ConfigError> {
    let raw = non_empty(env, "SERVICE_VERSION").unwrap_or_else(|| "v1".to_owned());
    match raw.trim() {
        "v1" => Ok(Version::V1),
        "v2" => {
            let db_type = config::string(env, "DB_TYPE", "");
            if db_type.trim() == "mysql" {
                Ok(Version::V2(MysqlConfig::from_env(env)?))
            } else {
                Err(ConfigError::new(
                    "DB_TYPE",
                    &db_type,
                    "SERVICE_VERSION=v2 needs DB_TYPE=mysql (the MongoDB back end is not available in this build)",
                ))
            }
        }
        "v-faulty" => Ok(Version::Faulty),
        "v-delayed" => Ok(Version::Delayed),
        "v-unavailable" => Ok(Version::Unavailable),
        "v-unhealthy" => Ok(Version::Unhealthy),
        _ => Err(ConfigError::new(
            "SERVICE_VERSION",
            &raw,
            format!("expected one of {}", Version::NAMES.join(", ")),
        )),
    }
}

/// The value of `var` unless it is unset or blank.
fn non_empty(env: &dyn Lookup, var: &str) -> Option<String> {
    env.get(var).filter(|v| !v.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: HashMap<&str, &str> = pairs.iter().copied().collect();
        Config::from_env(&env, None)
    }

    #[test]
    fn defaults_to_v1_on_9080_without_a_seed() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.version, Version::V1);
        assert_eq!(c.listen.port, 9080);
        assert_eq!(c.seed, None);
        assert_eq!(
            parse(&[("SERVICE_VERSION", "")]).unwrap().version,
            Version::V1
        );
    }

    #[test]
    fn reads_every_variant() {
        for name in Version::NAMES {
            let c = parse(&[("SERVICE_VERSION", name), ("DB_TYPE", "mysql")]).unwrap();
            assert_eq!(c.version.name(), name);
        }
    }

    #[test]
    fn unknown_version_lists_the_valid_ones() {
        let err = parse(&[("SERVICE_VERSION", "v3")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid SERVICE_VERSION=\"v3\": expected one of v1, v2, v-faulty, v-delayed, v-unavailable, v-unhealthy"
        );
    }

    #[test]
    fn v2_reads_mysql_settings_with_the_original_defaults() {
        let c = parse(&[("SERVICE_VERSION", "v2"), ("DB_TYPE", "mysql")]).unwrap();
        let Version::V2(db) = c.version else {
            panic!("not v2: {:?}", c.version)
        };
        assert_eq!(
            (
                db.host.as_str(),
                db.port,
                db.user.as_str(),
                db.password.as_str()
            ),
            ("localhost", 3306, "root", "")
        );
        assert_eq!(db.database, "test");

        let c = parse(&[
            ("SERVICE_VERSION", "v2"),
            ("DB_TYPE", "mysql"),
            ("MYSQL_DB_HOST", "mysqldb"),
            ("MYSQL_DB_PORT", "13306"),
            ("MYSQL_DB_USER", "bookinfo"),
            ("MYSQL_DB_PASSWORD", "password"),
        ])
        .unwrap();
        let Version::V2(db) = c.version else {
            panic!("not v2")
        };
        assert_eq!(
            (
                db.host.as_str(),
                db.port,
                db.user.as_str(),
                db.password.as_str()
            ),
            ("mysqldb", 13306, "bookinfo", "password")
        );
    }

    #[test]
    fn v2_without_mysql_explains_that_mongodb_is_not_available() {
        for pairs in [
            vec![("SERVICE_VERSION", "v2")],
            vec![("SERVICE_VERSION", "v2"), ("DB_TYPE", "mongodb")],
        ] {
            let msg = parse(&pairs).unwrap_err().to_string();
            assert!(msg.starts_with("invalid DB_TYPE="), "{msg}");
            assert!(
                msg.contains("MongoDB back end is not available") && msg.contains("DB_TYPE=mysql"),
                "{msg}"
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let err = parse(&[
            ("SERVICE_VERSION", "v2"),
            ("DB_TYPE", "mysql"),
            ("MYSQL_DB_PORT", "db"),
        ])
        .unwrap_err();
        assert_eq!(err.var, "MYSQL_DB_PORT");
        let err = parse(&[("RATINGS_SEED", "-3")]).unwrap_err();
        assert_eq!(err.var, "RATINGS_SEED");
        assert_eq!(parse(&[("RATINGS_SEED", "42")]).unwrap().seed, Some(42));
        assert_eq!(parse(&[("PORT", "nine")]).unwrap_err().var, "PORT");
    }
}
