//! Reading the deployment files (`k8s/`, `docker-compose.yml`, `compose/`) as JSON
//! values, for the cross-checks in `tests/k8s.rs` and `tests/compose.rs`.

#![allow(dead_code)] // each test file uses its own part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

/// The repository's root.
pub(crate) fn repo_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub(crate) fn k8s_dir() -> PathBuf {
    repo_dir().join("k8s")
}

/// Every document of a YAML file, with YAML merge keys (`<<: *anchor`, which compose
/// files use) resolved.
pub(crate) fn docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|d| {
            let mut doc = serde_norway::Value::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            // One pass resolves one level: a merged mapping may bring its own `<<`.
            for _ in 0..4 {
                doc.apply_merge()
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            serde_json::to_value(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// The documents of a file under `k8s/`.
pub(crate) fn file(rel: &str) -> Vec<Value> {
    docs(&k8s_dir().join(rel))
}

pub(crate) fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {v}"))
}

pub(crate) fn name(v: &Value) -> &str {
    s(v, "/metadata/name")
}

pub(crate) fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// A container's `env:` as (name, literal value); `None` for `valueFrom`.
pub(crate) fn env_of(c: &Value) -> Vec<(String, Option<String>)> {
    arr(c, "/env")
        .iter()
        .map(|e| {
            (
                s(e, "/name").to_owned(),
                e["value"].as_str().map(str::to_owned),
            )
        })
        .collect()
}

pub(crate) fn env_value<'a>(env: &'a [(String, Option<String>)], key: &str) -> &'a str {
    env.iter()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.as_deref())
        .unwrap_or_else(|| panic!("no {key} in {env:?}"))
}

/// The port of `host:port` or `http://host:port/`.
pub(crate) fn port_of(addr: &str) -> u64 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}
