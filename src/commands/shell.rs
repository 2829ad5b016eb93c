//! `dvload completions SHELL` and `dvload man`: the command line's completion scripts and manual
//! page, generated from the same definitions the parser uses (clap_complete, clap_mangen).

use std::io::Write;

use clap::CommandFactory;

use crate::exit::Exit;

/// The shells `dvload completions` writes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    /// bash: `dvload completions bash > ~/.local/share/bash-completion/completions/dvload`
    Bash,
    /// zsh: `dvload completions zsh > "${fpath[1]}/_dvload"`
    Zsh,
    /// fish: `dvload completions fish > ~/.config/fish/completions/dvload.fish`
    Fish,
    /// PowerShell: `dvload completions powershell >> $PROFILE`
    Powershell,
}

/// Arguments of `dvload completions`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    dvload completions bash > ~/.local/share/bash-completion/completions/dvload\n  \
    dvload completions zsh > \"${fpath[1]}/_dvload\"\n  \
    dvload completions fish > ~/.config/fish/completions/dvload.fish\n  \
    dvload completions powershell >> $PROFILE")]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `dvload man`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  dvload man > dvload.1 && man ./dvload.1")]
pub struct ManArgs {}

/// Writes the completion script for `args.shell` to stdout.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<Exit> {
    use clap_complete::shells;
    let mut cmd = crate::cli::Cli::command();
    let mut out = std::io::stdout().lock();
    match args.shell {
        Shell::Bash => clap_complete::generate(shells::Bash, &mut cmd, "dvload", &mut out),
        Shell::Zsh => clap_complete::generate(shells::Zsh, &mut cmd, "dvload", &mut out),
        Shell::Fish => clap_complete::generate(shells::Fish, &mut cmd, "dvload", &mut out),
        Shell::Powershell => {
            clap_complete::generate(shells::PowerShell, &mut cmd, "dvload", &mut out)
        }
    }
    out.flush()?;
    Ok(Exit::Success)
}

/// Writes the manual page (roff) to stdout: the top-level page, then one section per command.
pub fn man(_args: ManArgs) -> anyhow::Result<Exit> {
    let cmd = crate::cli::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands() {
        let name = format!("dvload-{}", sub.get_name());
        let page = sub.clone().name(name);
        clap_mangen::Man::new(page).render(&mut out)?;
    }
    out.flush()?;
    Ok(Exit::Success)
}
