//! Diagnostics: errors and warnings that point at the exact place in the user's YAML.
//!
//! Every diagnostic carries the file, the document index inside a multi-document file,
//! the resource (`Kind namespace/name`) and the field path, because a user with twenty
//! routing files needs to know *where* to look, not just *what* is wrong.

use std::fmt;

use serde::Serialize;

/// Where a resource came from: a file name (as given by the caller) and the 1-based index
/// of the YAML document inside that file (counting every `---` separated document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// File name used in messages (no I/O happens here).
    pub file: String,
    /// 1-based document index.
    pub document: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: document {}", self.file, self.document)
    }
}

/// One problem in a configuration file.
///
/// Display: `bad.yaml: document 2: VirtualService default/reviews: spec.http[0].route[1].weight: must not be negative`.
/// Parts that are unknown (a YAML syntax error has no resource yet) are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct ConfigError {
    /// File name as given to the parser.
    pub file: String,
    /// 1-based document index, when the problem is inside a document.
    pub document: Option<usize>,
    /// `Kind namespace/name`, when the resource could be identified.
    pub resource: Option<String>,
    /// Field path such as `spec.http[0].timeout`; empty for whole-document problems.
    pub path: String,
    /// What is wrong, in words.
    pub message: String,
}

impl ConfigError {
    /// A problem located at `origin` without a known resource (syntax, missing kind, ...).
    pub fn at(origin: &Origin, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            file: origin.file.clone(),
            document: Some(origin.document),
            resource: None,
            path: path.into(),
            message: message.into(),
        }
    }

    /// Same, naming the resource.
    pub fn in_resource(
        origin: &Origin,
        resource: impl Into<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            resource: Some(resource.into()),
            ..Self::at(origin, path, message)
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_parts(
            f,
            &self.file,
            self.document,
            self.resource.as_deref(),
            &self.path,
            &self.message,
        )
    }
}

/// Something suspicious that does not stop the resource from loading (unknown field,
/// unknown kind). Displayed like [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// File name as given to the parser.
    pub file: String,
    /// 1-based document index.
    pub document: Option<usize>,
    /// `Kind namespace/name`, when known.
    pub resource: Option<String>,
    /// Field path, empty for whole-document warnings.
    pub path: String,
    /// What was noticed.
    pub message: String,
}

impl Warning {
    pub(crate) fn in_resource(
        origin: &Origin,
        resource: Option<String>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            file: origin.file.clone(),
            document: Some(origin.document),
            resource,
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_parts(
            f,
            &self.file,
            self.document,
            self.resource.as_deref(),
            &self.path,
            &self.message,
        )
    }
}

fn write_parts(
    f: &mut fmt::Formatter<'_>,
    file: &str,
    document: Option<usize>,
    resource: Option<&str>,
    path: &str,
    message: &str,
) -> fmt::Result {
    write!(f, "{file}: ")?;
    if let Some(document) = document {
        write!(f, "document {document}: ")?;
    }
    if let Some(resource) = resource {
        write!(f, "{resource}: ")?;
    }
    if !path.is_empty() {
        write!(f, "{path}: ")?;
    }
    f.write_str(message)
}

/// All errors found in a set of files (validation reports every problem, not just the first).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}
