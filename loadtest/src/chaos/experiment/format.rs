//! The experiment document as written, as serde types: the Chaos Toolkit shape (title,
//! description, steady-state hypothesis, method, rollbacks, runtime) and our providers.
//!
//! These types say which fields exist and what each may hold; unknown fields are refused
//! where Chaos Toolkit defines the section completely. Ranges and relations between fields
//! are checked afterwards, in [`super::validate`]. Problems come back as
//! [`Problem`]s naming the path of the field at fault.

use std::time::Duration;

use mesh_api::duration::parse_duration;
use serde::de::{self, DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::{Kind, Problem};

/// Reads `value`, found at path `at` of the document, as a `T`.
pub(super) fn read<T: DeserializeOwned>(value: &Value, at: &str) -> Result<T, Problem> {
    serde_path_to_error::deserialize(value)
        .map_err(|e| Problem::new(extend(at, e.path()), e.inner().to_string()))
}

/// `at` followed by a path inside it, in the document's notation (`method[2].provider`).
fn extend(at: &str, inner: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = at.to_string();
    for segment in inner.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => push_key(&mut out, key),
            Segment::Enum { variant } => push_key(&mut out, variant),
            Segment::Unknown => push_key(&mut out, "?"),
        }
    }
    out
}

fn push_key(out: &mut String, key: &str) {
    if !out.is_empty() {
        out.push('.');
    }
    out.push_str(key);
}

/// The whole document, after `${var}` substitution. Activities stay raw JSON here: each is
/// read on its own ([`ActivityDoc`]), so that one broken activity does not hide the
/// problems of the others, and `{ref: name}` can stand for an earlier one.
#[derive(Debug, Deserialize)]
#[serde(
    deny_unknown_fields,
    rename_all = "kebab-case",
    expecting = "a mapping (title, description, method, ...)"
)]
pub(super) struct ExperimentDoc {
    pub title: NonEmptyText,
    pub description: NonEmptyText,
    pub steady_state_hypothesis: Option<HypothesisDoc>,
    /// Required; checked in validation, whose message says an empty list will do.
    pub method: Option<Vec<Value>>,
    pub rollbacks: Option<Vec<Value>>,
    pub runtime: Option<RuntimeDoc>,
    // Chaos Toolkit sections we accept and do not use. `configuration` is read before
    // substitution (see `super::variables`).
    #[serde(rename = "version")]
    _version: Option<IgnoredAny>,
    #[serde(rename = "tags")]
    _tags: Option<IgnoredAny>,
    #[serde(rename = "configuration")]
    _configuration: Option<IgnoredAny>,
    #[serde(rename = "secrets")]
    _secrets: Option<IgnoredAny>,
    #[serde(rename = "controls")]
    _controls: Option<IgnoredAny>,
    #[serde(rename = "contributions")]
    _contributions: Option<IgnoredAny>,
    #[serde(rename = "extensions")]
    _extensions: Option<IgnoredAny>,
}

/// `steady-state-hypothesis`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping {title, probes}")]
pub(super) struct HypothesisDoc {
    pub title: NonEmptyText,
    pub probes: Option<Vec<Value>>,
    #[serde(rename = "controls")]
    _controls: Option<IgnoredAny>,
}

/// `runtime`: only the keys we act on are read; Chaos Toolkit has more, all ignored here.
#[derive(Debug, Deserialize)]
#[serde(expecting = "a mapping")]
pub(super) struct RuntimeDoc {
    pub rollbacks: Option<StrategyDoc>,
    pub hypothesis: Option<HypothesisRuntimeDoc>,
}

/// `runtime.rollbacks`.
#[derive(Debug, Deserialize)]
pub(super) struct StrategyDoc {
    pub strategy: Option<Text>,
}

/// `runtime.hypothesis`.
#[derive(Debug, Deserialize)]
pub(super) struct HypothesisRuntimeDoc {
    pub strategy: Option<Text>,
    /// Seconds between checks during the method.
    pub frequency: Option<Number>,
}

/// One probe or action, except its provider and tolerance (read separately, see
/// [`super::validate`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a mapping (type, name, provider)")]
pub(super) struct ActivityDoc {
    #[serde(rename = "type")]
    pub kind: Kind,
    pub name: Option<Text>,
    #[serde(rename = "provider")]
    _provider: Value,
    #[serde(rename = "tolerance")]
    _tolerance: Option<IgnoredAny>,
    pub pauses: Option<PausesDoc>,
    pub background: Option<bool>,
    #[serde(rename = "controls")]
    _controls: Option<IgnoredAny>,
    #[serde(rename = "configuration")]
    _configuration: Option<IgnoredAny>,
    #[serde(rename = "secrets")]
    _secrets: Option<IgnoredAny>,
}

/// `pauses` of an activity.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, expecting = "{before, after}")]
pub(super) struct PausesDoc {
    pub before: Option<Span>,
    pub after: Option<Span>,
}

/// The `type` of a provider. A provider is an internally tagged mapping
/// (`{type: http, url: ...}`); [`read_provider`] reads the tag first and then the rest as
/// the variant's own struct, because serde's `#[serde(tag)]` buffers the mapping and
/// loses the path of any problem inside it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ProviderType {
    Http,
    Process,
    MeshFault,
    MeshFaultClear,
    Kill,
    MeshApply,
    MeshDelete,
    Load,
    LoadStop,
    LoadWindow,
}

/// Just the tag of a provider mapping, as text: a number there is then named as an
/// unknown provider, like any other wrong name.
#[derive(Debug, Deserialize)]
struct Tag {
    #[serde(rename = "type")]
    kind: Text,
}

/// A provider, by its `type`.
#[derive(Debug)]
pub(super) enum ProviderDoc {
    Http(HttpDoc),
    Process(ProcessDoc),
    MeshFault(FaultDoc),
    MeshFaultClear(ClearDoc),
    Kill(KillDoc),
    MeshApply(FileDoc),
    MeshDelete(FileDoc),
    Load(LoadDoc),
    LoadStop(NoFields),
    LoadWindow(NoFields),
}

/// Reads the provider at `at`: its `type`, then its other fields as that type's struct.
pub(super) fn read_provider(value: &Value, at: &str) -> Result<ProviderDoc, Problem> {
    let Some(map) = value.as_object() else {
        return Err(Problem::new(at, "must be a mapping"));
    };
    let tag: Tag = read(value, at)?;
    let type_at = format!("{at}.type");
    if tag.kind.0 == "python" {
        return Err(Problem::new(
            type_at,
            "python providers are not supported here; use http, process or a native provider",
        ));
    }
    let kind: ProviderType = read(&Value::String(tag.kind.0), &type_at)?;
    let mut fields = map.clone();
    fields.remove("type");
    let fields = Value::Object(fields);
    Ok(match kind {
        ProviderType::Http => ProviderDoc::Http(read(&fields, at)?),
        ProviderType::Process => ProviderDoc::Process(read(&fields, at)?),
        ProviderType::MeshFault => ProviderDoc::MeshFault(read(&fields, at)?),
        ProviderType::MeshFaultClear => ProviderDoc::MeshFaultClear(read(&fields, at)?),
        ProviderType::Kill => ProviderDoc::Kill(read(&fields, at)?),
        ProviderType::MeshApply => ProviderDoc::MeshApply(read(&fields, at)?),
        ProviderType::MeshDelete => ProviderDoc::MeshDelete(read(&fields, at)?),
        ProviderType::Load => ProviderDoc::Load(read(&fields, at)?),
        ProviderType::LoadStop => ProviderDoc::LoadStop(read(&fields, at)?),
        ProviderType::LoadWindow => ProviderDoc::LoadWindow(read(&fields, at)?),
    })
}

/// Chaos Toolkit's `http` provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpDoc {
    pub url: NonEmptyText,
    pub method: Option<Text>,
    pub headers: Option<Map<String, Value>>,
    /// Kept even when written as `null`: a POST then still says it sends a form.
    #[serde(default, deserialize_with = "present")]
    pub arguments: Option<Value>,
    pub timeout: Option<HttpTimeout>,
    // Accepted for Chaos Toolkit compatibility, not used.
    #[serde(rename = "verify_tls")]
    _verify_tls: Option<IgnoredAny>,
    #[serde(rename = "max_retries")]
    _max_retries: Option<IgnoredAny>,
    #[serde(rename = "secrets")]
    _secrets: Option<IgnoredAny>,
    #[serde(rename = "expected_status")]
    _expected_status: Option<IgnoredAny>,
}

/// Chaos Toolkit's `process` provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ProcessDoc {
    pub path: NonEmptyText,
    pub arguments: Option<Strings>,
    pub timeout: Option<Span>,
    #[serde(rename = "secrets")]
    _secrets: Option<IgnoredAny>,
}

/// `mesh-fault`: one fault lease.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FaultDoc {
    pub service: NonEmptyText,
    pub subset: Option<Text>,
    /// Sent to the control plane as written, once it parses.
    pub delay: Option<Text>,
    pub jitter: Option<Text>,
    pub abort: Option<Number>,
    /// A rate as `meshctl fault add --bandwidth` takes it (`2KB/s`) or bytes per second.
    pub bandwidth: Option<Text>,
    pub reset: Option<bool>,
    #[serde(alias = "resetAfter")]
    pub reset_after: Option<Number>,
    pub blackhole: Option<bool>,
    #[serde(alias = "slowClose")]
    pub slow_close: Option<Text>,
    /// `request` or `response`: where delay, bandwidth, reset and blackhole act.
    pub direction: Option<Text>,
    pub percentage: Option<Number>,
    pub headers: Option<Map<String, Value>>,
    pub ttl: Option<Span>,
}

/// `mesh-fault-clear`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ClearDoc {
    pub all: Option<bool>,
}

/// `kill`: `meshctl kill` on one workload (a seeded pick from a list).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct KillDoc {
    pub workload: Workloads,
    pub sidecar: Option<bool>,
    pub signal: Option<Signal>,
    pub meshctl: Option<Text>,
    pub args: Option<Strings>,
    pub timeout: Option<Span>,
}

/// The signals `meshctl kill` may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(super) enum Signal {
    Kill,
    Term,
    Int,
    Hup,
}

/// `mesh-apply` and `mesh-delete`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileDoc {
    pub file: NonEmptyText,
}

/// `load`: an open-model run in the background.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct LoadDoc {
    pub target: NonEmptyText,
    /// Required; checked in validation, whose message says what is expected.
    pub rate: Option<Number>,
    /// Required; checked in validation (every run is bounded).
    pub duration: Option<Span>,
    pub mix: Option<Text>,
    pub connections: Option<Number>,
    pub timeout: Option<Span>,
    pub window: Option<Span>,
    pub serve: Option<Text>,
}

/// Providers that take no fields (`load-stop`, `load-window`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NoFields {}

/// `Some` for any value present, `null` included (used with `#[serde(default)]`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A string; a number is taken as written (`name: 5`, `subset: 1`), as YAML invites.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Text(s)),
            Value::Number(n) => Ok(Text(n.to_string())),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}

/// A number (JSON has one kind of number; YAML's integers arrive here as well).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Number(pub f64);

impl<'de> Deserialize<'de> for Number {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Number(n) => n
                .as_f64()
                .map(Number)
                .ok_or_else(|| de::Error::custom("must be a number")),
            _ => Err(de::Error::custom("must be a number")),
        }
    }
}

/// A [`Text`] that must be given and not be empty.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct NonEmptyText(pub String);

impl<'de> Deserialize<'de> for NonEmptyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Err(de::Error::custom("required")),
            Value::String(s) if s.is_empty() => Err(de::Error::custom("must not be empty")),
            Value::String(s) => Ok(NonEmptyText(s)),
            Value::Number(n) => Ok(NonEmptyText(n.to_string())),
            _ => Err(de::Error::custom("must be a string")),
        }
    }
}

/// A duration: a number of seconds (Chaos Toolkit's form) or `500ms`, `7s`, `2m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Span(pub Duration);

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        span(Value::deserialize(d)?).map(Span)
    }
}

fn span<E: de::Error>(v: Value) -> Result<Duration, E> {
    match v {
        Value::Number(n) => match n.as_f64() {
            Some(s) if s >= 0.0 && s.is_finite() => Ok(Duration::from_secs_f64(s)),
            _ => Err(E::custom("must be a non-negative number of seconds")),
        },
        Value::String(s) => parse_duration(&s).map_err(E::custom),
        _ => Err(E::custom(
            "must be a duration like 30s or a number of seconds",
        )),
    }
}

/// The `http` provider's timeout: a [`Span`], or Chaos Toolkit's `[connect, read]` pair,
/// of which the larger bounds the whole call (`None` for a list without numbers).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct HttpTimeout(pub Option<Duration>);

impl<'de> Deserialize<'de> for HttpTimeout {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Array(pair) => Ok(HttpTimeout(
                pair.iter()
                    .filter_map(Value::as_f64)
                    .fold(None, |m: Option<f64>, x| Some(m.map_or(x, |m| m.max(x))))
                    .map(Duration::from_secs_f64),
            )),
            other => span(other).map(|d| HttpTimeout(Some(d))),
        }
    }
}

/// Program arguments: a list, or one string split at whitespace.
#[derive(Debug, Clone, PartialEq, Default)]
pub(super) struct Strings(pub Vec<String>);

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) => Ok(Strings(s.split_whitespace().map(str::to_string).collect())),
            Value::Array(items) => Ok(Strings(
                items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                    .collect(),
            )),
            _ => Err(de::Error::custom("must be a string or a list of strings")),
        }
    }
}

/// The `kill` provider's `workload`: one name, or a non-empty list to pick one from.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Workloads(pub Vec<String>);

impl<'de> Deserialize<'de> for Workloads {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Err(de::Error::custom("required")),
            Value::String(s) if !s.is_empty() => Ok(Workloads(vec![s])),
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => {
                Ok(Workloads(
                    items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                ))
            }
            _ => Err(de::Error::custom(
                "must be a workload name or a non-empty list to pick one from",
            )),
        }
    }
}
