//! The command line: one clap `Subcommand` enum, one file per subcommand.

pub mod certs;
pub mod check;
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
    /// Dry run: evaluate manifests (or captured AdmissionReviews) as the webhook would.
    #[command(
        after_help = "Examples:\n  archgate check --policy policies/homelab.toml --platforms policies/homelab-platforms.toml deploy/\n  kubectl get deploy -A -o yaml | archgate check --policy policy.toml --platforms platforms.toml -o json -\n  archgate check --policy policy.toml --nodes nodes.yaml -o diff app.yaml\n\nExit status: 0 all allowed, 1 a denial (or a warning with --fail-on warn), 2 usage or input errors."
    )]
    Check(check::CheckArgs),
}

/// Runs the parsed command; the process exit code is what it returns.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Certs(args) => certs::run(&args),
        Command::Check(args) => exit_with(check::run(args)?),
    }
}

/// Ends the process with `code` when it is not 0. The offline commands report "denied" or
/// "failed" through the exit status, which `main`'s `Result` cannot carry; everything they print
/// is flushed before they return.
fn exit_with(code: u8) -> anyhow::Result<()> {
    if code != 0 {
        use std::io::Write;
        let _ = std::io::stdout().flush();
        std::process::exit(i32::from(code));
    }
    Ok(())
}
