//! Envoy's HTTP local rate limit (`envoy.filters.http.local_ratelimit`), read from the one
//! EnvoyFilter shape the mesh understands: Istio's "Enabling Rate Limits using Envoy"
//! task, which inserts the filter at the head of a sidecar's inbound HTTP filters. The
//! token bucket it configures is carried out by the proxy's inbound listener.
//!
//! Every other patch is refused with [`UNDERSTOOD`], because applying part of an
//! EnvoyFilter (or none of it, silently) would leave users believing a limit or a header
//! is in force when it is not.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::ProxyScope;
use crate::config::MeshConfig;
use crate::duration::{IstioDuration, parse_duration};
use crate::networking::envoy_filter::{ConfigPatch, EnvoyFilter};
use crate::security::ROOT_NAMESPACE;

/// The Envoy HTTP filter the mesh carries out.
pub const LOCAL_RATE_LIMIT_FILTER: &str = "envoy.filters.http.local_ratelimit";
/// Its configuration type.
pub const LOCAL_RATE_LIMIT_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit";
const HTTP_CONNECTION_MANAGER: &str = "envoy.filters.network.http_connection_manager";
const ROUTER: &str = "envoy.filters.http.router";
/// The wrappers istiod accepts around a typed configuration given as a plain struct.
const TYPED_STRUCTS: [&str; 2] = [
    "type.googleapis.com/udpa.type.v1.TypedStruct",
    "type.googleapis.com/xds.type.v3.TypedStruct",
];

/// What every refusal says: the patch the mesh understands.
pub const UNDERSTOOD: &str = "the mesh understands one EnvoyFilter patch: applyTo: HTTP_FILTER, \
     match.context: SIDECAR_INBOUND, match.listener.filterChain.filter.name: \
     envoy.filters.network.http_connection_manager, patch.operation: INSERT_BEFORE or \
     INSERT_FIRST, patch.value.name: envoy.filters.http.local_ratelimit (Envoy's local rate \
     limit with a token_bucket, as in Istio's \"Enabling Rate Limits using Envoy\" task)";

/// Fields of the filter's body that the proxy carries out.
const BODY_FIELDS: [&str; 6] = [
    "stat_prefix",
    "token_bucket",
    "filter_enabled",
    "filter_enforced",
    "response_headers_to_add",
    "status",
];

/// Envoy refuses faster refills for the HTTP filter.
const MIN_FILL_INTERVAL_MS: u128 = 50;

/// One local rate limit on a sidecar's inbound listener, compiled from an EnvoyFilter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalRateLimit {
    /// `namespace/name` of the EnvoyFilter.
    pub filter: String,
    /// `stat_prefix`: the stats are `<stat_prefix>.http_local_rate_limit.*`.
    pub stat_prefix: String,
    /// The bucket.
    pub token_bucket: TokenBucket,
    /// `filter_enabled` as a percentage of requests (absent in the filter: 0, the filter
    /// does nothing, as in Envoy).
    pub enabled_percent: f64,
    /// `filter_enforced` as a percentage of requests (absent: 0, the filter only counts).
    pub enforced_percent: f64,
    /// Status of a limited request (`status.code`; below 400 or absent: 429).
    pub status: u16,
    /// `response_headers_to_add`: set on the responses of limited requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_headers_to_add: Vec<HeaderToAdd>,
}

/// `token_bucket`: starts full with `max_tokens`; every `fill_interval` adds
/// `tokens_per_fill`, never above `max_tokens`; each request takes one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    /// Capacity, and the tokens at the start.
    pub max_tokens: u32,
    /// Tokens added per interval (default 1).
    pub tokens_per_fill: u32,
    /// The refill interval.
    pub fill_interval: IstioDuration,
}

/// One `response_headers_to_add` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeaderToAdd {
    /// Header name, lower case.
    pub name: String,
    /// Its value.
    pub value: String,
    /// `append` (Envoy's default `true`): add beside an existing value instead of replacing it.
    pub append: bool,
}

/// The local rate limits of a sidecar: from the EnvoyFilters of its namespace and of the
/// root namespace whose `workloadSelector` matches its labels (or that have none), in
/// load order. Gateways have no sidecar inbound listener, so they get none.
pub fn for_workload(config: &MeshConfig, scope: &ProxyScope) -> Vec<LocalRateLimit> {
    if scope.gateway {
        return Vec::new();
    }
    config
        .envoy_filters()
        .filter(|f| f.namespace() == scope.namespace || f.namespace() == ROOT_NAMESPACE)
        .filter(|f| {
            f.spec
                .workload_selector
                .as_ref()
                .is_none_or(|s| s.matches(&scope.labels))
        })
        .filter_map(|f| local_rate_limits(f).ok())
        .flatten()
        .collect()
}

/// The rate limits an EnvoyFilter configures, or every `(path, message)` that stops the
/// mesh from carrying it out.
pub fn local_rate_limits(
    filter: &EnvoyFilter,
) -> Result<Vec<LocalRateLimit>, Vec<(String, String)>> {
    let mut limits = Vec::new();
    let mut problems = Vec::new();
    for (index, patch) in filter.spec.config_patches.iter().enumerate() {
        let mut reader = Reader {
            problems: &mut problems,
        };
        let path = format!("spec.configPatches[{index}]");
        if let Some(limit) = reader.patch(&path, patch, filter.key()) {
            limits.push(limit);
        }
    }
    if problems.is_empty() {
        Ok(limits)
    } else {
        Err(problems)
    }
}

/// Reads one patch, collecting what it cannot carry out.
struct Reader<'a> {
    problems: &'a mut Vec<(String, String)>,
}

impl Reader<'_> {
    fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push((path.into(), message.into()));
    }

    /// An unsupported patch: says what it is and what is understood.
    fn refuse(&mut self, path: impl Into<String>, what: impl std::fmt::Display) {
        self.add(path, format!("{what} is not supported; {UNDERSTOOD}"));
    }

    fn patch(&mut self, path: &str, patch: &ConfigPatch, filter: String) -> Option<LocalRateLimit> {
        let before = self.problems.len();
        if patch.apply_to != "HTTP_FILTER" {
            self.refuse(
                format!("{path}.applyTo"),
                format_args!("applyTo {:?}", patch.apply_to),
            );
            return None;
        }
        self.match_(&format!("{path}.match"), &patch.match_);
        let Some(p) = &patch.patch else {
            self.add(format!("{path}.patch"), "is required");
            return None;
        };
        if !matches!(p.operation.as_str(), "INSERT_BEFORE" | "INSERT_FIRST") {
            self.refuse(
                format!("{path}.patch.operation"),
                format_args!("operation {:?}", p.operation),
            );
        }
        if let Some(class) = &p.filter_class {
            self.refuse(
                format!("{path}.patch.filterClass"),
                format_args!("filterClass {class:?}"),
            );
        }
        let limit = self.value(&format!("{path}.patch.value"), &p.value, filter);
        if self.problems.len() > before {
            None
        } else {
            limit
        }
    }

    /// `match`: the inbound listener's HTTP connection manager, and nothing narrower.
    fn match_(&mut self, path: &str, value: &Value) {
        let Some(m) = self.object(path, value) else {
            return;
        };
        self.only(path, m, &["context", "listener"]);
        match m.get("context").and_then(Value::as_str) {
            Some("SIDECAR_INBOUND") => {}
            Some(other) => {
                self.refuse(format!("{path}.context"), format_args!("context {other:?}"))
            }
            None => self.add(
                format!("{path}.context"),
                format!("is required; {UNDERSTOOD}"),
            ),
        }
        let Some(listener) = m.get("listener") else {
            return;
        };
        let path = format!("{path}.listener");
        let Some(listener) = self.object(&path, listener) else {
            return;
        };
        self.only(&path, listener, &["filterChain"]);
        let Some(chain) = listener.get("filterChain") else {
            return;
        };
        let path = format!("{path}.filterChain");
        let Some(chain) = self.object(&path, chain) else {
            return;
        };
        self.only(&path, chain, &["filter"]);
        let Some(f) = chain.get("filter") else {
            return;
        };
        let path = format!("{path}.filter");
        let Some(f) = self.object(&path, f) else {
            return;
        };
        self.only(&path, f, &["name", "subFilter"]);
        match f.get("name").and_then(Value::as_str) {
            Some(HTTP_CONNECTION_MANAGER) | None => {}
            Some(other) => self.refuse(format!("{path}.name"), format_args!("filter {other:?}")),
        }
        // Inserting before the router is still at the head of what our proxy runs.
        if let Some(sub) = f.get("subFilter") {
            let name = sub.get("name").and_then(Value::as_str);
            if name != Some(ROUTER) {
                self.refuse(
                    format!("{path}.subFilter.name"),
                    format_args!("subFilter {:?}", name.unwrap_or_default()),
                );
            }
        }
    }

    /// `value: {name, typed_config}`.
    fn value(&mut self, path: &str, value: &Value, filter: String) -> Option<LocalRateLimit> {
        let v = self.object(path, value)?;
        self.only(path, v, &["name", "typed_config"]);
        match v.get("name").and_then(Value::as_str) {
            Some(LOCAL_RATE_LIMIT_FILTER) => {}
            Some(other) => {
                self.refuse(
                    format!("{path}.name"),
                    format_args!("HTTP filter {other:?}"),
                );
                return None;
            }
            None => {
                self.add(format!("{path}.name"), format!("is required; {UNDERSTOOD}"));
                return None;
            }
        }
        let Some(typed) = field(v, "typed_config") else {
            self.add(format!("{path}.typed_config"), "is required");
            return None;
        };
        let path = format!("{path}.typed_config");
        let typed = self.object(&path, typed)?;
        let kind = typed
            .get("@type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // Istio's task wraps the body in a TypedStruct; Envoy's docs give it inline.
        if TYPED_STRUCTS.contains(&kind) {
            self.only(&path, typed, &["@type", "type_url", "value"]);
            let url = field(typed, "type_url").and_then(Value::as_str);
            if url != Some(LOCAL_RATE_LIMIT_TYPE) {
                self.add(
                    format!("{path}.type_url"),
                    format!("must be {LOCAL_RATE_LIMIT_TYPE}, got {url:?}"),
                );
                return None;
            }
            let body = field(typed, "value").unwrap_or(&Value::Null);
            let path = format!("{path}.value");
            let body = self.object(&path, body)?;
            self.body(&path, body, filter)
        } else if kind == LOCAL_RATE_LIMIT_TYPE {
            let mut body = typed.clone();
            body.remove("@type");
            self.body(&path, &body, filter)
        } else {
            self.add(
                format!("{path}.@type"),
                format!(
                    "must be {LOCAL_RATE_LIMIT_TYPE} or a TypedStruct ({}) of it, got {kind:?}",
                    TYPED_STRUCTS.join(" or ")
                ),
            );
            None
        }
    }

    /// The `LocalRateLimit` message itself.
    fn body(
        &mut self,
        path: &str,
        body: &Map<String, Value>,
        filter: String,
    ) -> Option<LocalRateLimit> {
        self.only(path, body, &BODY_FIELDS);
        let stat_prefix = match field(body, "stat_prefix").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => s.to_owned(),
            _ => {
                self.add(
                    format!("{path}.stat_prefix"),
                    "is required (a non-empty string)",
                );
                String::new()
            }
        };
        let token_bucket = match field(body, "token_bucket") {
            Some(bucket) => self.token_bucket(&format!("{path}.token_bucket"), bucket),
            None => {
                self.add(
                    format!("{path}.token_bucket"),
                    "is required: a filter without it limits only routes with a per-route \
                     configuration, which the mesh does not support",
                );
                None
            }
        };
        let enabled_percent = self.fraction(
            &format!("{path}.filter_enabled"),
            field(body, "filter_enabled"),
        );
        let enforced_percent = self.fraction(
            &format!("{path}.filter_enforced"),
            field(body, "filter_enforced"),
        );
        let status = self.status(&format!("{path}.status"), field(body, "status"));
        let response_headers_to_add = self.headers(
            &format!("{path}.response_headers_to_add"),
            field(body, "response_headers_to_add"),
        );
        Some(LocalRateLimit {
            filter,
            stat_prefix,
            token_bucket: token_bucket?,
            enabled_percent,
            enforced_percent,
            status,
            response_headers_to_add,
        })
    }

    fn token_bucket(&mut self, path: &str, value: &Value) -> Option<TokenBucket> {
        let bucket = self.object(path, value)?;
        self.only(
            path,
            bucket,
            &["max_tokens", "tokens_per_fill", "fill_interval"],
        );
        let max_tokens = self.positive(&format!("{path}.max_tokens"), field(bucket, "max_tokens"));
        let tokens_per_fill = match field(bucket, "tokens_per_fill") {
            None => Some(1),
            some => self.positive(&format!("{path}.tokens_per_fill"), some),
        };
        let interval_path = format!("{path}.fill_interval");
        let fill_interval = match field(bucket, "fill_interval").and_then(Value::as_str) {
            None => {
                self.add(interval_path, "is required (a duration such as 60s)");
                None
            }
            Some(text) => match parse_duration(text) {
                Ok(d) if d.as_millis() < MIN_FILL_INTERVAL_MS => {
                    self.add(interval_path, format!("must be at least 50ms, got {text}"));
                    None
                }
                Ok(d) => Some(IstioDuration(d)),
                Err(e) => {
                    self.add(interval_path, e.to_string());
                    None
                }
            },
        };
        Some(TokenBucket {
            max_tokens: max_tokens?,
            tokens_per_fill: tokens_per_fill?,
            fill_interval: fill_interval?,
        })
    }

    /// A `uint32` above 0, as a number or (protobuf JSON) a string.
    fn positive(&mut self, path: &str, value: Option<&Value>) -> Option<u32> {
        let Some(value) = value else {
            self.add(path, "is required");
            return None;
        };
        let number = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match number.and_then(|n| u32::try_from(n).ok()) {
            Some(n) if n > 0 => Some(n),
            _ => {
                self.add(path, format!("must be a whole number above 0, got {value}"));
                None
            }
        }
    }

    /// A `RuntimeFractionalPercent` as a percentage; absent is 0. The runtime key is
    /// accepted and its default used: the proxy has no runtime to override it.
    fn fraction(&mut self, path: &str, value: Option<&Value>) -> f64 {
        let Some(value) = value else {
            return 0.0;
        };
        let Some(f) = self.object(path, value) else {
            return 0.0;
        };
        self.only(path, f, &["runtime_key", "default_value"]);
        let Some(default) = field(f, "default_value") else {
            self.add(format!("{path}.default_value"), "is required");
            return 0.0;
        };
        let path = format!("{path}.default_value");
        let Some(d) = self.object(&path, default) else {
            return 0.0;
        };
        self.only(&path, d, &["numerator", "denominator"]);
        let numerator = match field(d, "numerator") {
            None => 0,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64().unwrap_or(0),
            Some(other) => {
                self.add(
                    format!("{path}.numerator"),
                    format!("must be a whole number, got {other}"),
                );
                return 0.0;
            }
        };
        let denominator = match field(d, "denominator").and_then(Value::as_str) {
            None | Some("HUNDRED") => 100.0,
            Some("TEN_THOUSAND") => 10_000.0,
            Some("MILLION") => 1_000_000.0,
            Some(other) => {
                self.add(
                    format!("{path}.denominator"),
                    format!("must be HUNDRED, TEN_THOUSAND or MILLION, got {other:?}"),
                );
                return 0.0;
            }
        };
        #[expect(
            clippy::cast_precision_loss,
            reason = "a fraction's numerator is small"
        )]
        let percent = numerator as f64 / denominator * 100.0;
        percent.min(100.0)
    }

    /// `status: {code: N}`: Envoy sends 429 for anything below 400.
    fn status(&mut self, path: &str, value: Option<&Value>) -> u16 {
        let Some(value) = value else {
            return 429;
        };
        let Some(s) = self.object(path, value) else {
            return 429;
        };
        self.only(path, s, &["code"]);
        match field(s, "code") {
            Some(Value::Number(n)) => match n.as_u64().and_then(|c| u16::try_from(c).ok()) {
                Some(code) if (400..=599).contains(&code) => code,
                Some(code) if code < 400 => 429,
                _ => {
                    self.add(
                        format!("{path}.code"),
                        format!("must be an HTTP status, got {n}"),
                    );
                    429
                }
            },
            Some(Value::String(name)) => match name.as_str() {
                "TooManyRequests" => 429,
                "ServiceUnavailable" => 503,
                other => {
                    self.add(
                        format!("{path}.code"),
                        format!("give the status as a number, got {other:?}"),
                    );
                    429
                }
            },
            _ => 429,
        }
    }

    fn headers(&mut self, path: &str, value: Option<&Value>) -> Vec<HeaderToAdd> {
        let Some(value) = value else {
            return Vec::new();
        };
        let Some(list) = value.as_array() else {
            self.add(path, "must be a list");
            return Vec::new();
        };
        let mut headers = Vec::new();
        for (i, entry) in list.iter().enumerate() {
            let path = format!("{path}[{i}]");
            let Some(e) = self.object(&path, entry) else {
                continue;
            };
            self.only(&path, e, &["append", "header"]);
            let append = match field(e, "append") {
                None => true,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    self.add(
                        format!("{path}.append"),
                        format!("must be true or false, got {other}"),
                    );
                    true
                }
            };
            let Some(header) = field(e, "header") else {
                self.add(format!("{path}.header"), "is required");
                continue;
            };
            let hpath = format!("{path}.header");
            let Some(h) = self.object(&hpath, header) else {
                continue;
            };
            self.only(&hpath, h, &["key", "value"]);
            let name = field(h, "key").and_then(Value::as_str).unwrap_or_default();
            if !is_header_name(name) {
                self.add(
                    format!("{hpath}.key"),
                    format!("must be a header name, got {name:?}"),
                );
                continue;
            }
            let value = match field(h, "value") {
                None => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => {
                    self.add(
                        format!("{hpath}.value"),
                        format!("must be a string, got {other}"),
                    );
                    continue;
                }
            };
            if value.chars().any(|c| c.is_control() && c != '\t') {
                self.add(
                    format!("{hpath}.value"),
                    "must not contain control characters",
                );
                continue;
            }
            headers.push(HeaderToAdd {
                name: name.to_ascii_lowercase(),
                value,
                append,
            });
        }
        headers
    }

    fn object<'v>(&mut self, path: &str, value: &'v Value) -> Option<&'v Map<String, Value>> {
        match value {
            Value::Object(m) => Some(m),
            Value::Null => {
                self.add(path, "is required");
                None
            }
            other => {
                self.add(path, format!("must be a mapping, got {other}"));
                None
            }
        }
    }

    /// Every key of `map` is one of `known` (protobuf JSON also spells them camelCase).
    fn only(&mut self, path: &str, map: &Map<String, Value>, known: &[&str]) {
        for key in map.keys() {
            if !known.iter().any(|k| *k == key || camel(k) == *key) {
                self.add(
                    format!("{path}.{key}"),
                    format!(
                        "is not supported by the mesh (understood here: {})",
                        known.join(", ")
                    ),
                );
            }
        }
    }
}

/// A field by its proto name or its lowerCamelCase JSON name.
fn field<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| map.get(&camel(name)))
}

/// `max_tokens` → `maxTokens`.
fn camel(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut upper = false;
    for c in name.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// An HTTP token (RFC 9110), which is what a header name may be.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
