//! The `archgate` binary: parse the command line, run one subcommand, report errors readably.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = archgate::cli::Cli::parse();
    match archgate::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
