//! `archgate completions`: shell completion scripts generated from the clap definition.

use clap::{Args, CommandFactory};
use clap_complete::Shell;

/// `archgate completions`'s one argument: the shell.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: CompletionShell,
}

/// The shells completions are generated for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    /// Install in bash-completion's directory, or `source` it.
    Bash,
    /// Save as `_archgate` in a directory on `$fpath`.
    Zsh,
    /// Save in ~/.config/fish/completions/.
    Fish,
}

/// Runs `completions`: writes the script for `args.shell` to stdout.
pub fn run(args: &CompletionsArgs) -> anyhow::Result<()> {
    let shell = match args.shell {
        CompletionShell::Bash => Shell::Bash,
        CompletionShell::Zsh => Shell::Zsh,
        CompletionShell::Fish => Shell::Fish,
    };
    let mut command = super::Cli::command();
    clap_complete::generate(shell, &mut command, "archgate", &mut std::io::stdout());
    Ok(())
}
