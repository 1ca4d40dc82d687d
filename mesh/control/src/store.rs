//! The configuration in force.
//!
//! Resources come from configuration sources (files) and from the API (`apply`/`delete`),
//! which lays an overlay over the files. Every change builds the complete candidate set and
//! validates it with the same rules as the proxies ([`MeshConfig::from_resources`]); only a
//! fully valid candidate replaces the configuration, so nothing is ever half-applied and a
//! rejected change leaves the last good configuration in force.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use mesh_api::compile::now_ms;
use mesh_api::parse::Loaded;
use mesh_api::wire::{ErrorRecord, ResourceEntry};
use mesh_api::{ConfigError, Kind, MeshConfig, Warning, parse_file};

use crate::source::{Admission, SourceFile};

/// How many rejected changes the dashboard can show.
const KEPT_ERRORS: usize = 20;

/// Identity of a resource: kind, namespace, name.
type Key = (Kind, String, String);

fn key_of(loaded: &Loaded) -> Key {
    let r = &loaded.resource;
    (r.kind(), r.namespace().to_owned(), r.name().to_owned())
}

/// A change that was rejected whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{summary}")]
pub struct Rejected {
    /// One line.
    pub summary: String,
    /// Every problem found.
    pub errors: Vec<String>,
}

/// Every resource in force (source files not hidden, then the API's overlay, which wins),
/// with where each came from.
fn assemble(
    sources: &BTreeMap<String, Vec<Loaded>>,
    overlay: &[Loaded],
    hidden: &BTreeSet<Key>,
) -> (Vec<Loaded>, BTreeMap<Key, String>) {
    let mut all = Vec::new();
    let mut origins = BTreeMap::new();
    for (source, resources) in sources {
        for loaded in resources {
            let key = key_of(loaded);
            if !hidden.contains(&key) {
                origins.insert(key, source.clone());
                all.push(loaded.clone());
            }
        }
    }
    for loaded in overlay {
        origins.insert(key_of(loaded), "api".to_owned());
        all.push(loaded.clone());
    }
    (all, origins)
}

impl Rejected {
    fn from_errors(what: &str, errors: &[ConfigError]) -> Self {
        let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let summary = match errors.as_slice() {
            [] => format!("{what} rejected"),
            [only] => format!("{what} rejected: {only}"),
            [first, rest @ ..] => format!(
                "{what} rejected: {first} (and {} more error{})",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        };
        Self { summary, errors }
    }

    fn plain(summary: String) -> Self {
        Self {
            errors: vec![summary.clone()],
            summary,
        }
    }
}

/// Result of a successful apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `Kind namespace/name` of each resource applied.
    pub applied: Vec<String>,
    /// Non-fatal findings about the applied text.
    pub warnings: Vec<String>,
}

/// Result of a successful delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// Resources removed.
    pub deleted: Vec<String>,
    /// Resources named in the text that were not in force.
    pub missing: Vec<String>,
}

/// Result of a successful reload of a source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reloaded {
    /// Non-fatal findings.
    pub warnings: Vec<String>,
    /// Files left out because they are invalid ([`Admission::EachFile`] only); only those
    /// that were not already left out, unchanged, by the previous reload.
    pub skipped: Vec<Skipped>,
}

/// A file left out of a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Its name (`VirtualService default/reviews` for a Kubernetes object).
    pub file: String,
    /// Its problems.
    pub rejected: Rejected,
}

/// The validated configuration plus what it was built from.
#[derive(Debug, Default)]
pub struct Store {
    /// Parsed resources of each source, by source name.
    sources: BTreeMap<String, Vec<Loaded>>,
    /// Resources applied through the API, in apply order (they win over source files).
    overlay: Vec<Loaded>,
    /// Source resources deleted through the API (hidden until applied again).
    hidden: BTreeSet<Key>,
    /// What is in force.
    config: Arc<MeshConfig>,
    /// Where each resource in force came from.
    origins: BTreeMap<Key, String>,
    /// Files of each source left out as invalid (name -> text), so that an object that
    /// stays broken is reported once, not again on every change of its neighbours.
    skipped: BTreeMap<String, BTreeMap<String, String>>,
    /// Recent rejected changes, newest last.
    errors: VecDeque<ErrorRecord>,
    /// Rejected changes since start.
    rejected_total: u64,
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<MeshConfig> {
        Arc::clone(&self.config)
    }

    /// Recent rejected changes, oldest first.
    pub fn errors(&self) -> impl Iterator<Item = &ErrorRecord> {
        self.errors.iter()
    }

    /// How many changes were rejected since start.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_total
    }

    /// Validates a candidate and makes it current; on error nothing changes.
    fn commit(
        &mut self,
        sources: BTreeMap<String, Vec<Loaded>>,
        overlay: Vec<Loaded>,
        hidden: BTreeSet<Key>,
    ) -> Result<Vec<Warning>, Vec<ConfigError>> {
        let (all, origins) = assemble(&sources, &overlay, &hidden);
        let outcome = MeshConfig::from_resources(all).map_err(|e| e.0)?;
        self.sources = sources;
        self.overlay = overlay;
        self.hidden = hidden;
        self.origins = origins;
        self.config = Arc::new(outcome.config);
        Ok(outcome.warnings)
    }

    /// The configuration as it would be with `files` (name, YAML) applied, validated
    /// like an apply but not committed: what `meshctl analyze -f` looks at.
    pub fn candidate(&self, files: &[(String, String)]) -> Result<MeshConfig, Rejected> {
        let mut overlay = self.overlay.clone();
        let mut hidden = self.hidden.clone();
        for (file, text) in files {
            let parsed = parse_file(file, text);
            if !parsed.errors.is_empty() {
                return Err(Rejected::from_errors("analyze", &parsed.errors));
            }
            for loaded in parsed.resources {
                let key = key_of(&loaded);
                overlay.retain(|l| key_of(l) != key);
                hidden.remove(&key);
                overlay.push(loaded);
            }
        }
        let (all, _) = assemble(&self.sources, &overlay, &hidden);
        MeshConfig::from_resources(all)
            .map(|outcome| outcome.config)
            .map_err(|e| Rejected::from_errors("analyze", &e.0))
    }

    fn remember(&mut self, change: &str, rejected: &Rejected) {
        self.rejected_total += 1;
        if self.errors.len() == KEPT_ERRORS {
            self.errors.pop_front();
        }
        self.errors.push_back(ErrorRecord {
            at_ms: now_ms(),
            change: change.to_owned(),
            error: rejected.summary.clone(),
            errors: rejected.errors.clone(),
        });
    }

    /// Replaces every file of `source` (a full reload of that source). With
    /// [`Admission::WholeSet`] one bad file rejects the set; with [`Admission::EachFile`]
    /// bad files are left out (and remembered as rejected changes of their own) and the
    /// rest applies, unless the rest is still rejected.
    pub fn replace_source(
        &mut self,
        source: &str,
        files: &[SourceFile],
        admission: Admission,
    ) -> Result<Reloaded, Rejected> {
        let result = self.try_replace_source(source, files, admission);
        match &result {
            Ok(reloaded) => {
                for skipped in &reloaded.skipped {
                    self.remember(&format!("{source} {}", skipped.file), &skipped.rejected);
                }
            }
            Err(rejected) => self.remember(source, rejected),
        }
        result
    }

    fn try_replace_source(
        &mut self,
        source: &str,
        files: &[SourceFile],
        admission: Admission,
    ) -> Result<Reloaded, Rejected> {
        let what = format!("{source} change");
        let mut warnings = Vec::new();
        let mut parsed = Vec::with_capacity(files.len());
        // Problems of each file left out, by file name.
        let mut left_out: BTreeMap<&str, Vec<ConfigError>> = BTreeMap::new();
        let mut parse_errors = Vec::new();
        for file in files {
            let mut one = parse_file(&file.name, &file.text);
            warnings.append(&mut one.warnings);
            if one.errors.is_empty() {
                parsed.push((file, one.resources));
            } else if admission == Admission::EachFile {
                left_out.insert(&file.name, one.errors);
            } else {
                parse_errors.append(&mut one.errors);
            }
        }
        if !parse_errors.is_empty() {
            return Err(Rejected::from_errors(&what, &parse_errors));
        }
        // Each round leaves out at least one more file, so this ends.
        let more = loop {
            let resources = parsed
                .iter()
                .filter(|(file, _)| !left_out.contains_key(file.name.as_str()))
                .flat_map(|(_, resources)| resources.iter().cloned())
                .collect();
            let mut sources = self.sources.clone();
            sources.insert(source.to_owned(), resources);
            let errors = match self.commit(sources, self.overlay.clone(), self.hidden.clone()) {
                Ok(more) => break more,
                Err(errors) => errors,
            };
            let mut progress = false;
            if admission == Admission::EachFile {
                for error in &errors {
                    let ours = parsed.iter().find(|(file, _)| {
                        file.name == error.file && !left_out.contains_key(file.name.as_str())
                    });
                    if let Some((file, _)) = ours {
                        left_out.entry(&file.name).or_default();
                        progress = true;
                    }
                    if let Some(list) = left_out.get_mut(error.file.as_str()) {
                        list.push(error.clone());
                    }
                }
            }
            // Problems that name no file of this source (a conflict with the API overlay,
            // say) cannot be fixed by leaving files out: the whole change is rejected.
            if !progress {
                return Err(Rejected::from_errors(&what, &errors));
            }
        };
        warnings.extend(more);
        let before = self.skipped.remove(source).unwrap_or_default();
        let mut now = BTreeMap::new();
        let mut skipped = Vec::new();
        for file in files {
            let Some(errors) = left_out.get(file.name.as_str()) else {
                continue;
            };
            if before.get(&file.name) != Some(&file.text) {
                skipped.push(Skipped {
                    file: file.name.clone(),
                    rejected: Rejected::from_errors(&format!("{source} object"), errors),
                });
            }
            now.insert(file.name.clone(), file.text.clone());
        }
        if !now.is_empty() {
            self.skipped.insert(source.to_owned(), now);
        }
        Ok(Reloaded {
            warnings: warnings.iter().map(ToString::to_string).collect(),
            skipped,
        })
    }

    /// Applies the resources of one YAML text (`file` names it in messages).
    pub fn apply(&mut self, file: &str, text: &str) -> Result<Applied, Rejected> {
        let result = self.try_apply(file, text);
        if let Err(rejected) = &result {
            self.remember(&format!("apply {file}"), rejected);
        }
        result
    }

    fn try_apply(&mut self, file: &str, text: &str) -> Result<Applied, Rejected> {
        let parsed = parse_file(file, text);
        if !parsed.errors.is_empty() {
            return Err(Rejected::from_errors("apply", &parsed.errors));
        }
        let mut warnings: Vec<String> = parsed.warnings.iter().map(ToString::to_string).collect();
        if parsed.resources.is_empty() {
            let mut rejected = Rejected::plain(format!(
                "apply rejected: {file} holds no mesh resources (VirtualService, DestinationRule, Gateway, ServiceEntry, PeerAuthentication, AuthorizationPolicy)"
            ));
            rejected.errors.extend(warnings);
            return Err(rejected);
        }
        let mut overlay = self.overlay.clone();
        let mut hidden = self.hidden.clone();
        let mut applied = Vec::new();
        for loaded in parsed.resources {
            let key = key_of(&loaded);
            overlay.retain(|l| key_of(l) != key);
            hidden.remove(&key);
            applied.push(loaded.resource.display_name());
            overlay.push(loaded);
        }
        let more = self
            .commit(self.sources.clone(), overlay, hidden)
            .map_err(|errors| Rejected::from_errors("apply", &errors))?;
        // Only findings about this text; the rest of the configuration is not the caller's.
        warnings.extend(
            more.iter()
                .filter(|w| w.file == file)
                .map(ToString::to_string),
        );
        Ok(Applied { applied, warnings })
    }

    /// Removes the resources named in one YAML text.
    pub fn delete(&mut self, file: &str, text: &str) -> Result<Deleted, Rejected> {
        let result = self.try_delete(file, text);
        if let Err(rejected) = &result {
            self.remember(&format!("delete {file}"), rejected);
        }
        result
    }

    fn try_delete(&mut self, file: &str, text: &str) -> Result<Deleted, Rejected> {
        let parsed = parse_file(file, text);
        if !parsed.errors.is_empty() {
            return Err(Rejected::from_errors("delete", &parsed.errors));
        }
        let mut overlay = self.overlay.clone();
        let mut hidden = self.hidden.clone();
        let mut deleted = Vec::new();
        let mut missing = Vec::new();
        for loaded in &parsed.resources {
            let key = key_of(loaded);
            let in_overlay = overlay.iter().any(|l| key_of(l) == key);
            overlay.retain(|l| key_of(l) != key);
            let in_source =
                !hidden.contains(&key) && self.sources.values().flatten().any(|l| key_of(l) == key);
            if in_source {
                hidden.insert(key);
            }
            let name = loaded.resource.display_name();
            if in_overlay || in_source {
                deleted.push(name);
            } else {
                missing.push(name);
            }
        }
        if !deleted.is_empty() {
            self.commit(self.sources.clone(), overlay, hidden)
                .map_err(|errors| Rejected::from_errors("delete", &errors))?;
        }
        Ok(Deleted { deleted, missing })
    }

    /// Every resource in force, optionally of one kind.
    pub fn entries(&self, kind: Option<Kind>) -> Vec<ResourceEntry> {
        self.config
            .resources()
            .iter()
            .filter(|l| kind.is_none_or(|k| l.resource.kind() == k))
            .map(|l| {
                let key = key_of(l);
                ResourceEntry {
                    source: self.origins.get(&key).cloned().unwrap_or_default(),
                    kind: key.0,
                    namespace: key.1,
                    name: key.2,
                    file: l.origin.file.clone(),
                    resource: serde_json::to_value(&l.resource).unwrap_or_default(),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VS: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n";
    const BAD: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v1}\n      weight: -10\n    - destination: {host: reviews, subset: v2}\n      weight: 110\n";

    #[test]
    fn a_rejected_apply_keeps_the_previous_configuration() {
        let mut store = Store::new();
        store.apply("vs.yaml", VS).unwrap();
        let before = store.config();
        let rejected = store.apply("bad.yaml", BAD).unwrap_err();
        assert!(
            rejected.summary.contains("bad.yaml: document 1"),
            "{rejected:?}"
        );
        assert!(Arc::ptr_eq(&before, &store.config()));
        assert_eq!(store.errors().count(), 1);
    }

    fn file(name: &str, text: &str) -> SourceFile {
        SourceFile {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn each_file_admission_leaves_out_bad_files_and_reports_each_version_once() {
        const DR: &str = "apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: reviews}\nspec:\n  host: reviews\n  subsets:\n  - {name: v1, labels: {version: v1}}\n";
        // Routes to a subset no DestinationRule defines: a problem of the set, named
        // after this file.
        const TO_V3: &str = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: ratings}\nspec:\n  hosts: [reviews]\n  http:\n  - route:\n    - destination: {host: reviews, subset: v3}\n";
        let mut store = Store::new();
        let files = [
            file("dr", DR),
            file("bad", BAD),
            file("to-v3", TO_V3),
            file("garbage", "kind: [\n"),
        ];
        let reloaded = store
            .replace_source("kubernetes", &files, Admission::EachFile)
            .unwrap();
        let skipped: Vec<&str> = reloaded.skipped.iter().map(|s| s.file.as_str()).collect();
        assert_eq!(skipped, ["bad", "to-v3", "garbage"]);
        assert!(
            reloaded.skipped[1].rejected.errors[0].contains("subset \"v3\""),
            "{reloaded:?}"
        );
        assert_eq!(store.config().len(), 1, "the DestinationRule applies");
        assert_eq!(store.errors().count(), 3);
        assert_eq!(
            store.errors().next().unwrap().change,
            "kubernetes bad",
            "each left-out file is a rejected change of its own"
        );

        // The same bad files again: not reported again. A new version of one: reported.
        let again = store
            .replace_source("kubernetes", &files, Admission::EachFile)
            .unwrap();
        assert!(again.skipped.is_empty(), "{again:?}");
        let mut edited = files.clone();
        edited[3].text = "kind: [[\n".into();
        let edit = store
            .replace_source("kubernetes", &edited, Admission::EachFile)
            .unwrap();
        assert_eq!(edit.skipped.len(), 1);
        assert_eq!(store.errors().count(), 4);

        // The whole-set admission of a directory rejects the same files whole.
        let mut dir = Store::new();
        let rejected = dir
            .replace_source("config-dir", &files, Admission::WholeSet)
            .unwrap_err();
        assert!(rejected.summary.starts_with("config-dir change rejected"));
        assert!(dir.config().is_empty());
    }

    #[test]
    fn deleting_a_file_resource_hides_it_until_applied_again() {
        let mut store = Store::new();
        let files = [SourceFile {
            name: "vs.yaml".into(),
            text: VS.into(),
        }];
        store
            .replace_source("config-dir", &files, Admission::WholeSet)
            .unwrap();
        assert_eq!(store.entries(None)[0].source, "config-dir");
        let gone = store.delete("x.yaml", VS).unwrap();
        assert_eq!(gone.deleted, ["VirtualService default/reviews"]);
        assert!(store.config().is_empty());
        // A reload of the directory does not bring it back ...
        store
            .replace_source("config-dir", &files, Admission::WholeSet)
            .unwrap();
        assert!(store.config().is_empty());
        // ... an apply does.
        store.apply("vs.yaml", VS).unwrap();
        assert_eq!(store.entries(None)[0].source, "api");
        let again = store.delete("x.yaml", VS).unwrap();
        assert_eq!(again.deleted.len(), 1);
        let missing = store.delete("x.yaml", VS).unwrap();
        assert_eq!(missing.missing, ["VirtualService default/reviews"]);
    }
}
