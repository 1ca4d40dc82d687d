//! Request mixes: weighted request templates, from YAML (`--mix`), the built-in Bookinfo mix
//! (`--bookinfo`) or a single URL.
//!
//! ```yaml
//! requests:
//!   - name: productpage          # optional, shown in reports
//!     weight: 70                 # relative, default 1
//!     method: GET                # default GET
//!     path: /productpage         # appended to the target's base path (or `url:`)
//!     headers: {accept: text/html}
//!     body: "..."                # optional
//!     login: jason               # optional: POST /login once per connection, send the cookie
//! ```
//!
//! A mix may also name *degraded texts*: a 200 answer whose body contains one of them is a
//! page that rendered an error of its own (Bookinfo's "Error fetching product details"),
//! counted apart from failures. The Bookinfo mix checks for Bookinfo's texts by default.

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method};
use memchr::memmem;
use serde::Deserialize;

use super::target::{Target, parse_url};

/// Why a mix file was refused; the text names the entry and the field.
#[derive(Debug, thiserror::Error)]
pub enum MixError {
    #[error("cannot read mix file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("invalid mix YAML: {0}")]
    Yaml(String),
    #[error("invalid mix: requests[{index}].{field}: {reason}")]
    Field {
        index: usize,
        field: &'static str,
        reason: String,
    },
    #[error("invalid mix: {0}")]
    Mix(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MixFile {
    requests: Vec<EntryFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryFile {
    name: Option<String>,
    #[serde(default = "one")]
    weight: u32,
    method: Option<String>,
    path: Option<String>,
    url: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    body: Option<String>,
    login: Option<String>,
}

fn one() -> u32 {
    1
}

/// One request template, ready to be cloned into requests.
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub weight: u32,
    pub method: Method,
    /// Path and query sent on the wire.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// User to log in as (Bookinfo `POST /login`) before sending this request.
    pub login: Option<String>,
}

/// The texts Bookinfo's product page shows when a backend failed, each with the service
/// whose failure it reports (`services/productpage/templates/productpage.html`; reviews
/// puts the ratings text in its JSON too). A page with one of them answers 200 all the same.
pub const BOOKINFO_DEGRADED_TEXTS: [(&str, &str); 5] = [
    ("details", "Error fetching product details"),
    (
        "details",
        "Sorry, product details are currently unavailable for this book.",
    ),
    ("reviews", "Error fetching product reviews"),
    (
        "reviews",
        "Sorry, product reviews are currently unavailable for this book.",
    ),
    ("ratings", "Ratings service is currently unavailable"),
];

/// At most this many degraded texts: a response's matches are kept as a bit set.
pub const MAX_DEGRADED_TEXTS: usize = 32;

/// A weighted set of request templates.
#[derive(Debug, Clone)]
pub struct Mix {
    /// Never empty: every constructor checks it.
    entries: Vec<Entry>,
    /// Cumulative weights, for picking.
    cumulative: Vec<u64>,
    /// Texts that mark a 200 answer as degraded, with their searchers.
    degraded: Vec<(String, memmem::Finder<'static>)>,
}

impl Mix {
    /// Builds a mix; refuses an empty one or one whose weights are all zero.
    pub fn new(entries: Vec<Entry>) -> Result<Self, MixError> {
        let mut total = 0u64;
        let cumulative = entries
            .iter()
            .map(|e| {
                total += u64::from(e.weight);
                total
            })
            .collect();
        if entries.is_empty() {
            return Err(MixError::Mix("`requests` is empty".into()));
        }
        if total == 0 {
            return Err(MixError::Mix("all weights are 0".into()));
        }
        Ok(Mix {
            entries,
            cumulative,
            degraded: Vec::new(),
        })
    }

    /// The same mix, with `texts` marking degraded answers (replacing any before); refuses
    /// an empty text and more than [`MAX_DEGRADED_TEXTS`].
    pub fn with_degraded_texts(mut self, texts: &[String]) -> Result<Self, MixError> {
        if texts.len() > MAX_DEGRADED_TEXTS {
            return Err(MixError::Mix(format!(
                "{} degraded texts given, at most {MAX_DEGRADED_TEXTS} are supported",
                texts.len()
            )));
        }
        if texts.iter().any(String::is_empty) {
            return Err(MixError::Mix(
                "an empty degraded text would match every page".into(),
            ));
        }
        self.degraded = texts
            .iter()
            .map(|t| (t.clone(), memmem::Finder::new(t.as_bytes()).into_owned()))
            .collect();
        Ok(self)
    }

    /// The texts that mark a 200 answer as degraded, in the order given.
    pub fn degraded_texts(&self) -> Vec<String> {
        self.degraded.iter().map(|(t, _)| t.clone()).collect()
    }

    /// Whether answers need their bodies read for the degraded check.
    pub fn checks_bodies(&self) -> bool {
        !self.degraded.is_empty()
    }

    /// Which degraded texts `body` contains: bit `i` for text `i` (0: none, a good answer).
    pub fn degraded_in(&self, body: &[u8]) -> u32 {
        self.degraded
            .iter()
            .enumerate()
            .filter(|(_, (_, finder))| finder.find(body).is_some())
            .fold(0, |mask, (i, _)| mask | (1 << i))
    }

    /// The request templates, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// A single request repeated.
    pub fn single(method: Method, path: &str, headers: HeaderMap, body: Bytes) -> Self {
        let entry = Entry {
            name: format!("{method} {path}"),
            weight: 1,
            method,
            path: path.to_string(),
            headers,
            body,
            login: None,
        };
        Mix {
            entries: vec![entry],
            cumulative: vec![1],
            degraded: Vec::new(),
        }
    }

    /// The built-in Bookinfo mix: mostly the product page, some as user jason (the user the
    /// classic routing demos single out), some direct API calls; answers are checked for
    /// [`BOOKINFO_DEGRADED_TEXTS`].
    pub fn bookinfo(target: &Target) -> Self {
        let base = &target.base_path;
        let get = |name: &str, weight, path: &str, login: Option<&str>| Entry {
            name: name.to_string(),
            weight,
            method: Method::GET,
            path: format!("{base}{path}"),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            login: login.map(str::to_string),
        };
        let entries = vec![
            get("productpage", 70, "/productpage", None),
            get("productpage as jason", 20, "/productpage", Some("jason")),
            get("reviews api", 10, "/api/v1/products/0/reviews", None),
        ];
        let degraded = BOOKINFO_DEGRADED_TEXTS
            .iter()
            .map(|(_, t)| {
                (
                    (*t).to_string(),
                    memmem::Finder::new(t.as_bytes()).into_owned(),
                )
            })
            .collect();
        Mix {
            cumulative: vec![70, 90, 100],
            entries,
            degraded,
        }
    }

    /// Parses a mix from YAML text; paths are joined to the target's base path and `url:`
    /// entries must point at the target's authority.
    pub fn from_yaml(text: &str, target: &Target) -> Result<Self, MixError> {
        let file: MixFile =
            serde_norway::from_str(text).map_err(|e| MixError::Yaml(e.to_string()))?;
        let entries = file
            .requests
            .into_iter()
            .enumerate()
            .map(|(index, e)| entry(index, e, target))
            .collect::<Result<Vec<_>, _>>()?;
        Mix::new(entries)
    }

    /// Reads and parses a mix file.
    pub fn from_file(path: &std::path::Path, target: &Target) -> Result<Self, MixError> {
        let text = std::fs::read_to_string(path).map_err(|e| MixError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Mix::from_yaml(&text, target)
    }

    /// The entry for request number `i`. Deterministic and evenly spread: the golden-ratio
    /// sequence visits the weight line uniformly, so short runs already follow the weights.
    pub fn pick(&self, i: u64) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(1);
        let x = ((i as f64 * 0.618_033_988_749_895).fract() * total as f64) as u64;
        self.cumulative
            .partition_point(|&c| c <= x)
            .min(self.entries.len().saturating_sub(1))
    }

    /// Distinct users that connections must log in as.
    pub fn logins(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .entries
            .iter()
            .filter_map(|e| e.login.clone())
            .collect();
        users.sort();
        users.dedup();
        users
    }
}

fn entry(index: usize, e: EntryFile, target: &Target) -> Result<Entry, MixError> {
    let field = |field, reason: String| MixError::Field {
        index,
        field,
        reason,
    };
    let path = match (e.path, e.url) {
        (Some(_), Some(_)) => {
            return Err(field("url", "give either `path` or `url`, not both".into()));
        }
        (None, None) => return Err(field("path", "missing (give `path` or `url`)".into())),
        (Some(p), None) if !p.starts_with('/') => {
            return Err(field("path", format!("{p:?} must start with '/'")));
        }
        (Some(p), None) => format!("{}{p}", target.base_path),
        (None, Some(url)) => {
            let (authority, _, _, path) =
                parse_url(&url).map_err(|e| field("url", e.to_string()))?;
            if authority != target.authority {
                return Err(field(
                    "url",
                    format!(
                        "{url:?} is not on the target {} (one target per run)",
                        target.authority
                    ),
                ));
            }
            path
        }
    };
    if path.parse::<http::uri::PathAndQuery>().is_err() {
        return Err(field(
            "path",
            format!("{path:?} is not a valid request path"),
        ));
    }
    let method = match e.method {
        None => Method::GET,
        Some(m) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
            .map_err(|_| field("method", format!("{m:?} is not an HTTP method")))?,
    };
    let mut headers = HeaderMap::new();
    for (name, value) in e.headers {
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| field("headers", format!("{name:?} is not a valid header name")))?;
        let value = HeaderValue::from_str(&value).map_err(|_| {
            field(
                "headers",
                format!("value of {name:?} is not a valid header value"),
            )
        })?;
        headers.append(header, value);
    }
    if let Some(user) = &e.login
        && (user.is_empty() || user.contains(['&', '=', ' ']))
    {
        return Err(field("login", format!("{user:?} is not a plain user name")));
    }
    Ok(Entry {
        name: e.name.unwrap_or_else(|| format!("{method} {path}")),
        weight: e.weight,
        method,
        path,
        headers,
        body: e.body.map(Bytes::from).unwrap_or_default(),
        login: e.login,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target::from_addr("127.0.0.1:9080".parse().unwrap(), "/")
    }

    #[test]
    fn parses_a_valid_mix() {
        let yaml = r#"
requests:
  - name: page
    weight: 3
    path: /productpage
  - weight: 1
    method: post
    url: http://127.0.0.1:9080/api/v1/products/0/reviews
    headers: {accept: application/json}
    body: "{}"
    login: jason
"#;
        let mix = Mix::from_yaml(yaml, &target()).unwrap();
        assert_eq!(mix.entries.len(), 2);
        assert_eq!(mix.entries[0].name, "page");
        assert_eq!(mix.entries[0].method, Method::GET);
        assert_eq!(mix.entries[1].method, Method::POST);
        assert_eq!(mix.entries[1].path, "/api/v1/products/0/reviews");
        assert_eq!(mix.entries[1].headers["accept"], "application/json");
        assert_eq!(&mix.entries[1].body[..], b"{}");
        assert_eq!(mix.logins(), vec!["jason".to_string()]);
        let picks = (0..4000).filter(|&i| mix.pick(i) == 0).count();
        assert!(
            (2900..=3100).contains(&picks),
            "weights 3:1 gave {picks}/4000"
        );
    }

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../../mixes/bookinfo.yaml");
        let mix = Mix::from_yaml(text, &target()).unwrap();
        assert!(mix.logins().contains(&"jason".to_string()));
    }

    #[test]
    fn invalid_mixes_name_the_field() {
        let cases = [
            (
                "requests: [{path: /a, wieght: 2}]",
                "unknown field `wieght`",
            ),
            ("requests: [{path: /a, weight: -1}]", "weight"),
            ("requests: [{weight: 1}]", "requests[0].path: missing"),
            (
                "requests: [{path: a}]",
                "requests[0].path: \"a\" must start with '/'",
            ),
            (
                "requests: [{path: /a, method: 'G T'}]",
                "requests[0].method",
            ),
            (
                "requests: [{path: /a, headers: {'bad header': x}}]",
                "requests[0].headers",
            ),
            (
                "requests: [{path: /a}, {url: 'http://other:80/x'}]",
                "requests[1].url",
            ),
            (
                "requests: [{path: /a, url: 'http://127.0.0.1:9080/'}]",
                "not both",
            ),
            ("requests: []", "`requests` is empty"),
            ("requests: [{path: /a, weight: 0}]", "all weights are 0"),
            ("reqs: []", "unknown field `reqs`"),
            ("requests: [{path: /a, login: 'a&b'}]", "requests[0].login"),
            (": : :", "invalid mix YAML"),
        ];
        for (yaml, needle) in cases {
            let err = Mix::from_yaml(yaml, &target()).unwrap_err().to_string();
            assert!(err.contains(needle), "{yaml}: {err}");
        }
    }

    #[test]
    fn degraded_texts_are_matched_as_a_bit_set() {
        let mix = Mix::bookinfo(&target());
        assert!(mix.checks_bodies());
        assert_eq!(mix.degraded_in(b"<h1>The Comedy of Errors</h1>"), 0);
        let page = b"<h2>Error fetching product reviews</h2><p>Sorry, product reviews are currently unavailable for this book.</p>";
        assert_eq!(mix.degraded_in(page), 0b01100);
        assert_eq!(
            mix.degraded_in(
                br#"{"rating": {"error": "Ratings service is currently unavailable"}}"#
            ),
            0b10000
        );
        let single = Mix::single(Method::GET, "/", HeaderMap::new(), Bytes::new());
        assert!(!single.checks_bodies());
        let custom = single
            .with_degraded_texts(&["oops".to_string(), "fallback".to_string()])
            .unwrap();
        assert_eq!(custom.degraded_in(b"a fallback page"), 0b10);
        assert_eq!(custom.degraded_texts(), ["oops", "fallback"]);
        let none = Mix::bookinfo(&target()).with_degraded_texts(&[]).unwrap();
        assert!(!none.checks_bodies());
        let e = mix
            .clone()
            .with_degraded_texts(&[String::new()])
            .unwrap_err();
        assert!(e.to_string().contains("empty degraded text"), "{e}");
        let many: Vec<String> = (0..33).map(|i| format!("t{i}")).collect();
        let e = mix.with_degraded_texts(&many).unwrap_err();
        assert!(e.to_string().contains("at most 32"), "{e}");
    }

    #[test]
    fn bookinfo_mix_uses_the_base_path() {
        let t = Target::from_addr("127.0.0.1:8080".parse().unwrap(), "/bookinfo/");
        let mix = Mix::bookinfo(&t);
        assert_eq!(mix.entries[0].path, "/bookinfo/productpage");
        assert_eq!(mix.logins(), vec!["jason".to_string()]);
    }
}
