//! Configuration sources: where the YAML files come from.
//!
//! A source is polled; when anything changed it hands back its complete file set, which the
//! store then validates together with everything else in force (a full reload of that
//! source, so a rename or a deleted file is handled the same way as an edit). A directory
//! is polled on a timer; a source that knows when it changed (the Kubernetes watch in
//! [`crate::kube`]) is a [`NotifyingSource`] and is polled when it says so.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// One YAML text and the name diagnostics use for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Name shown in errors and in `/api/v1/resources` (`virtual-service-all-v1.yaml`).
    pub name: String,
    /// The YAML.
    pub text: String,
}

/// A source could not be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read {path}: {source}")]
pub struct SourceError {
    /// What we tried to read.
    pub path: String,
    /// Why it failed.
    #[source]
    pub source: std::io::Error,
}

/// How the files of one reload are admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// One bad file rejects the whole set: a directory is edited by hand, and applying the
    /// good half of an edit that spans files would route traffic in a way nobody wrote.
    WholeSet,
    /// Each file is an object of its own (a Kubernetes object, applied on its own): a bad
    /// one is reported and left out, the others apply. Nobody else's change should wait
    /// for it to be fixed, and nothing refused it at `kubectl apply` (our CRDs take any spec).
    EachFile,
}

/// Something that yields configuration files.
pub trait ConfigSource: Send {
    /// Short name for the source, e.g. `config-dir`.
    fn name(&self) -> &str;

    /// The complete file set when it differs from the last call (always on the first
    /// call), `None` when nothing changed.
    fn poll(&mut self) -> Result<Option<Vec<SourceFile>>, SourceError>;

    /// How a bad file is handled; a whole-set rejection unless the source says otherwise.
    fn admission(&self) -> Admission {
        Admission::WholeSet
    }
}

/// A source that says when it may have changed, so it is polled then instead of on a
/// timer (see [`crate::Control::follow_source`]).
pub trait NotifyingSource: ConfigSource {
    /// Resolves when [`ConfigSource::poll`] may return something new; `false` once the
    /// source has ended and will never change again.
    fn changed(&mut self) -> impl Future<Output = bool> + Send;
}

/// What we remember of a file to notice changes without reading it.
type Stamp = (Option<SystemTime>, u64);

/// A directory of `*.yaml` / `*.yml` files (not recursive). Changes are noticed by
/// comparing names, modification times and sizes; editors that replace files are fine.
#[derive(Debug)]
pub struct DirSource {
    dir: PathBuf,
    seen: Option<BTreeMap<String, Stamp>>,
}

impl DirSource {
    /// A source reading `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            seen: None,
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn error(&self, path: &Path, source: std::io::Error) -> SourceError {
        SourceError {
            path: path.display().to_string(),
            source,
        }
    }

    fn scan(&self) -> Result<BTreeMap<String, Stamp>, SourceError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| self.error(&self.dir, e))?;
        let mut stamps = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|e| self.error(&self.dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Hidden files are editor swap files and the like.
            if name.starts_with('.') || !(name.ends_with(".yaml") || name.ends_with(".yml")) {
                continue;
            }
            // Follow links: a Kubernetes ConfigMap mounted as a folder shows each file as a
            // link into a `..data` folder that is swapped on update.
            let Ok(meta) = std::fs::metadata(entry.path()) else {
                continue; // vanished between listing and stat: the next poll sees it
            };
            if meta.is_file() {
                stamps.insert(name, (meta.modified().ok(), meta.len()));
            }
        }
        Ok(stamps)
    }
}

impl ConfigSource for DirSource {
    fn name(&self) -> &str {
        "config-dir"
    }

    fn poll(&mut self) -> Result<Option<Vec<SourceFile>>, SourceError> {
        let stamps = self.scan()?;
        if self.seen.as_ref() == Some(&stamps) {
            return Ok(None);
        }
        let mut files = Vec::with_capacity(stamps.len());
        for name in stamps.keys() {
            let path = self.dir.join(name);
            let text = std::fs::read_to_string(&path).map_err(|e| self.error(&path, e))?;
            files.push(SourceFile {
                name: name.clone(),
                text,
            });
        }
        self.seen = Some(stamps);
        Ok(Some(files))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_files_once_then_only_changes() {
        let dir = std::env::temp_dir().join(format!("mesh-control-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.yaml"), "x: 1\n").unwrap();
        std::fs::write(dir.join("notes.txt"), "ignored").unwrap();
        let mut source = DirSource::new(&dir);
        let first = source.poll().unwrap().unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].name, "a.yaml");
        assert!(source.poll().unwrap().is_none());
        std::fs::write(dir.join("b.yml"), "y: 2\n").unwrap();
        let second = source.poll().unwrap().unwrap();
        assert_eq!(second.len(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(source.poll().is_err());
    }

    #[test]
    fn follows_links_as_a_mounted_config_map_has_them() {
        let dir = std::env::temp_dir().join(format!("mesh-control-links-{}", std::process::id()));
        let data = dir.join("..2026_12_03");
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("vs.yaml"), "x: 1\n").unwrap();
        std::os::unix::fs::symlink("..2026_12_03", dir.join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/vs.yaml", dir.join("vs.yaml")).unwrap();
        let mut source = DirSource::new(&dir);
        let files = source.poll().unwrap().unwrap();
        assert_eq!(
            files.len(),
            1,
            "the linked file is read, the hidden folders are not"
        );
        assert_eq!(files[0].name, "vs.yaml");
        assert_eq!(files[0].text, "x: 1\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
