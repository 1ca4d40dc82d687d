//! `meshctl apply -f` and `meshctl delete -f`: send YAML files to the control plane and
//! report per resource, like kubectl.

use std::path::{Path, PathBuf};

use crate::CtlError;
use crate::control::{ClientError, ControlClient};

/// Applies (or deletes) every file; exit code 1 when any file was rejected.
pub(super) async fn run(
    control: &ControlClient,
    paths: &[PathBuf],
    delete: bool,
) -> Result<u8, CtlError> {
    let files = expand(paths)?;
    let mut failed = false;
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| CtlError::io(format!("cannot read {}", file.display()), e))?;
        let name = file.display().to_string();
        let answer = if delete {
            control.delete_resources(&name, text).await.map(|d| Report {
                done: d.deleted,
                verb: "deleted",
                missing: d.missing,
                warnings: Vec::new(),
            })
        } else {
            control.apply(&name, text).await.map(|a| Report {
                done: a.applied,
                verb: "configured",
                missing: Vec::new(),
                warnings: a.warnings,
            })
        };
        match answer {
            Ok(report) => {
                for r in report.done {
                    println!("{r} {}", report.verb);
                }
                for r in report.missing {
                    println!("{r} not found");
                }
                for w in report.warnings {
                    eprintln!("warning: {name}: {w}");
                }
            }
            // Refused as a caller, not as a file: stop, with what to pass.
            Err(
                e @ ClientError::Api {
                    status: 401 | 403, ..
                },
            ) => return Err(e.into()),
            Err(ClientError::Api {
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
pub(super) fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CtlError> {
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

/// What one file did, in the order it is printed.
struct Report {
    /// Resources applied or deleted.
    done: Vec<String>,
    /// `configured` or `deleted`.
    verb: &'static str,
    /// Resources to delete that were not in force.
    missing: Vec<String>,
    /// Non-fatal findings about the file.
    warnings: Vec<String>,
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
