//! The subcommands that talk to the control plane or to a running `meshctl up`.

mod analyze;
mod apply;
mod describe;
mod faults;
mod get;
mod kill;
mod render;
mod status;

use std::path::Path;

use crate::cli::{Cli, Command, FaultCommand};
use crate::control::{self, ControlClient, Credential, DEFAULT_URL};
use crate::state::State;
use crate::{CtlError, explain, up};

/// Runs the parsed command line; the value is the process exit code.
pub async fn run(cli: Cli) -> Result<u8, CtlError> {
    let run_dir = cli.run_dir.as_path();
    let credential = match (cli.token.as_deref(), cli.token_file) {
        (Some(token), _) => Some(Credential::token(token)),
        (None, Some(file)) => Some(Credential::File(file)),
        (None, None) => None,
    };
    let control = |flag: Option<String>| control(flag, run_dir, credential.clone());
    match cli.command {
        Command::Up(args) => up::run(args, run_dir).await,
        Command::Explain { flag } => explain_flag(&flag),
        Command::Kill(args) => kill::run(&args, run_dir),
        Command::Apply(f) => apply::run(&control(cli.control)?, &f.files, false).await,
        Command::Delete(f) => apply::run(&control(cli.control)?, &f.files, true).await,
        Command::Get(g) => get::run(&control(cli.control)?, &g.kind, g.output).await,
        Command::Describe { service } => describe::run(&control(cli.control)?, &service).await,
        Command::Analyze(a) => analyze::run(&control(cli.control)?, &a).await,
        Command::ProxyStatus => status::run(&control(cli.control)?).await,
        Command::Fault { action } => {
            let c = control(cli.control)?;
            match action {
                FaultCommand::Add(a) => faults::add(&c, &a).await,
                FaultCommand::List => faults::list(&c).await,
                FaultCommand::Clear { id } => faults::clear(&c, id.as_deref()).await,
            }
        }
    }
}

/// The control plane: `--control` / `MESHCTL_CONTROL`, else the running `meshctl up`'s,
/// else the default address; presenting `credential` (`--token`, `MESH_CONTROL_TOKEN`).
fn control(
    flag: Option<String>,
    run_dir: &Path,
    credential: Option<Credential>,
) -> Result<ControlClient, CtlError> {
    let url = flag
        .filter(|u| !u.trim().is_empty())
        .or_else(|| State::load_optional(run_dir).and_then(|s| s.control_url))
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    Ok(control::connect(url.trim())?.with_credential(credential))
}

fn explain_flag(flag: &str) -> Result<u8, CtlError> {
    match explain::lookup(flag) {
        Some(help) => {
            print!("{}", explain::render(help));
            Ok(0)
        }
        None => Err(CtlError::Failed(format!(
            "unknown response flag {flag:?}; known flags: {}",
            explain::known_codes()
        ))),
    }
}

/// Checks a name used in a URL path (service, fault id) so it cannot change the path.
fn path_name<'a>(what: &str, name: &'a str) -> Result<&'a str, CtlError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        Ok(name)
    } else {
        Err(CtlError::Usage(format!(
            "invalid {what} {name:?}: expected letters, digits, '-', '_' or '.'"
        )))
    }
}
