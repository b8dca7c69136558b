//! The command line: one clap `Subcommand` enum, one file per subcommand.

pub mod audit;
pub mod certs;
pub mod check;
pub mod cluster_args;
pub mod completions;
pub mod lint;
pub mod placement_args;
pub mod registry_args;
pub mod reload;
pub mod serve;
pub mod test;

use clap::{Parser, Subcommand};

/// The parsed command line.
#[derive(Debug, Parser)]
#[command(
    name = "archgate",
    version,
    about = "Places pods on nodes whose CPU architecture and GPU vendor can run their images"
)]
pub struct Cli {
    /// The subcommand to run, with its options.
    #[command(subcommand)]
    pub command: Command,
}

/// `archgate`'s subcommands; each one's module parses its options and runs it.
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
        after_help = "Examples:\n  archgate check --policy policies/homelab.toml --platforms policies/homelab-platforms.toml deploy/\n  kubectl get deploy -A -o yaml | archgate check --policy policy.toml --platforms platforms.toml -o json -\n  archgate check --policy policy.toml --nodes nodes.yaml -o diff app.yaml\n  archgate check --policy policy.toml --platforms platforms.toml --registry-config registries.toml --docker-config ~/.docker/config.json app.yaml\n\nExit status: 0 all allowed, 1 a denial (or a warning with --fail-on warn), 2 usage or input errors."
    )]
    Check(check::CheckArgs),
    /// Check policy files: schema, unknown keys, shadowed or impossible rules.
    #[command(
        after_help = "Examples:\n  archgate lint policies/homelab.toml\n  archgate lint -f github --deny-warnings policies/*.toml\n  archgate lint -f sarif policy.toml > archgate.sarif\n\nExit status: 0 clean, 1 errors (or warnings with --deny-warnings), 2 unreadable files."
    )]
    Lint(lint::LintArgs),
    /// Run policy test suites (*.archgate-test.toml).
    #[command(
        after_help = "Examples:\n  archgate test policies/tests/\n  archgate test --junit junit.xml policies/\n\nExit status: 0 all cases pass, 1 a case failed, 2 usage errors."
    )]
    Test(test::TestArgs),
    /// Read-only audit of a running cluster: misplaced pods, what the policy would deny or
    /// patch, workloads pinned narrower than their images, images lacking an architecture.
    #[command(
        after_help = "Examples:\n  archgate audit\n  archgate audit --policy policy.toml --registry-config registries.toml -o json\n  archgate audit -n shop --platforms platforms.toml -o markdown --fail-on would-deny\n\nExit status: 0 nothing at or above --fail-on (default misplaced), 1 findings, 2 could not run (kubeconfig, RBAC, options)."
    )]
    Audit(audit::AuditArgs),
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  archgate completions bash > /etc/bash_completion.d/archgate\n  archgate completions zsh > \"${fpath[1]}/_archgate\"\n  archgate completions fish > ~/.config/fish/completions/archgate.fish"
    )]
    Completions(completions::CompletionsArgs),
}

/// Runs the parsed command and returns the process's exit status: the offline commands report
/// "denied" or "failed" through it (`check`, `lint` and `test` document theirs).
pub fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let code = match cli.command {
        Command::Serve(args) => serve::run(args).map(|()| 0),
        Command::Certs(args) => certs::run(&args).map(|()| 0),
        Command::Check(args) => check::run(args),
        Command::Audit(args) => audit::run(args),
        Command::Lint(args) => lint::run(&args),
        Command::Test(args) => test::run(&args),
        Command::Completions(args) => completions::run(&args).map(|()| 0),
    }?;
    Ok(std::process::ExitCode::from(code))
}
