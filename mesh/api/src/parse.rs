//! Multi-document YAML → typed resources, with warnings and a panic guard.
//!
//! Each document goes YAML → `serde_norway::Value` → `serde_json::Value` → typed object.
//! The detour through JSON values lets us read `apiVersion`/`kind` before choosing a type,
//! turns integer map keys (`portLevelMtls: {8080: ...}`) into strings, and lets
//! `serde_ignored` report unknown fields while `serde_path_to_error` names the path of a
//! type error.

use std::panic::{AssertUnwindSafe, catch_unwind};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value as Json;
use serde_norway::Value as Yaml;

use crate::error::{ConfigError, Origin, Warning};
use crate::meta::{DEFAULT_NAMESPACE, Object};
use crate::resource::{Kind, Resource};

/// A resource and where it came from.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Loaded {
    /// File and document.
    pub origin: Origin,
    /// The typed resource.
    pub resource: Resource,
}

/// Everything one file produced. Parsing never stops at the first bad document: good
/// documents are returned next to the errors of the bad ones.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    /// Successfully decoded resources (not yet validated).
    pub resources: Vec<Loaded>,
    /// Unknown kinds, unknown fields.
    pub warnings: Vec<Warning>,
    /// Documents that could not be decoded.
    pub errors: Vec<ConfigError>,
}

/// Parses a multi-document YAML text; `file` is only used in messages. Resources without
/// `metadata.namespace` land in `default`.
pub fn parse_file(file: &str, text: &str) -> ParsedFile {
    parse_file_in(file, text, DEFAULT_NAMESPACE)
}

/// Like [`parse_file`], with the namespace for resources that do not name one
/// (what `kubectl apply -n <ns>` does).
pub fn parse_file_in(file: &str, text: &str, namespace: &str) -> ParsedFile {
    let mut out = ParsedFile::default();
    let depth = flow_depth(text);
    if depth > MAX_FLOW_DEPTH {
        let origin = Origin {
            file: file.to_owned(),
            document: 1,
        };
        out.errors.push(ConfigError::at(
            &origin,
            "",
            format!(
                "invalid YAML: brackets nested {depth} deep (at most {MAX_FLOW_DEPTH}); no Istio resource needs more than a few levels"
            ),
        ));
        return out;
    }
    for (index, document) in yaml_documents(file, text, &mut out.errors) {
        let origin = Origin {
            file: file.to_owned(),
            document: index,
        };
        let json = match yaml_to_json(document) {
            Ok(Json::Null) => continue, // empty or comment-only document
            Ok(json) => json,
            Err(unsupported) => {
                out.errors
                    .push(ConfigError::at(&origin, "", unsupported.to_string()));
                continue;
            }
        };
        match decode(&origin, json, namespace, &mut out.warnings) {
            Ok(Some(resource)) => out.resources.push(Loaded { origin, resource }),
            Ok(None) => {}
            Err(error) => out.errors.push(error),
        }
    }
    out
}

/// Deepest nesting of `{` and `[` a text may have. Istio resources need a handful of
/// levels, and the YAML parser's time grows with the square of the depth (found by
/// fuzzing: 20,000 levels, 80 KB, held the control plane's apply for seconds), so deeper
/// texts are refused before parsing. Other YAML formats of the suite (chaos experiments)
/// apply the same bound with [`flow_depth`].
pub const MAX_FLOW_DEPTH: usize = 64;

/// The deepest run of unclosed `{`/`[`. Quotes and comments are not skipped on purpose:
/// a balanced bracket in a string or comment adds one level for its length only, and an
/// apostrophe cannot hide brackets from the count.
pub fn flow_depth(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in text.bytes() {
        match b {
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Message for a YAML parser panic turned into an error.
const PARSER_GAVE_UP: &str =
    "invalid YAML: the parser gave up (an alias pointing to an anchor in another document?)";

/// Runs `step`, turning a panic into `None`. serde_norway can panic on aliases that point
/// into another document; a control plane must report that, not crash.
fn guarded<T>(step: impl FnOnce() -> T) -> Option<T> {
    catch_unwind(AssertUnwindSafe(step)).ok()
}

/// Splits `text` into YAML documents (1-based index). A syntax error ends the file: the
/// YAML parser cannot resynchronise after one (and may panic if asked to), so we stop.
fn yaml_documents(file: &str, text: &str, errors: &mut Vec<ConfigError>) -> Vec<(usize, Yaml)> {
    let mut documents = Vec::new();
    let origin = |document: usize| Origin {
        file: file.to_owned(),
        document,
    };
    let mut iter = serde_norway::Deserializer::from_str(text);
    for index in 1.. {
        let Some(next) = guarded(|| iter.next()) else {
            errors.push(ConfigError::at(&origin(index), "", PARSER_GAVE_UP));
            break;
        };
        let Some(document) = next else {
            break;
        };
        match guarded(|| Yaml::deserialize(document)) {
            Some(Ok(value)) => documents.push((index, value)),
            Some(Err(err)) => {
                errors.push(ConfigError::at(
                    &origin(index),
                    "",
                    format!("invalid YAML: {err}"),
                ));
                break;
            }
            None => {
                errors.push(ConfigError::at(&origin(index), "", PARSER_GAVE_UP));
                break;
            }
        }
    }
    documents
}

/// A YAML value JSON cannot hold; Display says which.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UnsupportedYaml(String);

/// YAML value → JSON value. Scalar map keys become strings; YAML tags are dropped.
fn yaml_to_json(value: Yaml) -> Result<Json, UnsupportedYaml> {
    Ok(match value {
        Yaml::Null => Json::Null,
        Yaml::Bool(b) => Json::Bool(b),
        Yaml::Number(n) => {
            if let Some(u) = n.as_u64() {
                Json::from(u)
            } else if let Some(i) = n.as_i64() {
                Json::from(i)
            } else {
                let f = n.as_f64().unwrap_or(f64::NAN);
                serde_json::Number::from_f64(f)
                    .map(Json::Number)
                    .ok_or_else(|| {
                        UnsupportedYaml(format!(
                            "unsupported number {n} (NaN and infinity are not allowed)"
                        ))
                    })?
            }
        }
        Yaml::String(s) => Json::String(s),
        Yaml::Sequence(items) => Json::Array(
            items
                .into_iter()
                .map(yaml_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Mapping(map) => {
            let mut object = serde_json::Map::new();
            for (key, value) in map {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    Yaml::Null => "null".to_owned(),
                    other => {
                        return Err(UnsupportedYaml(format!(
                            "unsupported mapping key {other:?}"
                        )));
                    }
                };
                object.insert(key, yaml_to_json(value)?);
            }
            Json::Object(object)
        }
        Yaml::Tagged(tagged) => yaml_to_json(tagged.value)?,
    })
}

/// JSON document → typed resource. `Ok(None)` means "skipped with a warning".
fn decode(
    origin: &Origin,
    json: Json,
    namespace: &str,
    warnings: &mut Vec<Warning>,
) -> Result<Option<Resource>, ConfigError> {
    let Json::Object(fields) = &json else {
        return Err(ConfigError::at(
            origin,
            "",
            "expected a Kubernetes object (a mapping with apiVersion, kind, metadata, spec)",
        ));
    };
    let text_field = |name: &str| fields.get(name).and_then(Json::as_str).map(str::to_owned);
    let Some(kind_name) = text_field("kind") else {
        return Err(ConfigError::at(origin, "kind", "is required"));
    };
    let api_version = text_field("apiVersion").unwrap_or_default();
    let name = fields
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    let explicit_namespace = fields
        .get("metadata")
        .and_then(|m| m.get("namespace"))
        .and_then(Json::as_str)
        .map(str::to_owned);
    let display = format!(
        "{kind_name} {}/{name}",
        explicit_namespace.as_deref().unwrap_or(namespace)
    );

    let Some(kind) = Kind::from_type(&api_version, &kind_name) else {
        warnings.push(Warning::in_resource(
            origin,
            Some(display),
            "",
            format!("kind {kind_name} ({api_version}) is not a mesh resource; skipped"),
        ));
        return Ok(None);
    };
    if !kind.api_versions().contains(&api_version.as_str()) {
        return Err(ConfigError::in_resource(
            origin,
            display,
            "apiVersion",
            format!(
                "{api_version:?} is not supported for {kind_name} (expected one of {})",
                kind.api_versions().join(", ")
            ),
        ));
    }
    if name.is_empty() {
        return Err(ConfigError::in_resource(
            origin,
            display,
            "metadata.name",
            "is required",
        ));
    }

    let mut ignored = Vec::new();
    let resource = match kind {
        Kind::VirtualService => typed(json, &mut ignored).map(Resource::VirtualService),
        Kind::DestinationRule => typed(json, &mut ignored).map(Resource::DestinationRule),
        Kind::Gateway => typed(json, &mut ignored).map(Resource::Gateway),
        Kind::ServiceEntry => typed(json, &mut ignored).map(Resource::ServiceEntry),
        Kind::PeerAuthentication => typed(json, &mut ignored).map(Resource::PeerAuthentication),
        Kind::AuthorizationPolicy => typed(json, &mut ignored).map(Resource::AuthorizationPolicy),
        Kind::KubeGateway => typed(json, &mut ignored).map(Resource::KubeGateway),
        Kind::HttpRoute => typed(json, &mut ignored).map(Resource::HttpRoute),
        Kind::EnvoyFilter => typed(json, &mut ignored).map(Resource::EnvoyFilter),
    };
    for path in ignored {
        warnings.push(Warning::in_resource(
            origin,
            Some(display.clone()),
            path,
            "unknown field; ignored",
        ));
    }
    let mut resource = resource.map_err(|(path, message)| {
        ConfigError::in_resource(origin, display.clone(), path, message)
    })?;
    resource.default_namespace(namespace);
    Ok(Some(resource))
}

/// Typed decoding with unknown-field collection and error paths.
fn typed<S: DeserializeOwned + Default>(
    json: Json,
    ignored: &mut Vec<String>,
) -> Result<Object<S>, (String, String)> {
    let mut record = |path: serde_ignored::Path<'_>| ignored.push(ignored_path(&path));
    let deserializer = serde_ignored::Deserializer::new(json, &mut record);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let path = if path == "." { String::new() } else { path };
        (path, err.into_inner().to_string())
    })
}

/// `spec.http[0].foo` from serde_ignored's path (which would print `spec.http.0.foo`).
fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path;
    match path {
        Path::Root => String::new(),
        Path::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        Path::Map { parent, key } => {
            let parent = ignored_path(parent);
            if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            }
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => ignored_path(parent),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn deeply_nested_brackets_are_refused_before_parsing() {
        let deep = format!("spec: {}1{}\n", "{e: ".repeat(20_000), "}".repeat(20_000));
        let parsed = super::parse_file("deep.yaml", &deep);
        assert_eq!(parsed.errors.len(), 1);
        let message = parsed.errors[0].to_string();
        assert!(message.contains("brackets nested 20000 deep"), "{message}");
        // What real files nest stays well inside the bound.
        assert!(super::flow_depth("a: {b: [1, {c: \"{x}\"}]}") <= 4);
    }

    use super::*;

    #[test]
    fn a_panicking_step_becomes_none() {
        let outcome: Option<()> = guarded(|| panic!("parser bug"));
        assert!(outcome.is_none());
        assert_eq!(guarded(|| 7), Some(7));
    }

    #[test]
    fn comment_only_and_empty_documents_are_skipped() {
        let parsed = parse_file("c.yaml", "# nothing here\n---\n---\n# still nothing\n");
        assert!(parsed.resources.is_empty());
        assert!(parsed.errors.is_empty(), "{:?}", parsed.errors);
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn integer_map_keys_become_strings() {
        let yaml: Yaml = serde_norway::from_str("8080: {mode: STRICT}").unwrap();
        let json = yaml_to_json(yaml).unwrap();
        assert_eq!(json["8080"]["mode"], "STRICT");
    }

    #[test]
    fn unknown_field_paths_read_like_yaml_paths() {
        let parsed = parse_file(
            "u.yaml",
            "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: r}\nspec:\n  hosts: [r]\n  http:\n  - route:\n    - destination: {host: r, colour: red}\n",
        );
        assert_eq!(parsed.warnings.len(), 1);
        assert_eq!(
            parsed.warnings[0].path,
            "spec.http[0].route[0].destination.colour"
        );
    }
}
