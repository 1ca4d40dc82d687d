//! `meshctl apply -f` and `meshctl delete -f`: send YAML files to the control plane and
//! report per resource, like kubectl.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::CtlError;
use crate::control::{Control, ControlError};

/// Applies (or deletes) every file; exit code 1 when any file was rejected.
pub(super) async fn run(
    control: &Control,
    paths: &[PathBuf],
    delete: bool,
) -> Result<u8, CtlError> {
    let files = expand(paths)?;
    let mut failed = false;
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CtlError::io(format!("cannot read {}", file.display()), e))?;
        let name = file.display().to_string();
        let (path, verb) = if delete {
            ("api/v1/delete", "deleted")
        } else {
            ("api/v1/apply", "configured")
        };
        match control.post_yaml(path, &[("file", &name)], text).await {
            Ok(answer) => {
                let key = if delete { "deleted" } else { "applied" };
                for r in strings(&answer, key) {
                    println!("{r} {verb}");
                }
                for r in strings(&answer, "missing") {
                    println!("{r} not found");
                }
                for w in strings(&answer, "warnings") {
                    eprintln!("warning: {name}: {w}");
                }
            }
            Err(ControlError::Api {
                message, errors, ..
            }) => {
                failed = true;
                eprintln!("error: {name}: {message}");
                for e in errors {
                    eprintln!("  {e}");
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(u8::from(failed))
}

/// Files named directly, and the *.yaml / *.yml files of directories in name order.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CtlError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| CtlError::io(format!("cannot read {}", p.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && is_yaml(f))
                .collect();
            if found.is_empty() {
                return Err(CtlError::Usage(format!(
                    "{} holds no *.yaml file",
                    p.display()
                )));
            }
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(CtlError::Usage(format!(
                "{}: no such file or directory",
                p.display()
            )));
        }
    }
    Ok(out)
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

/// The strings of array `key` (non-strings printed as JSON).
fn strings(answer: &Value, key: &str) -> Vec<String> {
    answer
        .get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_expand_to_sorted_yaml_files() {
        let dir = std::env::temp_dir().join(format!("meshctl-expand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for f in ["b.yaml", "a.yml", "c.txt"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let got = expand(std::slice::from_ref(&dir)).unwrap();
        assert_eq!(got, [dir.join("a.yml"), dir.join("b.yaml")]);
        let e = expand(&[dir.join("missing.yaml")]).unwrap_err().to_string();
        assert!(e.contains("missing.yaml: no such file"), "{e}");
        let empty = dir.join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        assert!(
            expand(&[empty])
                .unwrap_err()
                .to_string()
                .contains("no *.yaml")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
