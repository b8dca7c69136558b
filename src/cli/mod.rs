//! The command line: one clap `Subcommand` enum, one file per subcommand.

pub mod certs;
pub mod serve;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "archgate",
    version,
    about = "Places pods on nodes whose CPU architecture and GPU vendor can run their images"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTPS admission webhook.
    #[command(
        after_help = "Examples:\n  archgate serve --dev\n  archgate serve --policy /etc/archgate/policy.toml --tls-cert /tls/tls.crt --tls-key /tls/tls.key --platforms /etc/archgate/platforms.toml"
    )]
    Serve(serve::ServeArgs),
    /// Write a development CA and a serving certificate and key signed by it.
    #[command(
        after_help = "Example:\n  archgate certs --out certs/dev --dns archgate.archgate.svc --dns localhost --ip 127.0.0.1"
    )]
    Certs(certs::CertsArgs),
}

/// Runs the parsed command; the process exit code is what it returns.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Certs(args) => certs::run(&args),
    }
}
