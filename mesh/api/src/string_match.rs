//! `StringMatch` (exact / prefix / regex) and a regex type that is compiled once, at load.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A regular expression that must match the **whole** input, as Envoy's `safe_regex` does
/// (Istio documents RE2 full-match semantics). Compiled when the YAML is loaded, so a bad
/// pattern is a configuration error, never a runtime surprise.
#[derive(Clone)]
pub struct FullRegex {
    source: String,
    compiled: Regex,
}

impl FullRegex {
    /// Compiles `source` anchored at both ends.
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        let compiled = Regex::new(&format!("^(?:{source})$"))?;
        Ok(Self {
            source: source.to_owned(),
            compiled,
        })
    }

    /// The pattern as the user wrote it.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whole-input match.
    pub fn is_match(&self, text: &str) -> bool {
        self.compiled.is_match(text)
    }

    /// Underlying compiled regex (anchored), e.g. for capture-group rewrites.
    pub fn regex(&self) -> &Regex {
        &self.compiled
    }
}

impl fmt::Debug for FullRegex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FullRegex({:?})", self.source)
    }
}

impl PartialEq for FullRegex {
    fn eq(&self, other: &Self) -> bool {
        self.source == other.source
    }
}

impl Serialize for FullRegex {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for FullRegex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        FullRegex::checked(&source).map_err(serde::de::Error::custom)
    }
}

impl FullRegex {
    /// [`FullRegex::new`] with a one-line message for diagnostics:
    /// `invalid regex "/(a": unclosed group`.
    pub fn checked(source: &str) -> Result<Self, String> {
        FullRegex::new(source).map_err(|err| {
            // regex's message spans several lines; keep the first for a one-line diagnostic.
            let detail = err.to_string();
            let detail = detail
                .lines()
                .rfind(|line| line.starts_with("error:"))
                .unwrap_or("invalid syntax")
                .trim_start_matches("error: ")
                .to_owned();
            format!("invalid regex {source:?}: {detail}")
        })
    }
}

/// Istio `StringMatch`: one of `exact`, `prefix`, `regex`. All empty means "present"
/// (only meaningful for header and query-parameter matches).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StringMatch {
    /// Exact, case-sensitive value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exact: Option<String>,
    /// Case-sensitive prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// RE2-style regex matching the whole value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<FullRegex>,
}

impl StringMatch {
    /// Exact match helper.
    pub fn exact(value: &str) -> Self {
        Self {
            exact: Some(value.to_owned()),
            ..Self::default()
        }
    }

    /// Prefix match helper.
    pub fn prefix(value: &str) -> Self {
        Self {
            prefix: Some(value.to_owned()),
            ..Self::default()
        }
    }

    /// How many of the three alternatives are set (validation wants at most one).
    pub fn kinds_set(&self) -> usize {
        usize::from(self.exact.is_some())
            + usize::from(self.prefix.is_some())
            + usize::from(self.regex.is_some())
    }

    /// True when nothing is set: a presence check.
    pub fn is_presence(&self) -> bool {
        self.kinds_set() == 0
    }

    /// Matches `value`; `ignore_case` applies to exact and prefix only (as `ignoreUriCase`).
    pub fn matches(&self, value: &str, ignore_case: bool) -> bool {
        if let Some(exact) = &self.exact {
            return if ignore_case {
                exact.eq_ignore_ascii_case(value)
            } else {
                exact == value
            };
        }
        if let Some(prefix) = &self.prefix {
            return if ignore_case {
                value.len() >= prefix.len()
                    && value.is_char_boundary(prefix.len())
                    && value[..prefix.len()].eq_ignore_ascii_case(prefix)
            } else {
                value.starts_with(prefix.as_str())
            };
        }
        if let Some(regex) = &self.regex {
            return regex.is_match(value);
        }
        true
    }
}
