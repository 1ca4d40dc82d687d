//! Environment of the details service.

use bookinfo_common::config::{ConfigError, Listen, Lookup, flag, string};

/// Default books API: the one the original calls, plain HTTP when `DO_NOT_ENCRYPT=true`
/// (the mesh's sidecar then originates TLS, as in the egress lab).
const BOOKS_API_HTTPS: &str = "https://www.googleapis.com";
const BOOKS_API_HTTP: &str = "http://www.googleapis.com:80";

/// Parsed configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where to listen.
    pub listen: Listen,
    /// `ENABLE_EXTERNAL_BOOK_SERVICE`: true only for exactly `true`, as in the original.
    pub external: bool,
    /// Base URL of the books API (`BOOKS_API_URL` overrides the default, e.g. for tests
    /// or a local mirror).
    pub books_api: String,
}

impl Config {
    /// Reads the configuration; `arg` is the optional positional port argument.
    pub fn from_lookup(env: &dyn Lookup, arg: Option<&str>) -> Result<Self, ConfigError> {
        let listen = Listen::from_env(env, arg)?;
        let external = env.get("ENABLE_EXTERNAL_BOOK_SERVICE").as_deref() == Some("true");
        let default_api = if flag(env, "DO_NOT_ENCRYPT") {
            BOOKS_API_HTTP
        } else {
            BOOKS_API_HTTPS
        };
        let books_api = string(env, "BOOKS_API_URL", default_api);
        if !(books_api.starts_with("http://") || books_api.starts_with("https://")) {
            return Err(ConfigError::new(
                "BOOKS_API_URL",
                &books_api,
                "expected an http:// or https:// URL",
            ));
        }
        Ok(Self {
            listen,
            external,
            books_api: books_api.trim_end_matches('/').to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn external_needs_exactly_true() {
        let env: HashMap<&str, &str> = [("ENABLE_EXTERNAL_BOOK_SERVICE", "TRUE")].into();
        assert!(!Config::from_lookup(&env, None).unwrap().external);
        let env: HashMap<&str, &str> = [
            ("ENABLE_EXTERNAL_BOOK_SERVICE", "true"),
            ("DO_NOT_ENCRYPT", "true"),
        ]
        .into();
        let c = Config::from_lookup(&env, None).unwrap();
        assert!(c.external);
        assert_eq!(c.books_api, "http://www.googleapis.com:80");
    }

    #[test]
    fn bad_values_name_the_variable() {
        let env: HashMap<&str, &str> = [("BOOKS_API_URL", "ftp://x")].into();
        assert!(
            Config::from_lookup(&env, None)
                .unwrap_err()
                .to_string()
                .starts_with("invalid BOOKS_API_URL=")
        );
        let env: HashMap<&str, &str> = [("PORT", "nine")].into();
        assert!(
            Config::from_lookup(&env, None)
                .unwrap_err()
                .to_string()
                .starts_with("invalid PORT=")
        );
    }
}
