//! `chaos-experiment`: the shipped experiments (Chaos Toolkit's format), mutated as text
//! and as YAML trees, through parsing, variable substitution and validation.
//!
//! Promises: no panic escapes; a rejected experiment says why.

use std::collections::BTreeMap;

use bookinfo_loadtest::chaos::{Experiment, ExperimentError};
use rand::rngs::StdRng;

use super::{Env, own_rss_kb, seed_files};
use crate::harness::Target;
use crate::mutate::Mutator;
use crate::tree::YamlInputs;

/// Field names of the experiment format.
const FIELDS: [&str; 24] = [
    "title",
    "description",
    "configuration",
    "steady-state-hypothesis",
    "probes",
    "method",
    "rollbacks",
    "type",
    "name",
    "provider",
    "module",
    "func",
    "arguments",
    "tolerance",
    "url",
    "method",
    "timeout",
    "pauses",
    "before",
    "after",
    "background",
    "controls",
    "secrets",
    "ref",
];

/// The `chaos-experiment` target.
#[derive(Debug)]
pub struct ChaosExperiment {
    inputs: YamlInputs,
}

impl ChaosExperiment {
    /// Seeds from `loadtest/experiments`.
    pub fn new(env: &Env) -> anyhow::Result<Self> {
        let seeds = seed_files(&env.repo.join("loadtest/experiments"), false)?;
        Ok(Self {
            inputs: YamlInputs::new(
                seeds,
                Mutator {
                    dictionary: vec![
                        b": ",
                        b"\n- ",
                        b"\n  ",
                        b"${",
                        b"}",
                        b"$.",
                        b"[",
                        b"]",
                        b"{",
                        b"'",
                        b"\"",
                        b"type: probe",
                        b"type: action",
                        b"tolerance: ",
                        b"provider:",
                    ],
                    max_len: 128 * 1024,
                },
                &FIELDS,
            ),
        })
    }
}

impl Target for ChaosExperiment {
    fn name(&self) -> &'static str {
        "chaos-experiment"
    }

    fn input(&mut self, rng: &mut StdRng) -> Vec<u8> {
        self.inputs.next(rng)
    }

    fn run(&mut self, input: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(input);
        let env = |name: &str| (name == "BOOKINFO_URL").then(|| "http://127.0.0.1:9".to_owned());
        match Experiment::from_text(&text, &BTreeMap::new(), &env) {
            Err(ExperimentError::Invalid(problems))
                if problems.is_empty() || problems.iter().any(|p| p.message.trim().is_empty()) =>
            {
                Err(format!("rejected without saying why: {problems:?}"))
            }
            Err(ExperimentError::Syntax(reason)) if reason.trim().is_empty() => {
                Err("a syntax error without a message".to_owned())
            }
            Ok(_) | Err(_) => Ok(()),
        }
    }

    fn rss_kb(&self) -> u64 {
        own_rss_kb()
    }
}
