//! `istio-yaml`: the shipped routing and policy files, mutated as text and as YAML trees
//! (a node replaced by a value of another type or an extreme one, a key renamed to a
//! field of another resource, list items duplicated or dropped), through parse,
//! validation and compilation for a sidecar and the gateway.
//!
//! Promises: no panic escapes; every error has a message; whatever validates compiles.

use mesh_api::{MeshConfig, ProxyScope, compile::compile, parse_file};
use rand::rngs::StdRng;

use super::{Env, own_rss_kb, seed_files};
use crate::harness::Target;
use crate::mutate::Mutator;
use crate::tree::YamlInputs;

/// Field names of the Istio kinds: a renamed key lands on a real field of the wrong place.
const FIELDS: [&str; 30] = [
    "apiVersion",
    "kind",
    "metadata",
    "name",
    "namespace",
    "spec",
    "hosts",
    "gateways",
    "http",
    "tcp",
    "tls",
    "match",
    "route",
    "destination",
    "host",
    "subset",
    "port",
    "number",
    "weight",
    "timeout",
    "retries",
    "attempts",
    "perTryTimeout",
    "fault",
    "delay",
    "abort",
    "percentage",
    "trafficPolicy",
    "selector",
    "rules",
];

/// The `istio-yaml` target.
#[derive(Debug)]
pub struct IstioYaml {
    inputs: YamlInputs,
    scopes: Vec<ProxyScope>,
}

impl IstioYaml {
    /// Seeds from `mesh/config`.
    pub fn new(env: &Env) -> anyhow::Result<Self> {
        let seeds = seed_files(&env.repo.join("mesh/config"), true)?;
        Ok(Self {
            inputs: YamlInputs::new(
                seeds,
                Mutator {
                    dictionary: vec![
                        b": ",
                        b"\n- ",
                        b"\n  ",
                        b"---\n",
                        b"{",
                        b"}",
                        b"[",
                        b"]",
                        b"&a ",
                        b"*a",
                        b"!!binary ",
                        b"<<: ",
                        b"'",
                        b"\"",
                        b"# ",
                        b"|\n",
                        b">-\n",
                        b"? ",
                    ],
                    max_len: 256 * 1024,
                },
                &FIELDS,
            ),
            scopes: vec![
                ProxyScope::sidecar("default", &[("app", "productpage"), ("version", "v1")]),
                ProxyScope::sidecar("default", &[("app", "reviews"), ("version", "v2")]),
                ProxyScope::gateway("istio-system", &[("istio", "ingressgateway")]),
            ],
        })
    }
}

impl Target for IstioYaml {
    fn name(&self) -> &'static str {
        "istio-yaml"
    }

    fn input(&mut self, rng: &mut StdRng) -> Vec<u8> {
        self.inputs.next(rng)
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(input);
        let parsed = parse_file("fuzz.yaml", &text);
        if let Some(e) = parsed
            .errors
            .iter()
            .find(|e| e.to_string().trim().is_empty())
        {
            return Err(format!("an error without a message: {e:?}"));
        }
        if !parsed.errors.is_empty() {
            return Ok(());
        }
        match MeshConfig::from_resources(parsed.resources) {
            Err(errors) => {
                if errors.to_string().trim().is_empty() {
                    return Err("validation failed without a message".to_owned());
                }
            }
            Ok(outcome) => {
                for scope in &self.scopes {
                    let _table = compile(&outcome.config, scope);
                }
            }
        }
        Ok(())
    }

    fn rss_kb(&self) -> u64 {
        own_rss_kb()
    }
}
