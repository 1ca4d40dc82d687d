//! `meshctl`: parse the command line, run the subcommand, turn errors into one line on
//! stderr and an exit code (64 for usage errors, 1 for failures).

use std::process::ExitCode;

use clap::Parser;
use mesh_ctl::cli::Cli;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let usage = e.use_stderr();
            let _ = e.print();
            return ExitCode::from(if usage { 64 } else { 0 });
        }
    };
    match mesh_ctl::commands::run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("meshctl: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
