//! `meshctl analyze [-f FILE|DIR]`: the control plane's findings about the configuration
//! in force, or about it with the files applied, printed one per line as
//! `Level [CODE] (Kind namespace/name) message`.

use mesh_api::wire::{AnalyzeFile, AnalyzeRequest, Level};

use super::apply::expand;
use super::get::{pretty_json, yaml};
use crate::CtlError;
use crate::cli::{AnalyzeArgs, OutputFormat, Threshold};
use crate::control::{ClientError, ControlClient};

/// Exit status when a finding reaches `--failure-threshold`.
const FINDINGS_EXIT: u8 = 79;

pub(super) async fn run(control: &ControlClient, a: &AnalyzeArgs) -> Result<u8, CtlError> {
    let mut files = Vec::new();
    if !a.files.is_empty() {
        for file in expand(&a.files)? {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| CtlError::io(format!("cannot read {}", file.display()), e))?;
            files.push(AnalyzeFile {
                name: file.display().to_string(),
                text,
            });
        }
    }
    let analysis = match control.analyze(&AnalyzeRequest { files }).await {
        Ok(analysis) => analysis,
        // A file that would be rejected: said as apply says it.
        Err(ClientError::Api {
            status: 400,
            message,
            errors,
        }) => {
            eprintln!("error: {message}");
            for e in errors {
                eprintln!("  {e}");
            }
            return Ok(1);
        }
        Err(e) => return Err(e.into()),
    };
    let findings = &analysis.findings;
    match a.output {
        OutputFormat::Json => println!("{}", pretty_json(findings)?),
        OutputFormat::Yaml => print!("{}", yaml(findings)?),
        OutputFormat::Table if findings.is_empty() => {
            println!("✔ No validation issues found.");
        }
        OutputFormat::Table => {
            for f in findings {
                let at = if f.path.is_empty() {
                    f.file.clone()
                } else {
                    format!("{}, {}", f.file, f.path)
                };
                println!("{f}\n    in {at}");
            }
        }
    }
    let threshold = match a.failure_threshold {
        Threshold::Info => Level::Info,
        Threshold::Warning => Level::Warning,
        Threshold::Error => Level::Error,
    };
    Ok(if findings.iter().any(|f| f.level >= threshold) {
        FINDINGS_EXIT
    } else {
        0
    })
}
