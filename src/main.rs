//! The `archgate` binary: parse the command line, run one subcommand, report errors readably.

use clap::Parser;
use std::process::ExitCode;

// The admission path makes many small, short-lived allocations on every worker thread; glibc's
// malloc spent a third of the server's CPU on them under load (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = archgate::cli::Cli::parse();
    match archgate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
