//! The targets, each the parsers behind one door of the suite:
//!
//! | target | what reads the input | how it is fed |
//! |---|---|---|
//! | `istio-yaml` | `mesh_api`: parse, validate, compile (what `meshctl apply`, the config directory and the Kubernetes source feed) | in process |
//! | `chaos-experiment` | the chaos runner's experiment format | in process |
//! | `control-api` | `mesh-control`'s HTTP API: JSON and YAML bodies, paths, queries | a real `mesh-control` |
//! | `proxy-http` | `mesh-proxy`'s listeners: HTTP/1.1 fast lane and its hand-off to hyper, forward-proxy requests, PERMISSIVE sniffing of TLS and plaintext | a real sidecar pair |

pub mod chaos;
pub mod control;
pub mod istio;
pub mod proxy;

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::harness::Target;

/// Where targets find seeds and programs.
#[derive(Debug, Clone)]
pub struct Env {
    /// The repository (seeds: `mesh/config`, `loadtest/experiments`).
    pub repo: PathBuf,
    /// The built programs (`mesh-proxy`, `mesh-control`).
    pub bin_dir: PathBuf,
    /// Scratch space for logs and configuration files.
    pub work: PathBuf,
}

/// Every target's name, in the order `run all` takes them.
pub const NAMES: [&str; 4] = [
    "istio-yaml",
    "chaos-experiment",
    "control-api",
    "proxy-http",
];

/// Builds a target by name (starting its programs).
pub fn make(name: &str, env: &Env) -> anyhow::Result<Box<dyn Target>> {
    Ok(match name {
        "istio-yaml" => Box::new(istio::IstioYaml::new(env)?),
        "chaos-experiment" => Box::new(chaos::ChaosExperiment::new(env)?),
        "control-api" => Box::new(control::ControlApi::new(env)?),
        "proxy-http" => Box::new(proxy::ProxyHttp::new(env)?),
        other => anyhow::bail!("no target {other:?}; targets: {}", NAMES.join(", ")),
    })
}

/// The `*.yaml`/`*.yml`/`*.json` files of `dir` (and its folders, when `recursive`),
/// sorted: seeds.
pub fn seed_files(dir: &Path, recursive: bool) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut paths = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                if recursive {
                    dirs.push(path);
                }
            } else if path
                .extension()
                .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
            {
                paths.push(path);
            }
        }
    }
    paths.sort();
    anyhow::ensure!(!paths.is_empty(), "no seed files under {}", dir.display());
    paths
        .iter()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {}", p.display())))
        .collect()
}

/// The resident memory of this process, for in-process targets.
pub fn own_rss_kb() -> u64 {
    crate::harness::rss_kb_of("self")
}
