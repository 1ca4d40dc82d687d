//! Structural mutations of YAML documents: a node replaced by a value of another type or
//! an extreme one, a key renamed to another field of the format, list items duplicated
//! or dropped, a piece of another document grafted in. Text mutations rarely keep YAML
//! parsable; these reach the validators behind the parser.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::{IndexedMutRandom, IndexedRandom};
use serde_norway::{Mapping, Value};

use crate::mutate::Mutator;

/// Scalars that break validators: empty, negative, huge, wrong type, odd durations.
const SCALARS: [&str; 16] = [
    "",
    "-1",
    "0",
    "4294967296",
    "1e309",
    "true",
    "null",
    "~",
    "-1s",
    "1000000h",
    "0.000001ms",
    "*",
    "[]",
    "{}",
    "reviews.default.svc.cluster.local",
    "\u{0}",
];

/// The documents of a multi-document YAML text (the unparsable ones skipped).
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .filter_map(|d| <Value as serde::Deserialize>::deserialize(d).ok())
        .filter(|v| !v.is_null())
        .collect()
}

/// A random scalar or an empty collection.
fn random_value(rng: &mut StdRng) -> Value {
    match rng.random_range(0..4) {
        0 => Value::Sequence(Vec::new()),
        1 => Value::Mapping(Mapping::new()),
        2 => Value::Number(rng.random_range(-3i64..70000).into()),
        _ => Value::String((*SCALARS.choose(rng).unwrap_or(&"")).to_owned()),
    }
}

/// Applies one structural change at a random depth of `tree`; renamed keys take a name
/// from `fields`.
fn mutate_tree(rng: &mut StdRng, tree: &mut Value, donor: &Value, fields: &[&str]) {
    // Walk down a random path, stopping at random. Steps are chosen while looking and
    // taken by index (keys exist, positions are in range), so the walk never fails.
    let mut node = tree;
    loop {
        let go_on = rng.random_bool(0.7);
        match &*node {
            Value::Mapping(m) if go_on && !m.is_empty() => {
                let i = rng.random_range(0..m.len());
                let Some(key) = m.keys().nth(i).cloned() else {
                    break;
                };
                node = &mut node[key];
            }
            Value::Sequence(s) if go_on && !s.is_empty() => {
                let i = rng.random_range(0..s.len());
                node = &mut node[i];
            }
            _ => break,
        }
    }
    match (rng.random_range(0..5), &mut *node) {
        (0, Value::Mapping(m)) if !m.is_empty() => {
            let i = rng.random_range(0..m.len());
            if let Some(key) = m.keys().nth(i).cloned() {
                let value = m.remove(&key).unwrap_or(Value::Null);
                let new_key = (*fields.choose(rng).unwrap_or(&"spec")).to_owned();
                m.insert(Value::String(new_key), value);
            }
        }
        (1, Value::Mapping(m)) if !m.is_empty() => {
            let i = rng.random_range(0..m.len());
            if let Some(key) = m.keys().nth(i).cloned() {
                m.remove(&key);
            }
        }
        (2, Value::Sequence(s)) if !s.is_empty() => {
            let i = rng.random_range(0..s.len());
            if rng.random_bool(0.5) {
                let item = s[i].clone();
                s.extend(std::iter::repeat_n(item, rng.random_range(1..50)));
            } else {
                s.remove(i);
            }
        }
        // A subtree of another file in its place: valid pieces in the wrong places.
        (3, _) => *node = pick_subtree(rng, donor).clone(),
        _ => *node = random_value(rng),
    }
}

fn pick_subtree<'a>(rng: &mut StdRng, mut node: &'a Value) -> &'a Value {
    while rng.random_bool(0.6) {
        let children: Vec<&Value> = match node {
            Value::Mapping(m) => m.values().collect(),
            Value::Sequence(s) => s.iter().collect(),
            _ => break,
        };
        match children.choose(rng) {
            Some(child) => node = child,
            None => break,
        }
    }
    node
}

/// One input from `trees`: one to three documents, each changed one to three times,
/// written back as a multi-document text.
fn mutated_documents(rng: &mut StdRng, trees: &[Value], fields: &[&str]) -> Vec<u8> {
    let mut docs: Vec<Value> = (0..rng.random_range(1..=3))
        .filter_map(|_| trees.choose(rng).cloned())
        .collect();
    let donor = trees.choose(rng).cloned().unwrap_or(Value::Null);
    for _ in 0..rng.random_range(1..=3) {
        if let Some(doc) = docs.choose_mut(rng) {
            mutate_tree(rng, doc, &donor, fields);
        }
    }
    let texts: Vec<String> = docs
        .iter()
        .filter_map(|d| serde_norway::to_string(d).ok())
        .collect();
    texts.join("---\n").into_bytes()
}

/// Inputs for a YAML format: half text mutations of the seed files, half structural
/// mutations of their documents.
#[derive(Debug)]
pub struct YamlInputs {
    seeds: Vec<Vec<u8>>,
    trees: Vec<Value>,
    text: Mutator,
    fields: &'static [&'static str],
}

impl YamlInputs {
    /// From seed files, the format's tokens and field names.
    pub fn new(seeds: Vec<Vec<u8>>, text: Mutator, fields: &'static [&'static str]) -> Self {
        let trees = seeds
            .iter()
            .flat_map(|s| documents(&String::from_utf8_lossy(s)))
            .collect();
        Self {
            seeds,
            trees,
            text,
            fields,
        }
    }

    /// The next input.
    pub fn next(&self, rng: &mut StdRng) -> Vec<u8> {
        if rng.random_bool(0.5) || self.trees.is_empty() {
            let seed = self.seeds.choose(rng).map_or(&[][..], Vec::as_slice);
            return self.text.mutate(rng, seed, &self.seeds);
        }
        mutated_documents(rng, &self.trees, self.fields)
    }
}
